import { IioError } from '../errors';
import { valueBits, type DataFormat } from './scan-type';

/** Values of more than this many bits are BigInt; up to it, exact numbers. */
export const MAX_NUMBER_BITS = 53;

const TWO32 = 4294967296;

function checkSpan(buf: Uint8Array, start: number, size: number): void {
  if (!Number.isInteger(start) || start < 0 || start + size > buf.length) {
    throw new IioError(
      'ERANGE',
      `element at byte ${start} (${size} bytes) is outside the buffer (${buf.length} bytes)`,
    );
  }
}

/**
 * Reads the raw value of one element at `offset` (plus `repeatIndex` storage words):
 * byte order, `>> shift`, masking to the value bits and sign extension, as libiio's
 * iio_channel_convert (see {@link valueBits} for fully defined formats). The result is
 * a number when the value has at most 53 bits, a BigInt above: the type depends only on
 * the format, never on the value.
 * @throws IioError ERANGE when the element does not lie inside `buf`.
 */
export function convert(
  buf: Uint8Array,
  offset: number,
  f: DataFormat,
  repeatIndex = 0,
): number | bigint {
  const size = f.length >>> 3;
  const start = offset + repeatIndex * size;
  checkSpan(buf, start, size);
  const vb = valueBits(f);
  if (size <= 4) {
    let w = 0;
    if (f.isBigEndian) for (let i = 0; i < size; i++) w = w * 256 + buf[start + i];
    else for (let i = size - 1; i >= 0; i--) w = w * 256 + buf[start + i];
    // w < 2^32 and vb + shift <= 32: 32-bit operators are exact here
    const lsh = 32 - vb;
    return f.isSigned ? ((w >>> f.shift) << lsh) >> lsh : ((w >>> f.shift) << lsh) >>> lsh;
  }
  if (size <= 8 && vb <= MAX_NUMBER_BITS) {
    // Two 32-bit halves keep every step exact without BigInt.
    let lo = 0;
    let hi = 0;
    for (let k = 0; k < size; k++) {
      const b = buf[f.isBigEndian ? start + size - 1 - k : start + k];
      if (k < 4) lo += b * 2 ** (8 * k);
      else hi += b * 2 ** (8 * (k - 4));
    }
    return fromHalves(lo, hi, f.shift, vb, f.isSigned);
  }
  let word = 0n;
  if (f.isBigEndian) for (let i = 0; i < size; i++) word = (word << 8n) | BigInt(buf[start + i]);
  else for (let i = size - 1; i >= 0; i--) word = (word << 8n) | BigInt(buf[start + i]);
  word >>= BigInt(f.shift);
  const v = f.isSigned ? BigInt.asIntN(vb, word) : BigInt.asUintN(vb, word);
  return vb <= MAX_NUMBER_BITS ? Number(v) : v;
}

/**
 * The value of a 64-bit word `hi:lo` (each an unsigned 32-bit number) shifted right by
 * `shift` and cut to `vb` bits. Exact for vb <= 53; for more bits, the correctly rounded
 * double (one rounding, in the final addition).
 * @internal
 */
export function fromHalves(
  lo: number,
  hi: number,
  shift: number,
  vb: number,
  signed: boolean,
): number {
  if (shift >= 32) {
    lo = hi >>> (shift - 32);
    hi = 0;
  } else if (shift > 0) {
    lo = ((lo >>> shift) | (hi << (32 - shift))) >>> 0;
    hi = hi >>> shift;
  }
  if (vb <= 32) {
    const l = 32 - vb;
    return signed ? (lo << l) >> l : (lo << l) >>> l;
  }
  const h = 64 - vb;
  const top = signed ? (hi << h) >> h : (hi << h) >>> h;
  return top * TWO32 + lo;
}

function invalidValue(value: number | bigint, why: string): IioError {
  return new IioError('EINVAL', `cannot store ${String(value)}: ${why}`);
}

/**
 * Writes a raw value into one element (libiio's iio_channel_convert_inverse): rounds a
 * non-integer number to the nearest integer (`Math.round`), keeps the low value bits
 * (two's complement wrap-around, as libiio's masking), shifts left by `shift`, stores in
 * the format's byte order. The other bits of the storage word are cleared.
 * @throws IioError EINVAL for NaN or an infinite number; ERANGE when the element does not
 *   lie inside `buf`.
 */
export function convertInverse(
  value: number | bigint,
  buf: Uint8Array,
  offset: number,
  f: DataFormat,
  repeatIndex = 0,
): void {
  const size = f.length >>> 3;
  const start = offset + repeatIndex * size;
  checkSpan(buf, start, size);
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw invalidValue(value, 'not a finite number');
  }
  const vb = valueBits(f);
  if (size <= 4 && typeof value === 'number') {
    // ToInt32 of an integral double is its exact value modulo 2^32, and vb + shift <= 32.
    const l = 32 - vb;
    let w = ((Math.round(value) << l) >>> l) << f.shift;
    for (let k = 0; k < size; k++) {
      buf[f.isBigEndian ? start + size - 1 - k : start + k] = w & 0xff;
      w >>>= 8;
    }
    return;
  }
  let v = typeof value === 'bigint' ? value : BigInt(Math.round(value));
  v = BigInt.asUintN(vb, v) << BigInt(f.shift);
  for (let k = 0; k < size; k++) {
    buf[f.isBigEndian ? start + size - 1 - k : start + k] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** The kernel ABI's conversion to SI units: `(raw + offset) * scale`. */
export function toSI(raw: number | bigint, scale: number, offset: number): number {
  return (Number(raw) + offset) * scale;
}

/**
 * The inverse of {@link toSI}, before rounding: `si / scale - offset`. Writers round the
 * result and saturate it to the format's range (see muxChannel).
 */
export function fromSI(si: number, scale: number, offset: number): number {
  return si / scale - offset;
}

/** The smallest and largest raw value a format can hold (numbers up to 53 bits). */
export function rawRange(f: DataFormat): { min: number | bigint; max: number | bigint } {
  const vb = valueBits(f);
  if (vb <= MAX_NUMBER_BITS) {
    return f.isSigned
      ? { min: -(2 ** (vb - 1)), max: 2 ** (vb - 1) - 1 }
      : { min: 0, max: 2 ** vb - 1 };
  }
  const b = BigInt(vb);
  return f.isSigned
    ? { min: -(1n << (b - 1n)), max: (1n << (b - 1n)) - 1n }
    : { min: 0n, max: (1n << b) - 1n };
}
