/**
 * The byte shapes of iiod's ASCII protocol (libiio 0.x) that only the server writes or
 * reads: integer answers, length-prefixed payloads and the hex channel mask of OPEN.
 * Pure functions, no socket. The packed values of READ/WRITE without an attribute name
 * are shared with our client (src/iiod-protocol/ascii.ts).
 */
import { ChannelMask } from '../model/channel-mask';

/** An integer answer: `<n>\n` (0, a count, or a negative errno). */
export function intReply(n: number): string {
  return `${n}\n`;
}

/** A payload answer: `<length>\n<bytes>\n` (PRINT, READ, GETTRIG). */
export function payloadReply(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${payload.length}\n`), payload, Buffer.from('\n')]);
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
