import { convertInverse } from '../../format/convert';
import { valueBits, type DataFormat } from '../../format/scan-type';

/** Stores one raw value of a channel at a byte offset of a scan buffer. */
export type ElementWriter = (buf: Buffer, offset: number, value: number) => void;

/**
 * An encoder for one element format, with the result of convertInverse (libiio's
 * iio_channel_convert_inverse: keep the value bits — all of the shifted word for a fully
 * defined format such as `le:S12/16`, which is stored sign-extended — shift left, store in
 * the format's byte order). Storage words of 1, 2 and 4 bytes get a direct path, since
 * the emulator writes every sample of every stream through here; anything else goes
 * through convertInverse itself.
 */
export function elementWriter(f: DataFormat): ElementWriter {
  const size = f.length / 8;
  const bits = valueBits(f);
  const direct = (size === 1 || size === 2 || size === 4) && bits + f.shift <= 32;
  if (!direct) {
    return (buf, offset, value) => convertInverse(Math.round(value), buf, offset, f);
  }
  const scale = 2 ** f.shift;
  const modulus = 2 ** bits;
  // The stored word, unsigned: value modulo 2^bits (two's complement), then shifted.
  const word = (value: number): number => {
    let v = Math.round(value) % modulus;
    if (v < 0) v += modulus;
    return v * scale;
  };
  if (size === 1) return (buf, offset, value) => void (buf[offset] = word(value));
  if (size === 2) {
    return f.isBigEndian
      ? (buf, offset, value) => void buf.writeUInt16BE(word(value), offset)
      : (buf, offset, value) => void buf.writeUInt16LE(word(value), offset);
  }
  return f.isBigEndian
    ? (buf, offset, value) => void buf.writeUInt32BE(word(value), offset)
    : (buf, offset, value) => void buf.writeUInt32LE(word(value), offset);
}

/** The values a format can hold: [min, max] of a `bits`-wide signed or unsigned integer. */
export function formatRange(f: DataFormat): { min: number; max: number } {
  const bits = Math.min(f.bits, 53);
  if (f.isSigned) return { min: -(2 ** (bits - 1)), max: 2 ** (bits - 1) - 1 };
  return { min: 0, max: 2 ** bits - 1 };
}
