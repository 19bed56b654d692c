import { IioError } from '../errors';
import type { DataFormat } from './scan-type';

/**
 * Reads the raw value of one element at `offset` (plus `repeatIndex` storage words):
 * byte order, `>> shift`, masking to `bits` and sign extension, as libiio's
 * iio_channel_convert. Values wider than 53 bits come back as BigInt.
 */
export function convert(
  buf: Uint8Array,
  offset: number,
  f: DataFormat,
  repeatIndex = 0,
): number | bigint {
  const size = f.length / 8;
  const start = offset + repeatIndex * size;
  if (start < 0 || start + size > buf.length) {
    throw new IioError('ERANGE', `element at byte ${start} (${size} bytes) is outside the buffer`);
  }
  if (f.length <= 32) {
    let word = 0;
    if (f.isBigEndian) for (let i = 0; i < size; i++) word = word * 256 + buf[start + i];
    else for (let i = size - 1; i >= 0; i--) word = word * 256 + buf[start + i];
    // word < 2^32: unsigned arithmetic through Math keeps it exact
    let v = Math.floor(word / 2 ** f.shift);
    if (f.bits < 32 || f.shift > 0) v = v % 2 ** f.bits;
    if (f.isSigned && v >= 2 ** (f.bits - 1)) v -= 2 ** f.bits;
    return v;
  }
  let word = 0n;
  if (f.isBigEndian) for (let i = 0; i < size; i++) word = (word << 8n) | BigInt(buf[start + i]);
  else for (let i = size - 1; i >= 0; i--) word = (word << 8n) | BigInt(buf[start + i]);
  let v = (word >> BigInt(f.shift)) & ((1n << BigInt(f.bits)) - 1n);
  if (f.isSigned && v >= 1n << BigInt(f.bits - 1)) v -= 1n << BigInt(f.bits);
  if (f.bits <= 53) return Number(v);
  return v;
}

/**
 * Writes a raw value into one element (libiio's iio_channel_convert_inverse): masks to
 * `bits`, shifts left by `shift`, stores in the format's byte order. Other bits of the
 * storage word are cleared.
 */
export function convertInverse(
  value: number | bigint,
  buf: Uint8Array,
  offset: number,
  f: DataFormat,
  repeatIndex = 0,
): void {
  const size = f.length / 8;
  const start = offset + repeatIndex * size;
  if (start < 0 || start + size > buf.length) {
    throw new IioError('ERANGE', `element at byte ${start} (${size} bytes) is outside the buffer`);
  }
  let v = typeof value === 'bigint' ? value : BigInt(Math.trunc(value));
  v = (v & ((1n << BigInt(f.bits)) - 1n)) << BigInt(f.shift);
  for (let i = 0; i < size; i++) {
    const byte = Number(v & 0xffn);
    v >>= 8n;
    buf[f.isBigEndian ? start + size - 1 - i : start + i] = byte;
  }
}

/** The kernel ABI's conversion to SI units: `(raw + offset) * scale`. */
export function toSI(raw: number | bigint, scale: number, offset: number): number {
  return (Number(raw) + offset) * scale;
}
