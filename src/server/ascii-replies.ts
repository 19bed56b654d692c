/**
 * The byte shapes of iiod's ASCII protocol (libiio 0.x) that are not command lines:
 * integer answers, length-prefixed payloads, the packed values of READ/WRITE without an
 * attribute name, and the hex channel mask of OPEN. Pure functions, no socket.
 */
import { ChannelMask } from '../model/channel-mask';
import type { NegErrno } from './device-ops';

/** An integer answer: `<n>\n` (0, a count, or a negative errno). */
export function intReply(n: number): string {
  return `${n}\n`;
}

/** A payload answer: `<length>\n<bytes>\n` (PRINT, READ, GETTRIG). */
export function payloadReply(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${payload.length}\n`), payload, Buffer.from('\n')]);
}

/**
 * The values of READ without an attribute: per attribute a big-endian int32 length, then
 * the value and its NUL padded to 4 bytes; the length is the negative errno on failure.
 */
export function encodePackedValues(values: ReadonlyArray<string | NegErrno>): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    const len = Buffer.alloc(4);
    if (typeof v === 'number') {
      len.writeInt32BE(v);
      parts.push(len);
      continue;
    }
    const bytes = Buffer.from(`${v}\0`, 'utf8');
    len.writeInt32BE(bytes.length);
    parts.push(len, bytes, Buffer.alloc((4 - (bytes.length % 4)) % 4));
  }
  return Buffer.concat(parts);
}

/**
 * WRITE without an attribute: the packed form of READ-all, one entry per attribute (a
 * length ≤ 0 leaves that one alone). Undefined when the data is shorter than its
 * entries say; else the values (each up to its first NUL) and the bytes they took.
 */
export function decodePackedValues(
  data: Buffer,
  count: number,
): { values: Array<string | null>; consumed: number } | undefined {
  const values: Array<string | null> = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > data.length) return undefined;
    const len = data.readInt32BE(off);
    off += 4;
    if (len > 0) {
      if (off + len > data.length) return undefined;
      const v = data.subarray(off, off + len);
      const nul = v.indexOf(0);
      values.push((nul >= 0 ? v.subarray(0, nul) : v).toString('utf8'));
      off += len + ((4 - (len % 4)) % 4);
    } else values.push(null);
  }
  return { values, consumed: Math.min(off, data.length) };
}

/**
 * OPEN's channel mask: 8 hex digits per 32-bit word, most significant word first,
 * exactly as many words as the device needs. Bits past the device's channels are
 * ignored, as iiod does; undefined when the text has the wrong length or is not hex.
 */
export function parseWireMask(channels: number, text: string): ChannelMask | undefined {
  const words = Math.ceil(channels / 32);
  if (text.length !== words * 8 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  const mask = new ChannelMask(channels);
  for (let w = 0; w < words; w++) {
    const word = parseInt(text.slice(text.length - (w + 1) * 8, text.length - w * 8), 16);
    for (let b = 0; b < 32; b++) {
      const i = w * 32 + b;
      if (i < channels && word & (1 << b)) mask.set(i);
    }
  }
  return mask;
}
