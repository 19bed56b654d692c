/**
 * Decodes an XML file's bytes as libxml2 would: UTF-16 (either byte order) or UTF-8 by
 * byte-order mark, else the declared `encoding` (UTF-8 or Latin-1), else UTF-8.
 */
export function decodeXmlBytes(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    const swapped = Buffer.from(bytes.subarray(2));
    swapped.swap16();
    return swapped.toString('utf16le');
  }
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
    return bytes.subarray(3).toString('utf8');
  const head = bytes.subarray(0, 200).toString('latin1');
  const enc = /encoding=["']([^"']+)["']/i.exec(head)?.[1]?.toLowerCase();
  if (enc === 'iso-8859-1' || enc === 'latin1' || enc === 'latin-1')
    return bytes.toString('latin1');
  return bytes.toString('utf8');
}
