import { randomBytes } from 'node:crypto';
import { demuxChannel } from '../format/demux';
import { formatScanType } from '../format/scan-type';
import type { Channel } from '../model/channel';
import type { StreamInfo } from './stream-hub';
import { unitOf } from './units';

/** What a capture node puts in `msg.payload`. */
export type CaptureOutput = 'buffer' | 'channels' | 'chart';

/** One channel of `msg.iio.channels`: everything needed to decode a raw Buffer payload. */
export interface ChannelMeta {
  readonly id: string;
  readonly name?: string;
  readonly label?: string;
  /** Kernel channel type (`voltage`, `accel`). */
  readonly type: string;
  /** Scan index. */
  readonly index: number;
  /** Byte offset of the channel's first value inside one scan. */
  readonly byteOffset: number;
  /** Storage format as the kernel writes it (`le:s12/16>>4`). */
  readonly format: string;
  /** `(raw + offset) * scale` gives the value in `unit`. */
  readonly scale: number;
  readonly offset: number;
  readonly unit: string;
}

/** `msg.iio` of a capture message. */
export interface CaptureMeta {
  /** Context URI. */
  readonly context: string;
  /** Device id (`iio:device0`). */
  readonly device: string;
  readonly deviceName?: string;
  /** Channels in the payload (buffer: all in the scan, in scan order; else those asked). */
  readonly channels: readonly ChannelMeta[];
  /** Bytes per scan (the stride of a Buffer payload). */
  readonly scanBytes: number;
  /** Scans in this message. */
  readonly samples: number;
  /** Block number since the stream started. */
  readonly seq: number;
  /** Blocks this node dropped so far (flow behind: more than "max in flight" outstanding). */
  readonly dropped: number;
  /** Blocks skipped so far because they came sooner than "interval" after the last message. */
  readonly skipped: number;
  /** Scans the backend reported lost so far (kernel overrun, reconnect). */
  readonly lost: number;
  /** ms since the epoch when the block reached Node.js. */
  readonly timestamp: number;
  /** Hz, when the device or its trigger tells. */
  readonly samplingFrequency?: number;
  /** `raw` or `si` for per-channel and chart payloads. */
  readonly values?: 'raw' | 'si';
  /** Buffer payloads: gives the block back (a DMABUF to the device) once the flow is done. */
  readonly release?: () => void;
}

/** A Dashboard 2 `ui-chart` point (chart: x key `x`, y key `y`, series key `series`). */
export interface ChartPoint {
  readonly x: number;
  readonly y: number;
  readonly series: string;
}

/**
 * Describes channels of a running stream, in scan order. Frozen: every message of the
 * stream carries this same array, so a downstream node that changed it would change it for
 * all the messages after.
 */
export function describeChannels(
  info: StreamInfo,
  only?: readonly Channel[],
): readonly ChannelMeta[] {
  const buffer = info.buffer;
  const list = only ?? buffer.channels;
  return Object.freeze(
    list.map((c) => {
      const slot = buffer.slotOf(c);
      const so = info.scales.get(c.number) ?? { scale: 1, offset: 0 };
      return Object.freeze({
        id: c.id,
        ...(c.name ? { name: c.name } : {}),
        ...(c.label ? { label: c.label } : {}),
        type: c.type,
        index: c.index,
        byteOffset: slot.offset,
        format: formatScanType(slot.format),
        scale: so.scale,
        offset: so.offset,
        unit: unitOf(c.type),
      });
    }),
  );
}

/** What stays the same in every `msg.iio` of a stream (set when it starts). */
export interface StreamLayout {
  readonly context: string;
  readonly device: string;
  readonly deviceName?: string;
  readonly channels: readonly ChannelMeta[];
  readonly scanBytes: number;
  readonly samplingFrequency?: number;
  readonly values?: 'raw' | 'si';
}

/** What changes from message to message. */
export interface BlockCounts {
  readonly samples: number;
  readonly seq: number;
  readonly dropped: number;
  readonly skipped: number;
  readonly lost: number;
  readonly timestamp: number;
  readonly release?: () => void;
}

/**
 * `msg.iio` for one message: the stream's layout and the block's counts, written as one
 * object literal of a fixed shape (conditional spreads cost several times as much, per
 * message). Keys and their order are those documented in CaptureMeta.
 */
export function captureMeta(l: StreamLayout, b: BlockCounts): CaptureMeta {
  const m: { -readonly [K in keyof CaptureMeta]: CaptureMeta[K] } =
    l.deviceName !== undefined
      ? {
          context: l.context,
          device: l.device,
          deviceName: l.deviceName,
          channels: l.channels,
          scanBytes: l.scanBytes,
          samples: b.samples,
          seq: b.seq,
          dropped: b.dropped,
          skipped: b.skipped,
          lost: b.lost,
          timestamp: b.timestamp,
        }
      : {
          context: l.context,
          device: l.device,
          channels: l.channels,
          scanBytes: l.scanBytes,
          samples: b.samples,
          seq: b.seq,
          dropped: b.dropped,
          skipped: b.skipped,
          lost: b.lost,
          timestamp: b.timestamp,
        };
  if (l.samplingFrequency !== undefined) m.samplingFrequency = l.samplingFrequency;
  if (l.values !== undefined) m.values = l.values;
  if (b.release) m.release = b.release;
  return m;
}

/**
 * `_msgid`s for one node's messages: a random prefix and a counter, 16 hex digits as
 * Node-RED's own. Node-RED makes one for every message sent without one from 8 calls to
 * Math.random(): a tenth of a bare hop's cost at 4 KiB blocks (docs/nodes.md).
 */
export class MessageIds {
  private prefix = randomBytes(4).toString('hex');
  private n = 0;
  next(): string {
    this.n = (this.n + 1) >>> 0;
    // after 2^32 messages a new prefix, so that ids do not repeat
    if (this.n === 0) this.prefix = randomBytes(4).toString('hex');
    return this.prefix + this.n.toString(16).padStart(8, '0');
  }
}

/**
 * `{ <channel id>: number[] }` for the given channels of a block (values wider than 53
 * bits lose precision: JSON and most nodes cannot carry BigInt).
 */
export function perChannel(
  info: StreamInfo,
  data: Buffer,
  channels: readonly Channel[],
  si: boolean,
): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const c of channels) {
    const so = info.scales.get(c.number) ?? { scale: 1, offset: 0 };
    const v = demuxChannel(data, info.buffer.layout, info.buffer.slotOf(c), si ? { si: so } : {});
    out[c.id] = (v as Array<number | bigint>).map(Number);
  }
  return out;
}

/**
 * Sample times for chart x values: a steady clock at the sampling frequency, anchored to
 * when blocks arrive (arrival times jitter by milliseconds; sample times must not, or
 * appended blocks overlap). Re-anchors when the clock and the arrivals drift apart.
 */
export class SampleTimeline {
  private anchor: number | undefined;
  private count = 0;

  reset(): void {
    this.anchor = undefined;
    this.count = 0;
  }

  /**
   * Places `n` scans that arrived at `arrivedAt` (ms), after `lost` scans the device
   * dropped. Without a known frequency the scans are spread over `fallbackSpanMs`.
   */
  place(
    n: number,
    lost: number,
    arrivedAt: number,
    frequency: number | undefined,
    fallbackSpanMs: number,
  ): { startMs: number; dtMs: number } {
    if (!frequency || frequency <= 0) {
      const dt = n > 0 && fallbackSpanMs > 0 ? fallbackSpanMs / n : 0;
      return { startMs: arrivedAt - Math.max(0, n - 1) * dt, dtMs: dt };
    }
    const dt = 1000 / frequency;
    this.count += lost;
    let start = this.anchor === undefined ? NaN : this.anchor + this.count * dt;
    const drift = Math.abs(start + n * dt - arrivedAt);
    if (!Number.isFinite(start) || drift > Math.max(1000, 4 * n * dt)) {
      this.anchor = arrivedAt - (this.count + n) * dt;
      start = this.anchor + this.count * dt;
    }
    this.count += n;
    return { startMs: start, dtMs: dt };
  }
}

/**
 * Chart points for a block: each channel decimated to at most `points` values (every
 * k-th sample), x in ms since the epoch: `startMs + i × dtMs` for scan i.
 */
export function chartPoints(
  info: StreamInfo,
  data: Buffer,
  channels: readonly Channel[],
  si: boolean,
  points: number,
  startMs: number,
  dtMs: number,
): ChartPoint[] {
  const n = Math.floor(data.length / info.buffer.scanBytes);
  if (n === 0) return [];
  const step = Math.max(1, Math.ceil(n / Math.max(1, points)));
  const values = perChannel(info, data, channels, si);
  const out: ChartPoint[] = [];
  for (const c of channels) {
    const v = values[c.id];
    const series = c.label ?? c.id;
    for (let i = 0; i < n; i += step) out.push({ x: startMs + i * dtMs, y: v[i], series });
  }
  return out;
}
