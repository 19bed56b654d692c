import { convert } from './convert';
import type { ScanLayout, ScanSlot } from './layout';

export interface DemuxOptions {
  /** Convert to SI units with `(raw + offset) * scale`. */
  readonly si?: { readonly scale: number; readonly offset: number };
  /** Which of a repeated element's values to take (default 0). */
  readonly repeatIndex?: number;
}

/**
 * Extracts one channel's values from a block of whole scans: raw numbers (BigInt for
 * more than 53 bits) or, with `si`, numbers in SI units.
 */
export function demuxChannel(
  data: Uint8Array,
  layout: ScanLayout,
  slot: ScanSlot,
  options: DemuxOptions = {},
): number[] | bigint[] {
  const n = Math.floor(data.length / layout.scanBytes);
  const r = options.repeatIndex ?? 0;
  const out: Array<number | bigint> = new Array(n);
  for (let i = 0; i < n; i++)
    out[i] = convert(data, i * layout.scanBytes + slot.offset, slot.format, r);
  if (options.si) {
    const { scale, offset } = options.si;
    return out.map((v) => (Number(v) + offset) * scale);
  }
  return out as number[] | bigint[];
}
