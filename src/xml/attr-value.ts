import { IioError } from '../errors';

/**
 * Attribute values as an XML 1.0 processor hands them over (what libxml2 gives libiio):
 * literal line ends and tabs become spaces (§2.11 end-of-line handling, then §3.3.3
 * attribute-value normalisation), then character and entity references are replaced —
 * in that order, so `&#10;` survives as a newline while a literal newline does not.
 * Errors are the ones that make libxml2 (and so libiio) refuse the document.
 */

/** The five entities every XML document has; libiio's XML declares no others. */
const PREDEFINED: Readonly<Record<string, string>> = {
  lt: '<',
  gt: '>',
  amp: '&',
  quot: '"',
  apos: "'",
};

/** XML 1.0's Char production: what a character reference may name. */
function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/**
 * Decodes one attribute value. `name` names the XML attribute in error messages.
 * Throws EINVAL for an undefined entity, a bad character reference, a bare `&` or a
 * literal `<` (all fatal in libxml2).
 */
export function decodeAttributeValue(raw: string, name: string): string {
  const bad = (why: string): IioError =>
    new IioError('EINVAL', `attribute ${name}="${raw}": ${why}`);
  if (raw.includes('<')) throw bad("a literal '<' is not allowed in an attribute value");
  const normalised = raw.replace(/\r\n?|[\n\t]/g, ' ');
  if (!normalised.includes('&')) return normalised;
  return normalised.replace(/&([^;&\s]*)(;?)/g, (_m, ref: string, semi: string) => {
    if (!semi || !ref) throw bad("a bare '&' (write &amp;)");
    if (ref.startsWith('#')) {
      const hex = /^#x([0-9a-fA-F]+)$/.exec(ref);
      const dec = /^#([0-9]+)$/.exec(ref);
      const cp = hex ? parseInt(hex[1], 16) : dec ? parseInt(dec[1], 10) : NaN;
      if (!Number.isFinite(cp) || !isXmlChar(cp)) {
        throw bad(`&${ref}; is not a character XML allows`);
      }
      return String.fromCodePoint(cp);
    }
    const v = PREDEFINED[ref];
    if (v === undefined) throw bad(`entity &${ref}; is not defined`);
    return v;
  });
}

/**
 * Escapes a text for an attribute value so that an XML 1.0 reader (libxml2) gives back
 * exactly this text: the five special characters, and tab, line feed and carriage
 * return as character references (literal ones would be read back as spaces).
 * Other C0 control characters cannot be represented in XML 1.0 at all, not even as
 * references: they become U+FFFD, the replacement character.
 */
export function escapeAttributeValue(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[&<>'"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case "'":
        return '&apos;';
      case '"':
        return '&quot;';
      case '\t':
        return '&#9;';
      case '\n':
        return '&#10;';
      case '\r':
        return '&#13;';
      default:
        return '\uFFFD';
    }
  });
}
