import { IioError } from '../errors';
import { convertInverse, MAX_NUMBER_BITS, rawRange } from './convert';
import { scanCount, type ScaleOffset } from './demux';
import type { ScanLayout, ScanSlot } from './layout';
import { valueBits } from './scan-type';

export interface MuxOptions {
  /** The values are in SI units: stored as `round(value / scale - offset)`. */
  readonly si?: ScaleOffset;
  /** Which of a repeated element's values to write (default 0). */
  readonly repeatIndex?: number;
  /** First scan of `data` to write (default 0). */
  readonly firstScan?: number;
}

/**
 * Writes one channel's values into a block of scans (the inverse of demuxChannel, for
 * output buffers): value `i` goes to scan `firstScan + i`. Each value is rounded to the
 * nearest integer (`Math.round`), saturated to the format's range — a DAC given 1.2 V
 * past full scale holds full scale instead of wrapping to the other rail — then shifted
 * and stored in the format's byte order, clearing the rest of the storage word. Only
 * this channel's bytes change.
 * @throws IioError EINVAL for a NaN value, a zero or non-finite scale, a repeat index out
 *   of range, or more values than scans; nothing is written then.
 */
export function muxChannel(
  data: Uint8Array,
  layout: ScanLayout,
  slot: ScanSlot,
  values: ArrayLike<number | bigint>,
  options: MuxOptions = {},
): void {
  const f = slot.format;
  const r = options.repeatIndex ?? 0;
  const first = options.firstScan ?? 0;
  const n = values.length;
  const ctx = `element ${slot.key}`;
  if (!Number.isInteger(r) || r < 0 || r >= f.repeat) {
    throw new IioError('EINVAL', `repeat index ${r} outside 0..${f.repeat - 1} of ${ctx}`);
  }
  const scans = scanCount(data, layout);
  if (!Number.isInteger(first) || first < 0 || first + n > scans) {
    throw new IioError(
      'EINVAL',
      `${n} values from scan ${first} do not fit in ${scans} scans of ${layout.scanBytes} bytes (${ctx})`,
    );
  }
  const si = options.si;
  if (si && (!Number.isFinite(si.scale) || si.scale === 0 || !Number.isFinite(si.offset))) {
    throw new IioError(
      'EINVAL',
      `scale ${si.scale} / offset ${si.offset} cannot be inverted (${ctx})`,
    );
  }
  // Validate everything first: a bad value must not leave a half-written block.
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v === 'number' && Number.isNaN(v)) {
      throw new IioError('EINVAL', `value ${i} is NaN (${ctx})`);
    }
  }
  const stride = layout.scanBytes;
  const start = slot.offset + r * slot.size + first * stride;
  const vb = valueBits(f);
  const size = slot.size;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = !f.isBigEndian;
  if (size === 1 || size === 2 || size === 4) {
    const { min, max } = rawRange(f) as { min: number; max: number };
    mux32(dv, start, stride, n, size, le, f.shift, vb, min, max, values, si);
    return;
  }
  const { min, max } = rawRange(f);
  const wide = vb > MAX_NUMBER_BITS;
  for (let i = 0, p = start; i < n; i++, p += stride) {
    const x = values[i];
    let v: number | bigint;
    if (typeof x === 'bigint') v = si ? Math.round(Number(x) / si.scale - si.offset) : x;
    else v = Math.round(si ? x / si.scale - si.offset : x);
    if (wide) {
      // Saturate in BigInt: doubles past 2^53 are integers already, so this is exact.
      let b = typeof v === 'bigint' ? v : BigInt(clampToFinite(v));
      if (b < (min as bigint)) b = min as bigint;
      else if (b > (max as bigint)) b = max as bigint;
      convertInverse(b, data, p, f, 0);
    } else {
      let d = Number(v);
      if (d < (min as number)) d = min as number;
      else if (d > (max as number)) d = max as number;
      convertInverse(d, data, p, f, 0);
    }
  }
}

/*
 * The hot loop: round, saturate, mask, shift, store — one DataView store per value, the
 * byte order a loop invariant. Saturation happens before masking, so the mask only drops
 * the sign-extension bits of negative values.
 */
function mux32(
  dv: DataView,
  p: number,
  stride: number,
  n: number,
  size: number,
  le: boolean,
  shift: number,
  vb: number,
  min: number,
  max: number,
  values: ArrayLike<number | bigint>,
  si: ScaleOffset | undefined,
): void {
  const mask = vb === 32 ? -1 : (1 << vb) - 1;
  const scale = si ? si.scale : 1;
  const off = si ? si.offset : 0;
  for (let i = 0; i < n; i++, p += stride) {
    const x = values[i];
    const d = typeof x === 'number' ? x : Number(x);
    let v = Math.round(si ? d / scale - off : d);
    if (v < min) v = min;
    else if (v > max) v = max;
    const w = (v & mask) << shift;
    if (size === 2) dv.setUint16(p, w, le);
    else if (size === 4) dv.setUint32(p, w >>> 0, le);
    else dv.setUint8(p, w);
  }
}

function clampToFinite(v: number): number {
  return v === Infinity ? Number.MAX_VALUE : v === -Infinity ? -Number.MAX_VALUE : v;
}
