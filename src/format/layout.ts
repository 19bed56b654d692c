import { IioError } from '../errors';
import { elementBytes, type DataFormat } from './scan-type';

/** One enabled scan element as it sits in a scan. */
export interface ScanSlot {
  /** Caller's key (a channel number, an id): passed through untouched. */
  readonly key: number;
  /** Scan index (`*_index`). */
  readonly index: number;
  readonly format: DataFormat;
  /** Byte offset of the element's first value within a scan. */
  readonly offset: number;
  /** Bytes of one value (storage bits / 8). */
  readonly size: number;
  /** Bytes of the whole element (size × repeat). */
  readonly bytes: number;
}

/** Where every enabled element sits in a scan, and how long a scan is. */
export interface ScanLayout {
  /** Elements in the order the kernel writes them: ascending scan index, timestamp last. */
  readonly slots: readonly ScanSlot[];
  /** Bytes per scan, padded to a multiple of the largest element. */
  readonly scanBytes: number;
}

export interface LayoutInput {
  readonly key: number;
  readonly index: number;
  readonly format: DataFormat;
  /**
   * The device's timestamp channel (type `timestamp`). The kernel lays it out after every
   * other element whatever its index, and drivers store it in the last 8 bytes of the
   * scan (iio_push_to_buffers_with_timestamp), which differs from its aligned place only
   * when an element is larger than 8 bytes. Without this flag it is placed by index.
   */
  readonly isTimestamp?: boolean;
}

/** Scans longer than this are refused (the kernel's scan_bytes is an unsigned int). */
const MAX_SCAN_BYTES = 0x7fffffff;

/**
 * The kernel's ALIGN(x, a) (include/linux/align.h): `(x + a - 1) & ~(a - 1)`. A bit mask,
 * so for an `a` that is not a power of two (a repeat count of 3, say) it is not "round up
 * to a multiple of a" — and the kernel uses it as is in iio_compute_scan_bytes.
 */
export function kernelAlign(x: number, a: number): number {
  if (a <= 1) return x;
  const m = a - 1;
  return ((x + m) & ~m) >>> 0;
}

/**
 * Computes the kernel's scan layout for any set of enabled elements
 * (iio_compute_scan_bytes): elements in ascending scan index, each placed at
 * ALIGN(offset, its size) where its size is storage bytes × repeat, the scan padded with
 * ALIGN(total, largest size). For power-of-two sizes (every in-tree driver) that is
 * natural alignment; for others it is the kernel's bit-mask arithmetic, kept so the scan
 * size matches what read() delivers. Elements sharing a scan index share storage
 * (libiio's rule): the first one takes the space, the others read the same bytes (they
 * may not be larger than it). A
 * timestamp flagged `isTimestamp` goes last, in the scan's last bytes.
 * @throws IioError EINVAL for an element without scan index, an element larger than the
 *   one whose storage it shares, or a scan too large.
 */
export function computeScanLayout(elements: readonly LayoutInput[]): ScanLayout {
  for (const e of elements) {
    if (!(e.index >= 0) || !Number.isInteger(e.index)) {
      throw new IioError('EINVAL', `element ${e.key} has no scan index and cannot be in a scan`);
    }
  }
  const last = (e: LayoutInput): number => (e.isTimestamp ? 1 : 0);
  const sorted = [...elements].sort(
    (a, b) => last(a) - last(b) || a.index - b.index || a.key - b.key,
  );
  const slots: ScanSlot[] = [];
  let offset = 0;
  let largest = 0;
  let prev: ScanSlot | undefined;
  let timestamp: { at: number; slot: ScanSlot } | undefined;
  for (const e of sorted) {
    const size = e.format.length / 8;
    const bytes = elementBytes(e.format);
    if (prev && prev.index === e.index) {
      if (bytes > prev.bytes) {
        throw new IioError(
          'EINVAL',
          `element ${e.key} (${bytes} bytes) shares scan index ${e.index} with element ${prev.key}, which has only ${prev.bytes} bytes`,
        );
      }
      slots.push({
        key: e.key,
        index: e.index,
        format: e.format,
        offset: prev.offset,
        size,
        bytes,
      });
      continue;
    }
    offset = kernelAlign(offset, bytes);
    const slot = { key: e.key, index: e.index, format: e.format, offset, size, bytes };
    if (e.isTimestamp) timestamp = { at: slots.length, slot };
    slots.push(slot);
    prev = slot;
    offset += bytes;
    if (bytes > largest) largest = bytes;
    if (offset > MAX_SCAN_BYTES) {
      throw new IioError('EINVAL', `scan of more than ${MAX_SCAN_BYTES} bytes`);
    }
  }
  const scanBytes = kernelAlign(offset, largest);
  if (timestamp && timestamp.slot.offset + timestamp.slot.bytes !== scanBytes) {
    // iio_push_to_buffers_with_timestamp writes at ((s64 *)scan)[scan_bytes / 8 - 1].
    const moved = { ...timestamp.slot, offset: scanBytes - timestamp.slot.bytes };
    for (let i = timestamp.at; i < slots.length; i++) {
      if (slots[i].offset === timestamp.slot.offset)
        slots[i] = { ...slots[i], offset: moved.offset };
    }
  }
  return { slots, scanBytes };
}
