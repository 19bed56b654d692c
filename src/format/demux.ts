import { endianness } from 'node:os';
import { IioError } from '../errors';
import { convert, fromHalves, MAX_NUMBER_BITS } from './convert';
import type { ScanLayout, ScanSlot } from './layout';
import { valueBits } from './scan-type';

/** `(raw + offset) * scale`, the kernel ABI's conversion to SI units. */
export interface ScaleOffset {
  readonly scale: number;
  readonly offset: number;
}

export interface DemuxOptions {
  /** Convert to SI units with `(raw + offset) * scale`. */
  readonly si?: ScaleOffset;
  /** Which of a repeated element's values to take (default 0). */
  readonly repeatIndex?: number;
}

/** Something demuxChannelInto can fill: a plain array or a typed array of numbers. */
export type NumberSink = number[] | Float64Array | Float32Array | Int32Array;

/** Whole scans in `data` (a trailing partial scan is ignored). */
export function scanCount(data: Uint8Array, layout: ScanLayout): number {
  return layout.scanBytes > 0 ? Math.floor(data.length / layout.scanBytes) : 0;
}

function viewOf(data: Uint8Array): DataView {
  return new DataView(data.buffer, data.byteOffset, data.byteLength);
}

function firstByte(slot: ScanSlot, repeatIndex: number): number {
  if (!Number.isInteger(repeatIndex) || repeatIndex < 0 || repeatIndex >= slot.format.repeat) {
    throw new IioError(
      'EINVAL',
      `repeat index ${repeatIndex} outside 0..${slot.format.repeat - 1} of element ${slot.key}`,
    );
  }
  return slot.offset + repeatIndex * slot.size;
}

/**
 * True when a slot's values come out as numbers: up to 53 value bits, or any width when
 * converted to SI units.
 */
export function demuxesToNumbers(slot: ScanSlot, si: boolean): boolean {
  return si || valueBits(slot.format) <= MAX_NUMBER_BITS;
}

/**
 * Extracts one channel's values from a block of whole scans: raw numbers (BigInt for
 * more than 53 value bits) or, with `si`, numbers in SI units. Returns a fresh array
 * (JSON-friendly); {@link demuxChannelInto} fills one you own.
 */
export function demuxChannel(
  data: Uint8Array,
  layout: ScanLayout,
  slot: ScanSlot,
  options: DemuxOptions = {},
): number[] | bigint[] {
  const n = scanCount(data, layout);
  if (!demuxesToNumbers(slot, !!options.si)) {
    return demuxBigInt(data, layout, slot, options.repeatIndex ?? 0, n);
  }
  // Preallocated (holey) and filled in order: measured twice as fast as push() for large
  // blocks, whose arrays V8 puts in large-object space either way.
  const out = new Array<number>(n);
  demuxChannelInto(data, layout, slot, out, options);
  return out;
}

/**
 * Like {@link demuxChannel} into an array you provide (a Float64Array for the fastest
 * path, a number[] for JSON): writes `min(scans, out.length)` values from index 0 and
 * returns how many. Values wider than 53 bits come out as the nearest double.
 */
export function demuxChannelInto(
  data: Uint8Array,
  layout: ScanLayout,
  slot: ScanSlot,
  out: NumberSink,
  options: DemuxOptions = {},
): number {
  const n = Math.min(scanCount(data, layout), out.length);
  const f = slot.format;
  const start = firstByte(slot, options.repeatIndex ?? 0);
  const stride = layout.scanBytes;
  const si = options.si;
  const scale = si ? si.scale : 1;
  const off = si ? si.offset : 0;
  const raw = !si;
  const size = slot.size;
  const vb = valueBits(f);
  if (n === 0) return 0;
  if (
    size === 1 ||
    ((size === 2 || size === 4) &&
      f.isBigEndian === HOST_BE &&
      (data.byteOffset + start) % size === 0 &&
      stride % size === 0)
  ) {
    // Aligned, host byte order: a typed-array view over the block, one load per value.
    const src =
      size === 1
        ? data
        : size === 2
          ? new Uint16Array(data.buffer, data.byteOffset + start, ((data.length - start) / 2) | 0)
          : new Uint32Array(data.buffer, data.byteOffset + start, ((data.length - start) / 4) | 0);
    const first = size === 1 ? start : 0;
    demuxView(src, first, stride / size, n, f.shift, vb, f.isSigned, out, raw, scale, off);
  } else if (size === 2 || size === 4) {
    demux32(
      viewOf(data),
      start,
      stride,
      n,
      size,
      !f.isBigEndian,
      f.shift,
      vb,
      f.isSigned,
      out,
      raw,
      scale,
      off,
    );
  } else if (size === 8) {
    demux64(
      viewOf(data),
      start,
      stride,
      n,
      !f.isBigEndian,
      f.shift,
      vb,
      f.isSigned,
      out,
      raw,
      scale,
      off,
    );
  } else {
    // Odd widths (24-, 48-, 128-bit storage...): exact, one value at a time.
    const r = options.repeatIndex ?? 0;
    for (let i = 0, p = slot.offset; i < n; i++, p += stride) {
      const v = Number(convert(data, p, f, r));
      out[i] = raw ? v : (v + off) * scale;
    }
  }
  return n;
}

const HOST_BE = endianness() === 'BE';

/**
 * The fastest loop: values are whole elements of `src` (a Uint8/16/32Array over the
 * block) `step` elements apart, already in host byte order.
 */
function demuxView(
  src: Uint8Array | Uint16Array | Uint32Array,
  p: number,
  step: number,
  n: number,
  shift: number,
  vb: number,
  signed: boolean,
  out: NumberSink,
  raw: boolean,
  scale: number,
  off: number,
): void {
  const l = 32 - vb;
  if (signed) {
    if (raw) for (let i = 0; i < n; i++, p += step) out[i] = ((src[p] >>> shift) << l) >> l;
    else
      for (let i = 0; i < n; i++, p += step)
        out[i] = ((((src[p] >>> shift) << l) >> l) + off) * scale;
  } else {
    if (raw) for (let i = 0; i < n; i++, p += step) out[i] = ((src[p] >>> shift) << l) >>> l;
    else
      for (let i = 0; i < n; i++, p += step)
        out[i] = ((((src[p] >>> shift) << l) >>> l) + off) * scale;
  }
}

/*
 * The DataView loops. One loop per storage width and sign, with the byte order a loop
 * invariant DataView argument (TurboFan inlines getUint16(p, le) to a load and, for
 * big endian, a byte swap). A value is `((word >>> shift) << l) >> l` (signed) or
 * `>>> l` (unsigned) with l = 32 - value bits: shift, mask and sign extension in two
 * operators, no per-sample function, no BigInt.
 */
function demux32(
  dv: DataView,
  p: number,
  stride: number,
  n: number,
  size: number,
  le: boolean,
  shift: number,
  vb: number,
  signed: boolean,
  out: NumberSink,
  raw: boolean,
  scale: number,
  off: number,
): void {
  const l = 32 - vb;
  if (size === 2) {
    if (signed) {
      if (raw)
        for (let i = 0; i < n; i++, p += stride)
          out[i] = ((dv.getUint16(p, le) >>> shift) << l) >> l;
      else
        for (let i = 0; i < n; i++, p += stride)
          out[i] = ((((dv.getUint16(p, le) >>> shift) << l) >> l) + off) * scale;
    } else {
      if (raw)
        for (let i = 0; i < n; i++, p += stride)
          out[i] = ((dv.getUint16(p, le) >>> shift) << l) >>> l;
      else
        for (let i = 0; i < n; i++, p += stride)
          out[i] = ((((dv.getUint16(p, le) >>> shift) << l) >>> l) + off) * scale;
    }
  } else {
    if (signed) {
      if (raw)
        for (let i = 0; i < n; i++, p += stride)
          out[i] = ((dv.getUint32(p, le) >>> shift) << l) >> l;
      else
        for (let i = 0; i < n; i++, p += stride)
          out[i] = ((((dv.getUint32(p, le) >>> shift) << l) >> l) + off) * scale;
    } else {
      if (raw)
        for (let i = 0; i < n; i++, p += stride)
          out[i] = ((dv.getUint32(p, le) >>> shift) << l) >>> l;
      else
        for (let i = 0; i < n; i++, p += stride)
          out[i] = ((((dv.getUint32(p, le) >>> shift) << l) >>> l) + off) * scale;
    }
  }
}

/** 64-bit storage as numbers: two 32-bit halves (timestamps in SI, 48-bit values...). */
function demux64(
  dv: DataView,
  p: number,
  stride: number,
  n: number,
  le: boolean,
  shift: number,
  vb: number,
  signed: boolean,
  out: NumberSink,
  raw: boolean,
  scale: number,
  off: number,
): void {
  const loAt = le ? 0 : 4;
  const hiAt = le ? 4 : 0;
  if (shift === 0 && vb === 64) {
    // The common s64 timestamp: hi * 2^32 + lo rounds once, like Number(bigint).
    for (let i = 0; i < n; i++, p += stride) {
      const hi = signed ? dv.getInt32(p + hiAt, le) : dv.getUint32(p + hiAt, le);
      const v = hi * 4294967296 + dv.getUint32(p + loAt, le);
      out[i] = raw ? v : (v + off) * scale;
    }
    return;
  }
  for (let i = 0; i < n; i++, p += stride) {
    const v = fromHalves(dv.getUint32(p + loAt, le), dv.getUint32(p + hiAt, le), shift, vb, signed);
    out[i] = raw ? v : (v + off) * scale;
  }
}

function demuxBigInt(
  data: Uint8Array,
  layout: ScanLayout,
  slot: ScanSlot,
  repeatIndex: number,
  n: number,
): bigint[] {
  const f = slot.format;
  const start = firstByte(slot, repeatIndex);
  const stride = layout.scanBytes;
  const out: bigint[] = [];
  const vb = valueBits(f);
  if (slot.size === 8) {
    const dv = viewOf(data);
    const le = !f.isBigEndian;
    if (f.shift === 0 && vb === 64) {
      for (let i = 0, p = start; i < n; i++, p += stride)
        out.push(f.isSigned ? dv.getBigInt64(p, le) : dv.getBigUint64(p, le));
      return out;
    }
    const s = BigInt(f.shift);
    for (let i = 0, p = start; i < n; i++, p += stride) {
      const w = dv.getBigUint64(p, le) >> s;
      out.push(f.isSigned ? BigInt.asIntN(vb, w) : BigInt.asUintN(vb, w));
    }
    return out;
  }
  for (let i = 0, p = slot.offset; i < n; i++, p += stride)
    out.push(convert(data, p, f, repeatIndex) as bigint);
  return out;
}

/**
 * Every slot's values from a block, keyed by slot key: what a "per channel" message
 * carries. `si` gives each key's scale and offset (keys without one stay raw).
 */
export function demuxAll(
  data: Uint8Array,
  layout: ScanLayout,
  si?: ReadonlyMap<number, ScaleOffset>,
): Map<number, number[] | bigint[]> {
  const out = new Map<number, number[] | bigint[]>();
  for (const slot of layout.slots) {
    const so = si?.get(slot.key);
    out.set(slot.key, demuxChannel(data, layout, slot, so ? { si: so } : {}));
  }
  return out;
}
