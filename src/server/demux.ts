import { computeScanLayout, type ScanLayout } from '../format/layout';
import type { Channel } from '../model/channel';

/** Bytes copied from a source scan to a destination scan. */
interface Segment {
  readonly src: number;
  readonly dst: number;
  readonly len: number;
}

/**
 * Extracts some channels of a stream into the layout the kernel would use for those
 * channels alone (iiod -D's server-side demux, with the kernel's alignment and
 * end-of-scan padding, zero-filled).
 */
export class DemuxPlan {
  /** Bytes per scan in the destination layout. */
  readonly scanBytes: number;
  /** True when the destination is the source unchanged (no copy needed). */
  readonly identity: boolean;
  private readonly segments: Segment[];
  /** Every destination byte is copied from the source: no need to zero the block first. */
  private readonly gapless: boolean;

  constructor(
    private readonly source: ScanLayout,
    channels: readonly Channel[],
  ) {
    const target = computeScanLayout(
      channels.map((c) => ({
        key: c.number,
        index: c.index,
        format: c.format!,
        isTimestamp: c.type === 'timestamp',
      })),
    );
    this.scanBytes = target.scanBytes;
    const segs: Segment[] = [];
    for (const t of target.slots) {
      const s = source.slots.find((x) => x.key === t.key);
      if (!s) throw new Error(`channel ${t.key} is not in the source stream`);
      const prev = segs[segs.length - 1];
      if (prev && prev.dst + prev.len === t.offset && prev.src + prev.len === s.offset) {
        segs[segs.length - 1] = { ...prev, len: prev.len + t.bytes };
      } else if (!prev || prev.dst !== t.offset) {
        // (channels sharing a scan index share storage: copy it once)
        segs.push({ src: s.offset, dst: t.offset, len: t.bytes });
      }
    }
    this.segments = segs;
    // Destination bytes no segment writes (alignment, end-of-scan padding) must be zeros.
    this.gapless = segs.reduce((n, g) => n + g.len, 0) === target.scanBytes;
    this.identity =
      target.scanBytes === source.scanBytes &&
      target.slots.length === source.slots.length &&
      target.slots.every((t) => source.slots.some((s) => s.key === t.key && s.offset === t.offset));
  }

  /** The destination scans for a block of whole source scans. */
  apply(src: Buffer): Buffer {
    if (this.identity) return src;
    const inScan = this.source.scanBytes;
    const outScan = this.scanBytes;
    const n = Math.floor(src.length / inScan);
    // The one copy a demultiplexed reader gets; zero-filled only when it has padding.
    const out = this.gapless ? Buffer.allocUnsafe(n * outScan) : Buffer.alloc(n * outScan);
    for (const seg of this.segments) {
      const { len } = seg;
      let s = seg.src;
      let d = seg.dst;
      if (len >= 32) {
        for (let i = 0; i < n; i++, s += inScan, d += outScan) src.copy(out, d, s, s + len);
      } else if (len === 2) {
        for (let i = 0; i < n; i++, s += inScan, d += outScan) {
          out[d] = src[s];
          out[d + 1] = src[s + 1];
        }
      } else {
        for (let i = 0; i < n; i++, s += inScan, d += outScan) {
          for (let k = 0; k < len; k++) out[d + k] = src[s + k];
        }
      }
    }
    return out;
  }
}
