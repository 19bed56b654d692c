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
  /** Elements in ascending scan index (the order the kernel writes them). */
  readonly slots: readonly ScanSlot[];
  /** Bytes per scan, padded to a multiple of the largest element. */
  readonly scanBytes: number;
}

export interface LayoutInput {
  readonly key: number;
  readonly index: number;
  readonly format: DataFormat;
}

/**
 * Computes the kernel's scan layout (iio_compute_scan_bytes): elements in ascending
 * scan index, each aligned to its own size (storage bytes × repeat), the scan padded to
 * the largest element. Elements sharing a scan index share storage (libiio's rule): the
 * first one takes the space, the others read the same bytes.
 */
export function computeScanLayout(elements: readonly LayoutInput[]): ScanLayout {
  const sorted = [...elements].sort((a, b) => a.index - b.index || a.key - b.key);
  const slots: ScanSlot[] = [];
  let offset = 0;
  let largest = 0;
  let prev: ScanSlot | undefined;
  for (const e of sorted) {
    if (e.index < 0) {
      throw new IioError('EINVAL', `element ${e.key} has no scan index and cannot be in a scan`);
    }
    const size = e.format.length / 8;
    const bytes = elementBytes(e.format);
    if (prev && prev.index === e.index) {
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
    if (offset % bytes !== 0) offset += bytes - (offset % bytes);
    const slot = { key: e.key, index: e.index, format: e.format, offset, size, bytes };
    slots.push(slot);
    prev = slot;
    offset += bytes;
    if (bytes > largest) largest = bytes;
  }
  if (largest > 0 && offset % largest !== 0) offset += largest - (offset % largest);
  return { slots, scanBytes: offset };
}
