/**
 * The IIO devices of a Sparkplug edge node (edge.ts holds the MQTT session): which devices,
 * their metrics, their captures and the DBIRTH, DDATA and DDEATH each one publishes.
 *
 * Captures run on the context's shared StreamHub (one kernel buffer per device, shared with
 * iio-capture nodes); each block is folded into per-channel statistics at once and a DDATA
 * goes out when the interval has passed (mean/min/max/last since the last one), so the
 * message rate is the interval's, whatever the sample rate. Channels without a buffer are
 * read on every interval. Only metrics that changed are sent (report by exception).
 */
import type { IioError } from '../../errors';
import { demuxChannelInto } from '../../format/demux';
import type { Context } from '../../model/context';
import type { Device } from '../../model/device';
import type { ContextHandle } from '../context-handle';
import type { HubLink } from '../hub-link';
import type { CaptureRequest, HubBlock, HubSubscriber, StreamInfo } from '../stream-hub';
import { readSamplingFrequency } from '../stream-hub';
import { stableRef } from '../device-ref';
import type { Translate } from './messages';
import { attributeSelectors, attrValue, DeviceMetrics, type StreamedChannel } from './metrics';
import { encodeBirth, encodeData } from './payload';
import { deviceIdOf, deviceTopic } from './topics';

/** A device timestamp further than this from the arrival time is not CLOCK_REALTIME. */
const CLOCK_SANITY_MS = 60000;

/** One IIO device on this edge node. */
export interface EdgeDevice {
  readonly spId: string;
  readonly device: Device;
  readonly metrics: DeviceMetrics;
  sub?: HubSubscriber;
  hub?: HubLink;
  born: boolean;
  lastFlush: number;
  skipping: boolean;
  polling: boolean;
  /** Stream bookkeeping since the last DDATA. */
  scans: number;
  lostTotal: number;
  sampleAt: number;
  /** When the last block arrived: while blocks flow, they trigger the DDATA, not the timer. */
  lastBlockAt: number;
  tsSlot?: StreamedChannel['slot'];
  scratch: Float64Array;
}

/** What the devices need of the edge node's MQTT session (edge.ts). */
export interface DeviceSession {
  /** Connected and NBIRTH sent: device messages may follow. */
  online(): boolean;
  stopping(): boolean;
  /** The client holds too many unwritten publishes: data keeps aggregating meanwhile. */
  backlogged(): boolean;
  /** Publishes with the next seq; false (nothing sent) when the client is not connected. */
  send(topic: string, payload: Buffer): boolean;
  /** The seq the next message carries. */
  peekSeq(): number;
  /** One more in EdgeStats and in the node metric of the same name. */
  count(what: 'skipped' | 'streamErrors', now: number): void;
}

/** The options the devices read (part of EdgeOptions). */
export interface DeviceOptions {
  readonly groupId: string;
  readonly edgeNodeId: string;
  /** Devices (id, name or label) to publish; empty: every device of the context. */
  readonly devices: readonly string[];
  /** Minimum time between two DATA messages of one device (ms). */
  readonly intervalMs: number;
  /** Scans per block asked of the hub; absent: about four blocks per interval. */
  readonly samples?: number;
  readonly t: Translate;
  /** Also the session's: where warnings go (the node's log). */
  readonly log: (level: 'info' | 'warn', text: string) => void;
}

export class EdgeDevices {
  private readonly devices = new Map<string, EdgeDevice>();
  private ctx: Context | undefined;

  constructor(
    private readonly session: DeviceSession,
    private readonly handle: ContextHandle,
    private readonly o: DeviceOptions,
    /** The edge node's ContextUser id: its hub subscribers are named after it. */
    private readonly userId: string,
  ) {}

  /** The context the devices were set up from (undefined once dropped). */
  get context(): Context | undefined {
    return this.ctx;
  }

  get size(): number {
    return this.devices.size;
  }

  ids(): string[] {
    return [...this.devices.keys()];
  }

  get(spId: string): EdgeDevice | undefined {
    return this.devices.get(spId);
  }

  private topic(verb: 'DBIRTH' | 'DDEATH' | 'DDATA', device: string): string {
    return deviceTopic(this.o.groupId, verb, this.o.edgeNodeId, device);
  }

  // ---------------------------------------------------------------- set up and drop

  private pickDevices(ctx: Context): Device[] {
    if (this.o.devices.length === 0) return [...ctx.devices];
    const out: Device[] = [];
    for (const want of this.o.devices) {
      const d = ctx.findDevice(want);
      if (!d) {
        this.o.log('warn', this.o.t('log.noDevice', { device: want, uri: ctx.uri }));
        continue;
      }
      if (!out.includes(d)) out.push(d);
    }
    return out;
  }

  async setup(ctx: Context): Promise<void> {
    this.ctx = ctx;
    const devices = this.pickDevices(ctx);
    const taken = new Set<string>();
    for (const dev of devices) {
      // The device id on the wire: its name (what people call it), its IIO id when two share one.
      let spId = deviceIdOf(dev.name ?? dev.id);
      if (taken.has(spId)) spId = deviceIdOf(dev.id);
      taken.add(spId);
      const texts = new Map<string, string | undefined>();
      await Promise.all(
        attributeSelectors(dev).map(async (a) => {
          try {
            texts.set(a.name, await a.read());
          } catch {
            texts.set(a.name, undefined);
          }
        }),
      );
      const streaming = dev.channels.some(
        (c) => c.isScanElement && !c.isOutput && c.type !== 'timestamp',
      );
      const metrics = new DeviceMetrics(dev, streaming, texts);
      for (const p of metrics.polled) {
        try {
          const so = p.attr === 'raw' ? await p.channel.readScaleOffset() : { scale: 1, offset: 0 };
          p.scale = so.scale;
          p.offset = so.offset;
        } catch {
          // scale unreadable: values stay raw × 1
        }
      }
      const d: EdgeDevice = {
        spId,
        device: dev,
        metrics,
        born: false,
        lastFlush: 0,
        skipping: false,
        polling: false,
        scans: 0,
        lostTotal: 0,
        sampleAt: 0,
        lastBlockAt: 0,
        scratch: new Float64Array(1024),
      };
      this.devices.set(spId, d);
      if (streaming) await this.subscribe(d);
    }
  }

  private async subscribe(d: EdgeDevice): Promise<void> {
    let samples = this.o.samples;
    if (!samples) {
      const hz = await readSamplingFrequency(d.device);
      samples = hz ? Math.round((hz * this.o.intervalMs) / 4000) : 256;
      samples = Math.min(65536, Math.max(16, samples));
    }
    const request: CaptureRequest = { channels: [], samples };
    const sub: HubSubscriber = {
      id: `${this.userId}/${d.spId}`,
      request,
      onStarted: (info) => this.onStarted(d, info),
      onBlock: (block, info) => this.onBlock(d, block, info),
      onError: (err) => this.onStreamError(d, err),
      onStopped: () => d.metrics.streamState?.set('stopped', Date.now()),
    };
    // The reference the editor saves (label, else name): a capture node picked in its
    // dialog names the device the same way, so both share one hub and one kernel buffer.
    const ref = this.ctx ? stableRef(this.ctx, d.device) : d.device.id;
    const hub = this.handle.hub(ref, d.device.id);
    d.sub = sub;
    d.hub = hub;
    hub.subscribe(sub);
  }

  private async unsubscribe(d: EdgeDevice): Promise<void> {
    const hub = d.hub;
    const sub = d.sub;
    d.hub = undefined;
    d.sub = undefined;
    if (hub && sub) await hub.unsubscribe(sub);
  }

  /** After a sampling_frequency write: the block size follows the rate, so the hub re-plans. */
  async replan(d: EdgeDevice): Promise<void> {
    if (!d.metrics.streaming || this.o.samples || !d.sub) return;
    await this.unsubscribe(d);
    await this.subscribe(d);
  }

  /** DDEATH for those born, then captures closed and the devices forgotten. */
  async drop(): Promise<void> {
    const now = Date.now();
    for (const d of this.devices.values()) {
      if (d.born && this.session.online()) {
        this.session.send(
          this.topic('DDEATH', d.spId),
          encodeData(now, this.session.peekSeq(), []),
        );
      }
      d.born = false;
    }
    const list = [...this.devices.values()];
    this.devices.clear();
    this.ctx = undefined;
    await Promise.all(list.map((d) => this.unsubscribe(d)));
  }

  // ---------------------------------------------------------------- births

  /** No device is born any more (the session closed, or a rebirth begins). */
  unborn(): void {
    for (const d of this.devices.values()) d.born = false;
  }

  /** Every device's attributes and polled channels read anew, before the births. */
  async refreshAll(): Promise<void> {
    await Promise.all([...this.devices.values()].map((d) => this.refresh(d)));
  }

  /** Aliases from `first` on, device after device; the next free one. */
  assignAliases(first: number): number {
    let alias = first;
    for (const d of this.devices.values()) alias = d.metrics.set.assignAliases(alias);
    return alias;
  }

  /** One DBIRTH per device (right after the NBIRTH). */
  births(now: number): void {
    for (const d of this.devices.values()) this.birth(d, now);
  }

  private birth(d: EdgeDevice, now: number): void {
    const payload = encodeBirth(
      now,
      this.session.peekSeq(),
      d.metrics.set.list.map((m) => m.birth()),
    );
    if (!this.session.send(this.topic('DBIRTH', d.spId), payload)) return;
    d.metrics.set.clearDirty();
    d.born = true;
    d.lastFlush = now;
  }

  /** Re-reads attributes and polled channels (before a birth, after a write). */
  private async refresh(d: EdgeDevice): Promise<void> {
    const now = Date.now();
    await Promise.all(
      d.metrics.attrs.map(async ({ metric, read }) => {
        let text: string | undefined;
        try {
          text = await read();
        } catch {
          text = undefined;
        }
        metric.set(attrValue(text, metric.type), now);
      }),
    );
    await this.poll(d);
    // Buffered channels before the first block: the driver's last raw value, when it answers.
    for (const s of d.metrics.streamed) {
      if (s.raw.value !== null) continue;
      try {
        const raw = Number((await s.channel.readAttr('raw')).trim());
        if (Number.isFinite(raw)) {
          const so = await s.channel.readScaleOffset();
          s.raw.set(raw, now);
          s.value.set((raw + so.offset) * so.scale, now);
        }
      } catch {
        // A buffer holds the channel (EBUSY) or it has no raw: null until the first block.
      }
    }
  }

  // ---------------------------------------------------------------- data

  private onStarted(d: EdgeDevice, info: StreamInfo): void {
    d.tsSlot = undefined;
    for (const c of info.buffer.channels) {
      if (c.type === 'timestamp') d.tsSlot = info.buffer.slotOf(c);
    }
    for (const s of d.metrics.streamed) {
      const inBuffer = info.buffer.channels.includes(s.channel);
      s.slot = inBuffer ? info.buffer.slotOf(s.channel) : undefined;
      const so = info.scales.get(s.channel.number) ?? { scale: 1, offset: 0 };
      s.scale = so.scale;
      s.offset = so.offset;
      s.stats.reset();
    }
    const now = Date.now();
    if (info.samplingFrequency !== undefined) d.metrics.frequency?.set(info.samplingFrequency, now);
    d.metrics.streamState?.set('streaming', now);
  }

  private onBlock(d: EdgeDevice, block: HubBlock, info: StreamInfo): boolean {
    if (this.session.stopping()) return false;
    const n = block.samples;
    if (d.scratch.length < n) d.scratch = new Float64Array(n);
    const layout = info.buffer.layout;
    for (const s of d.metrics.streamed) {
      if (!s.slot) continue;
      demuxChannelInto(block.data, layout, s.slot, d.scratch);
      s.stats.add(d.scratch, n);
    }
    let at = block.receivedAt;
    if (d.tsSlot && n > 0) {
      const last = block.data.subarray((n - 1) * layout.scanBytes, n * layout.scanBytes);
      const one = new Float64Array(1);
      demuxChannelInto(last, layout, d.tsSlot, one);
      const ms = one[0] / 1e6;
      // CLOCK_REALTIME nanoseconds (IIO's default); another clock falls back to arrival time.
      if (Math.abs(ms - block.receivedAt) < CLOCK_SANITY_MS) at = ms;
    }
    d.sampleAt = at;
    d.lastBlockAt = block.receivedAt;
    d.scans += n;
    d.lostTotal += block.lost;
    this.flush(d, block.receivedAt, false);
    return false;
  }

  private onStreamError(d: EdgeDevice, err: IioError): void {
    const now = Date.now();
    this.session.count('streamErrors', now);
    d.metrics.streamState?.set(err.message, now);
  }

  /** Folds the statistics into the metrics and publishes a DDATA of what changed. */
  flush(d: EdgeDevice, now: number, force: boolean): void {
    if (!this.session.online() || !d.born) return;
    if (!force && now - d.lastFlush < this.o.intervalMs) return;
    if (this.session.backlogged()) {
      // The broker (or the link) is behind: keep aggregating, count the interval once.
      if (!d.skipping) {
        d.skipping = true;
        this.session.count('skipped', now);
      }
      return;
    }
    d.skipping = false;
    const m = d.metrics;
    for (const s of m.streamed) {
      const st = s.stats;
      if (st.count === 0) continue;
      const at = d.sampleAt;
      const si = (raw: number): number => (raw + s.offset) * s.scale;
      const lo = si(st.min);
      const hi = si(st.max);
      s.value.set(si(st.last), at);
      s.raw.set(st.last, at);
      s.mean.set(si(st.sum / st.count), at);
      s.min.set(Math.min(lo, hi), at);
      s.max.set(Math.max(lo, hi), at);
      st.reset();
    }
    if (m.scans && d.scans > 0) {
      m.scans.set(d.scans, d.sampleAt, true);
      d.scans = 0;
    }
    m.lost?.set(d.lostTotal, now);
    const changed = m.set.takeDirty();
    d.lastFlush = now;
    if (changed.length === 0) return;
    this.session.send(
      this.topic('DDATA', d.spId),
      encodeData(
        now,
        this.session.peekSeq(),
        changed.map((x) => x.data()),
      ),
    );
  }

  /** The timer's turn: each device whose interval has passed publishes (polling first). */
  tick(now: number): void {
    for (const d of this.devices.values()) {
      if (now - d.lastFlush < this.o.intervalMs) continue;
      // A flowing stream publishes from its blocks, right after the newest sample; the
      // timer covers devices without blocks (polled channels, state changes, a stall).
      const flowing = now - d.lastBlockAt < this.o.intervalMs;
      if (d.metrics.polled.length === 0) {
        if (!flowing) this.flush(d, now, false);
        continue;
      }
      if (d.polling) continue;
      d.polling = true;
      this.poll(d)
        .then(() => {
          if (!flowing) this.flush(d, Date.now(), false);
        })
        .catch(() => undefined)
        .finally(() => (d.polling = false));
    }
  }

  /** Reads the channels outside any buffer (`raw` × scale, or `input`). */
  private async poll(d: EdgeDevice): Promise<void> {
    await Promise.all(
      d.metrics.polled.map(async (p) => {
        const now = Date.now();
        try {
          const v = Number((await p.channel.readAttr(p.attr)).trim());
          if (!Number.isFinite(v)) throw new Error('not a number');
          p.raw?.set(v, now);
          p.value.set(p.attr === 'raw' ? (v + p.offset) * p.scale : v, now);
        } catch {
          p.raw?.set(null, now);
          p.value.set(null, now);
        }
      }),
    );
  }
}
