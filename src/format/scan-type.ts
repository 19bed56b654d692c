import { IioError } from '../errors';

/**
 * How one scan element is stored, as the kernel describes it in `*_type`
 * (`le:s12/16>>4`, `be:u24/32X4>>0`). Field names follow libiio's `iio_data_format`.
 */
export interface DataFormat {
  /** Big-endian storage (`be:`); `le:` otherwise. */
  readonly isBigEndian: boolean;
  /** Two's complement (`s`/`S`). */
  readonly isSigned: boolean;
  /** Bits that carry the value (realbits). */
  readonly bits: number;
  /** Storage bits of one element (storagebits), a multiple of 8. */
  readonly length: number;
  /** Right shift to apply after reading the storage word. */
  readonly shift: number;
  /** Number of values stored back to back for this channel (`X4`); 1 when absent. */
  readonly repeat: number;
  /**
   * No masking or sign extension needed: the sign letter was upper-case, or
   * bits equal storage bits (libiio's rule).
   */
  readonly isFullyDefined: boolean;
}

/**
 * Largest storage word accepted, in bits. libiio converts any width byte by byte but its
 * inverse conversion stops at 1024 bytes; the kernel's own field is a u8 (≤ 248 bits).
 */
export const MAX_STORAGE_BITS = 8192;
/** Largest repeat count accepted (the kernel's field is a u8, so ≤ 255 in practice). */
export const MAX_REPEAT = 65535;

// The kernel prints `%s:%c%d/%d[X%d]>>%u`; its ABI text marks `>>shift` optional, and ADI
// drivers print upper-case S/U for "already sign-extended / masked in storage".
const SCAN_TYPE = /^(le|be):([suSU])(\d+)\/(\d+)(?:X(\d+))?(?:>>(\d+))?$/;

function invalid(text: string, why: string): IioError {
  return new IioError('EINVAL', `scan type ${JSON.stringify(text)}: ${why}`);
}

/**
 * Parses a kernel scan type string (`scan_elements/*_type`), surrounding whitespace and
 * the trailing newline of sysfs included. Accepts everything the kernel and ADI drivers
 * emit: upper-case `S`/`U`, a missing `>>shift`, an `X` repeat count, any storage width
 * that is a multiple of 8 up to {@link MAX_STORAGE_BITS}.
 * @throws IioError EINVAL naming the string when it is not a scan type or is inconsistent
 *   (value bits 0 or above the storage bits, value bits + shift above the storage bits,
 *   storage not a multiple of 8, repeat 0).
 */
export function parseScanType(text: string): DataFormat {
  const s = text.trim();
  const m = SCAN_TYPE.exec(s);
  if (!m) {
    throw invalid(
      s,
      'not a scan type (expected [le|be]:[s|u|S|U]<bits>/<storage bits>[X<repeat>][>><shift>])',
    );
  }
  const bits = Number(m[3]);
  const length = Number(m[4]);
  const repeat = m[5] === undefined ? 1 : Number(m[5]);
  const shift = m[6] === undefined ? 0 : Number(m[6]);
  if (length === 0 || length % 8 !== 0) {
    throw invalid(s, `storage bits (${m[4]}) must be a non-zero multiple of 8`);
  }
  if (length > MAX_STORAGE_BITS) {
    throw invalid(s, `storage bits (${m[4]}) above the supported ${MAX_STORAGE_BITS}`);
  }
  if (bits === 0) throw invalid(s, 'value bits must be at least 1');
  if (bits > length) {
    throw invalid(s, `value bits (${m[3]}) exceed the storage bits (${m[4]})`);
  }
  if (bits + shift > length) {
    throw invalid(s, `value bits + shift (${m[3]} + ${m[6]}) exceed the storage bits (${m[4]})`);
  }
  if (repeat === 0) throw invalid(s, 'repeat must be at least 1');
  if (repeat > MAX_REPEAT) throw invalid(s, `repeat (${m[5]}) above the supported ${MAX_REPEAT}`);
  const sign = m[2];
  return {
    isBigEndian: m[1] === 'be',
    isSigned: sign === 's' || sign === 'S',
    bits,
    length,
    shift,
    repeat,
    isFullyDefined: sign === 'S' || sign === 'U' || bits === length,
  };
}

/**
 * Writes a format the way libiio does in its XML and in iio_info:
 * `le:S16/16>>0`, upper-case sign when fully defined, `X<n>` only when repeat > 1.
 */
export function formatScanType(f: DataFormat): string {
  let sign = f.isSigned ? 's' : 'u';
  if (f.isFullyDefined) sign = sign.toUpperCase();
  const repeat = f.repeat > 1 ? `X${f.repeat}` : '';
  return `${f.isBigEndian ? 'b' : 'l'}e:${sign}${f.bits}/${f.length}${repeat}>>${f.shift}`;
}

/** Bytes one element of this channel takes in a scan (storage bytes times repeat). */
export function elementBytes(f: DataFormat): number {
  return (f.length / 8) * f.repeat;
}

/**
 * Bits that make up a decoded value. Normally `bits` (realbits): the storage word is
 * shifted, masked to `bits` and sign-extended from bit `bits - 1`. A fully defined
 * format with `bits < length` (ADI's upper-case `le:S12/16>>0`) promises the storage is
 * already sign-extended or zero-filled, so, as libiio does, nothing is masked: the whole
 * shifted word is the value (`length - shift` bits). Writers fill the same bits, so
 * such storage stays fully defined.
 */
export function valueBits(f: DataFormat): number {
  return f.isFullyDefined ? f.length - f.shift : f.bits;
}
