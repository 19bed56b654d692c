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

const SCAN_TYPE = /^\s*([lb])e:([suSU])(\d+)\/(\d+)(?:X(\d+))?(?:>>(\d+))?\s*$/;

/**
 * Parses a kernel scan type string. Accepts everything the kernel and ADI drivers
 * emit: upper-case `S`/`U`, a missing `>>shift`, an `X` repeat count.
 * @throws IioError EINVAL when the string is not a scan type or is inconsistent.
 */
export function parseScanType(text: string): DataFormat {
  const m = SCAN_TYPE.exec(text);
  if (!m) throw new IioError('EINVAL', `not a scan type: "${text.trim()}"`);
  const bits = Number(m[3]);
  const length = Number(m[4]);
  const repeat = m[5] === undefined ? 1 : Number(m[5]);
  const shift = m[6] === undefined ? 0 : Number(m[6]);
  if (length === 0 || length % 8 !== 0 || length > 64 * 8) {
    throw new IioError(
      'EINVAL',
      `scan type "${text.trim()}": storage bits must be a non-zero multiple of 8`,
    );
  }
  if (bits === 0 || bits > length) {
    throw new IioError('EINVAL', `scan type "${text.trim()}": value bits must be 1..${length}`);
  }
  if (bits + shift > length) {
    throw new IioError(
      'EINVAL',
      `scan type "${text.trim()}": bits + shift exceed the storage bits`,
    );
  }
  if (repeat === 0)
    throw new IioError('EINVAL', `scan type "${text.trim()}": repeat must be at least 1`);
  const sign = m[2];
  return {
    isBigEndian: m[1] === 'b',
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
