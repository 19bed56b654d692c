/**
 * An IIO context as an Eclipse Sparkplug B edge node: one MQTT session (its own client,
 * because the NDEATH with the session's bdSeq has to be the MQTT will of each CONNECT),
 * the context's IIO devices as Sparkplug devices.
 *
 * Session (spec 5.x): every CONNECT carries NDEATH {bdSeq n} as its will (QoS 1, not
 * retained) with n incremented per CONNECT; after CONNACK it subscribes NCMD and DCMD
 * (QoS 1), then publishes NBIRTH (seq 0, the same bdSeq, `Node Control/Rebirth` = false) and
 * one DBIRTH per device; NDATA/DDATA follow, seq +1 per message, wrapping 255 → 0. A
 * rebirth (NCMD, context reconnect) stops data, re-reads the attributes and publishes the
 * births again with the same bdSeq. An intentional stop publishes NDEATH, then DISCONNECT.
 *
 * Data: captures run on the context's shared StreamHub (one kernel buffer per device, shared
 * with iio-capture nodes); each block is folded into per-channel statistics at once and a
 * DDATA goes out when the interval has passed (mean/min/max/last since the last one), so the
 * message rate is the interval's, whatever the sample rate. Channels without a buffer are
 * read on every interval. Only metrics that changed are sent (report by exception).
 *
 * Commands are handled one at a time, at most MAX_PENDING_COMMANDS queued (more are dropped
 * and counted); each answer is in the next DDATA (Last Command/Metric and /Result, the
 * counters, the attribute read back) or NDATA for NCMD and unknown devices.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { IioError } from '../../errors';
import { demuxChannelInto } from '../../format/demux';
import type { Context } from '../../model/context';
import type { Device } from '../../model/device';
import type { ContextHandle, ContextState, ContextUser } from '../context-handle';
import type { HubLink } from '../hub-link';
import type { CaptureRequest, HubBlock, HubSubscriber, StreamInfo } from '../stream-hub';
import { readSamplingFrequency } from '../stream-hub';
import { stableRef } from '../device-ref';
import { commandValue } from './commands';
import { writeChecked } from '../iio-attr-write';
import type { Translate } from './messages';
import {
  attributeSelectors,
  attrValue,
  DeviceMetrics,
  Metric,
  MetricSet,
  type StreamedChannel,
} from './metrics';
import { decodeCommand, encodeBirth, encodeData, type CommandPayload } from './payload';
import { deviceIdOf, deviceTopic, nodeTopic, parseCommandTopic } from './topics';

/** Commands waiting to be handled; beyond this they are dropped and counted. */
const MAX_PENDING_COMMANDS = 64;
/** Publishes handed to the MQTT client and not yet written; beyond this data waits. */
const MAX_UNWRITTEN = 128;
const RECONNECT_MS = [1000, 2000, 5000, 10000];
/** A device timestamp further than this from the arrival time is not CLOCK_REALTIME. */
const CLOCK_SANITY_MS = 60000;

export interface EdgeOptions {
  /** `mqtt://host:port`, `mqtts://`, `ws://`, `wss://`. */
  readonly brokerUrl: string;
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
  /** MQTT keep-alive, seconds: the broker publishes NDEATH this long (×1.5) after a silent loss. */
  readonly keepaliveS: number;
  readonly rejectUnauthorized?: boolean;
  readonly groupId: string;
  readonly edgeNodeId: string;
  /** Devices (id, name or label) to publish; empty: every device of the context. */
  readonly devices: readonly string[];
  /** Minimum time between two DATA messages of one device (ms). */
  readonly intervalMs: number;
  /** Scans per block asked of the hub; absent: about four blocks per interval. */
  readonly samples?: number;
  readonly t: Translate;
  readonly log: (level: 'info' | 'warn', text: string) => void;
  readonly onStatus?: (s: EdgeStatus) => void;
  readonly onCommand?: (r: CommandResult) => void;
  /** Where bdSeq survives between sessions (default: this process, by broker/group/edge). */
  readonly bdSeqStore?: { load(): number | undefined; save(n: number): void };
}

export type EdgeStatus =
  | { readonly kind: 'connecting'; readonly attempt: number }
  | { readonly kind: 'online'; readonly bdSeq: number; readonly devices: number }
  | { readonly kind: 'error'; readonly error: Error }
  | { readonly kind: 'stopped' };

/** One command metric handled (also the node's output message). */
export interface CommandResult {
  readonly verb: 'NCMD' | 'DCMD';
  readonly device?: string;
  readonly metric: string;
  readonly value?: unknown;
  readonly ok: boolean;
  readonly code?: string;
  readonly result: string;
  readonly readBack?: string;
}

/** Counters of one edge node (status, benchmark). */
export interface EdgeStats {
  messages: number;
  bytes: number;
  births: number;
  commands: number;
  refused: number;
  dropped: number;
  skipped: number;
  streamErrors: number;
}

const bdSeqMemory = new Map<string, number>();

/** One IIO device on this edge node. */
interface EdgeDevice {
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

export class SparkplugEdge {
  readonly stats: EdgeStats = {
    messages: 0,
    bytes: 0,
    births: 0,
    commands: 0,
    refused: 0,
    dropped: 0,
    skipped: 0,
    streamErrors: 0,
  };
  private client: MqttClient | undefined;
  private connected = false;
  private stopping = false;
  private bdSeq = -1;
  private seq = 0;
  private born = false;
  private session = 0;
  private attempts = 0;
  private unwritten = 0;
  private readonly node = new MetricSet();
  private readonly nodeMetrics: {
    bdSeq: Metric;
    rebirth: Metric;
    state: Metric;
    lastMetric: Metric;
    lastResult: Metric;
    commands: Metric;
    refused: Metric;
    dropped: Metric;
    skipped: Metric;
    streamErrors: Metric;
  };
  private readonly devices = new Map<string, EdgeDevice>();
  private ctx: Context | undefined;
  /** Births, device set-up and commands, one at a time in order. */
  private ops: Promise<void> = Promise.resolve();
  private pendingCommands = 0;
  private timer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly user: ContextUser;

  constructor(
    private readonly handle: ContextHandle,
    private readonly o: EdgeOptions,
  ) {
    const n = this.node;
    const now = Date.now();
    const add = (name: string, type: Metric['type'], value: Metric['value']): Metric => {
      const m = n.add(new Metric(name, type));
      m.set(value, now);
      return m;
    };
    this.nodeMetrics = {
      bdSeq: add('bdSeq', 'Int64', 0),
      rebirth: n.add(new Metric('Node Control/Rebirth', 'Boolean', { noAlias: true })),
      state: add('Context/State', 'String', handle.state.kind),
      lastMetric: add('Last Command/Metric', 'String', ''),
      lastResult: add('Last Command/Result', 'String', ''),
      commands: add('Stats/Commands', 'UInt64', 0),
      refused: add('Stats/Commands Refused', 'UInt64', 0),
      dropped: add('Stats/Commands Dropped', 'UInt64', 0),
      skipped: add('Stats/Data Skipped', 'UInt64', 0),
      streamErrors: add('Stats/Stream Errors', 'UInt64', 0),
    };
    this.nodeMetrics.rebirth.set(false, now);
    add('Context/URI', 'String', handle.uri);
    add('Node Info/Publish Interval', 'Int64', o.intervalMs);
    this.user = {
      id: `sparkplug:${o.groupId}/${o.edgeNodeId}`,
      onContextState: (s) => this.onContextState(s),
    };
  }

  /** Registers with the context (opening it) and connects to the broker. */
  start(): void {
    this.handle.register(this.user);
    this.connect();
    // Half the interval: a device without blocks (polled channels, state changes) is late by
    // at most that much.
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(this.o.intervalMs / 2, 500)));
  }

  /** NDEATH, DISCONNECT, captures closed, context released. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.timer);
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    if (client) {
      if (this.connected) {
        // 3.1.1: the will is not sent after a DISCONNECT, so say it ourselves first (QoS 1).
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 2000);
          client.publish(
            this.topicN('NDEATH'),
            this.deathPayload(),
            { qos: 1, retain: false },
            () => {
              clearTimeout(t);
              resolve();
            },
          );
        });
      }
      this.connected = false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          client.end(true);
          resolve();
        }, 2000);
        client.end(false, {}, () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const ops = this.ops;
    await ops.catch(() => undefined);
    await this.dropDevices();
    await this.handle.deregister(this.user);
    this.o.onStatus?.({ kind: 'stopped' });
  }

  /** The bdSeq of the current (or last) CONNECT. */
  get currentBdSeq(): number {
    return this.bdSeq;
  }

  get isOnline(): boolean {
    return this.connected && this.born;
  }

  get deviceIds(): string[] {
    return [...this.devices.keys()];
  }

  // ---------------------------------------------------------------- MQTT session

  private topicN(verb: 'NBIRTH' | 'NDEATH' | 'NDATA' | 'NCMD'): string {
    return nodeTopic(this.o.groupId, verb, this.o.edgeNodeId);
  }

  private topicD(verb: 'DBIRTH' | 'DDEATH' | 'DDATA' | 'DCMD', device: string): string {
    return deviceTopic(this.o.groupId, verb, this.o.edgeNodeId, device);
  }

  private nextBdSeq(): number {
    const key = `${this.o.brokerUrl}|${this.o.groupId}|${this.o.edgeNodeId}`;
    const prev = this.o.bdSeqStore ? this.o.bdSeqStore.load() : bdSeqMemory.get(key);
    const next = prev === undefined ? 0 : (prev + 1) % 256;
    if (this.o.bdSeqStore) this.o.bdSeqStore.save(next);
    else bdSeqMemory.set(key, next);
    return next;
  }

  private deathPayload(): Buffer {
    const now = Date.now();
    return encodeBirth(now, undefined, [
      { name: 'bdSeq', type: 'Int64', value: this.bdSeq, timestamp: now },
    ]);
  }

  private connect(): void {
    if (this.stopping) return;
    const mqtt = require('mqtt') as typeof import('mqtt');
    // A new bdSeq for every CONNECT packet: the will names this session and no other.
    this.bdSeq = this.nextBdSeq();
    this.nodeMetrics.bdSeq.set(this.bdSeq, Date.now());
    const session = ++this.session;
    this.o.onStatus?.({ kind: 'connecting', attempt: this.attempts });
    const options: IClientOptions = {
      clientId: this.o.clientId,
      keepalive: this.o.keepaliveS,
      clean: true,
      protocolVersion: 4,
      // Our own reconnect loop: each CONNECT needs a new will (bdSeq).
      reconnectPeriod: 0,
      connectTimeout: 10000,
      // Never queue data while offline: a birth follows every connect.
      queueQoSZero: false,
      will: { topic: this.topicN('NDEATH'), payload: this.deathPayload(), qos: 1, retain: false },
      ...(this.o.username ? { username: this.o.username } : {}),
      ...(this.o.password ? { password: this.o.password } : {}),
      ...(this.o.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
    };
    let client: MqttClient;
    try {
      client = mqtt.connect(this.o.brokerUrl, options);
    } catch (err) {
      this.o.onStatus?.({ kind: 'error', error: err as Error });
      this.scheduleReconnect();
      return;
    }
    this.client = client;
    client.on('connect', () => {
      if (session !== this.session || this.stopping) return;
      this.connected = true;
      this.attempts = 0;
      this.unwritten = 0;
      // Subscribe first (QoS 1), then births (spec: NCMD subscription before NBIRTH).
      client.subscribe([this.topicN('NCMD'), `${this.topicD('DCMD', '+')}`], { qos: 1 }, (err) => {
        if (session !== this.session) return;
        if (err) {
          this.o.log('warn', this.o.t('log.subscribe', { error: err.message }));
          client.end(true);
          return;
        }
        this.enqueue(() => this.birth());
      });
    });
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err) => {
      if (session !== this.session) return;
      this.o.onStatus?.({ kind: 'error', error: err });
    });
    client.on('close', () => {
      if (session !== this.session) return;
      this.connected = false;
      this.born = false;
      for (const d of this.devices.values()) d.born = false;
      if (!this.stopping) {
        client.removeAllListeners('connect');
        client.end(true);
        this.scheduleReconnect();
      }
    });
  }

  private scheduleReconnect(): void {
    if (this.stopping) return;
    clearTimeout(this.reconnectTimer);
    const delay = RECONNECT_MS[Math.min(this.attempts++, RECONNECT_MS.length - 1)];
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Publishes with the next seq; false (nothing sent) when the client is not connected. */
  private send(topic: string, payload: Buffer, countSeq = true): boolean {
    const client = this.client;
    if (!client || !this.connected) return false;
    if (countSeq) this.seq = (this.seq + 1) % 256;
    this.unwritten++;
    this.stats.messages++;
    this.stats.bytes += payload.length;
    client.publish(topic, payload, { qos: 0, retain: false }, () => {
      this.unwritten--;
    });
    return true;
  }

  /** The seq the next message carries. */
  private peekSeq(): number {
    return (this.seq + 1) % 256;
  }

  // ---------------------------------------------------------------- births

  private enqueue(step: () => Promise<void>): void {
    this.ops = this.ops.then(step).catch((err: unknown) => {
      this.o.log('warn', (err as Error).message);
    });
  }

  /**
   * NBIRTH and every DBIRTH, with the attributes read anew. Data stops first (spec
   * rebirth-action-1) and resumes after the last DBIRTH.
   */
  private async birth(): Promise<void> {
    if (!this.connected || this.stopping) return;
    const session = this.session;
    this.born = false;
    for (const d of this.devices.values()) d.born = false;
    await Promise.all([...this.devices.values()].map((d) => this.refresh(d)));
    if (!this.connected || session !== this.session || this.stopping) return;
    const now = Date.now();
    for (const m of this.node.list) m.timestamp = now;
    this.nodeMetrics.state.set(this.handle.state.kind, now);
    let alias = this.node.assignAliases(1);
    for (const d of this.devices.values()) alias = d.metrics.set.assignAliases(alias);
    // NBIRTH always carries seq 0; everything after counts from there.
    this.seq = 255;
    const nbirth = encodeBirth(
      now,
      this.peekSeq(),
      this.node.list.map((m) => m.birth()),
    );
    if (!this.send(this.topicN('NBIRTH'), nbirth)) return;
    this.node.clearDirty();
    for (const d of this.devices.values()) this.deviceBirth(d, now);
    this.born = true;
    this.stats.births++;
    this.o.onStatus?.({ kind: 'online', bdSeq: this.bdSeq, devices: this.devices.size });
  }

  private deviceBirth(d: EdgeDevice, now: number): void {
    const payload = encodeBirth(
      now,
      this.peekSeq(),
      d.metrics.set.list.map((m) => m.birth()),
    );
    if (!this.send(this.topicD('DBIRTH', d.spId), payload)) return;
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

  // ---------------------------------------------------------------- the context and its devices

  private onContextState(s: ContextState): void {
    if (this.stopping) return;
    this.nodeMetrics.state.set(s.kind, Date.now());
    if (s.kind === 'connected') {
      const ctx = this.handle.context;
      if (ctx && ctx !== this.ctx) {
        this.enqueue(async () => {
          await this.dropDevices();
          await this.setupDevices(ctx);
          await this.birth();
        });
      } else if (ctx) {
        this.enqueue(() => this.birth());
      }
    } else if (this.devices.size > 0 && s.kind !== 'connecting') {
      // The devices are gone with the context: DDEATH, then forget them.
      this.enqueue(() => this.dropDevices());
    }
  }

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

  private async setupDevices(ctx: Context): Promise<void> {
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
      id: `${this.user.id}/${d.spId}`,
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

  private async dropDevices(): Promise<void> {
    const now = Date.now();
    for (const d of this.devices.values()) {
      if (d.born && this.born) {
        this.send(this.topicD('DDEATH', d.spId), encodeData(now, this.peekSeq(), []));
      }
      d.born = false;
    }
    const list = [...this.devices.values()];
    this.devices.clear();
    this.ctx = undefined;
    await Promise.all(list.map((d) => this.unsubscribe(d)));
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
    if (this.stopping) return false;
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
    this.stats.streamErrors++;
    const now = Date.now();
    this.nodeMetrics.streamErrors.set(this.stats.streamErrors, now);
    d.metrics.streamState?.set(err.message, now);
  }

  /** Folds the statistics into the metrics and publishes a DDATA of what changed. */
  private flush(d: EdgeDevice, now: number, force: boolean): void {
    if (!this.born || !d.born || !this.connected) return;
    if (!force && now - d.lastFlush < this.o.intervalMs) return;
    if (this.unwritten >= MAX_UNWRITTEN) {
      // The broker (or the link) is behind: keep aggregating, count the interval once.
      if (!d.skipping) {
        d.skipping = true;
        this.stats.skipped++;
        this.nodeMetrics.skipped.set(this.stats.skipped, now);
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
    this.send(
      this.topicD('DDATA', d.spId),
      encodeData(
        now,
        this.peekSeq(),
        changed.map((x) => x.data()),
      ),
    );
  }

  private flushNode(): void {
    if (!this.born || !this.connected) return;
    const changed = this.node.takeDirty();
    if (changed.length === 0) return;
    const now = Date.now();
    this.send(
      this.topicN('NDATA'),
      encodeData(
        now,
        this.peekSeq(),
        changed.map((x) => x.data()),
      ),
    );
  }

  private tick(): void {
    if (this.stopping) return;
    const now = Date.now();
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
    this.flushNode();
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

  // ---------------------------------------------------------------- commands

  private onMessage(topic: string, payload: Buffer): void {
    if (this.stopping) return;
    const cmd = parseCommandTopic(topic, this.o.groupId, this.o.edgeNodeId);
    if (!cmd) return;
    if (this.pendingCommands >= MAX_PENDING_COMMANDS) {
      this.stats.dropped++;
      this.nodeMetrics.dropped.set(this.stats.dropped, Date.now());
      return;
    }
    this.pendingCommands++;
    // Copy: the client may reuse its read buffer once this handler returns.
    const data = Buffer.from(payload);
    this.enqueue(async () => {
      try {
        if (cmd.verb === 'NCMD') await this.nodeCommand(data);
        else await this.deviceCommand(cmd.device, data);
      } finally {
        this.pendingCommands--;
      }
    });
  }

  private decode(data: Buffer): CommandPayload | IioError {
    try {
      const p = decodeCommand(data);
      if (p.metrics.length === 0) return new IioError('EINVAL', this.o.t('refuse.noMetrics'));
      return p;
    } catch (err) {
      return new IioError('EPROTO', this.o.t('refuse.malformed', { why: (err as Error).message }));
    }
  }

  private report(
    r: Omit<CommandResult, 'ok' | 'result' | 'code'>,
    outcome: IioError | { readBack?: string },
    target: { lastMetric: Metric; lastResult: Metric; accepted?: Metric; refused?: Metric },
  ): void {
    const now = Date.now();
    const ok = !(outcome instanceof IioError);
    const result = ok ? this.o.t('result.ok') : outcome.message;
    this.stats.commands++;
    this.nodeMetrics.commands.set(this.stats.commands, now);
    if (!ok) {
      this.stats.refused++;
      this.nodeMetrics.refused.set(this.stats.refused, now);
      target.refused?.set(Number(target.refused.value ?? 0) + 1, now);
    } else {
      target.accepted?.set(Number(target.accepted.value ?? 0) + 1, now);
    }
    target.lastMetric.set(r.metric, now, true);
    target.lastResult.set(result, now, true);
    this.o.onCommand?.({
      ...r,
      ok,
      result,
      ...(ok ? {} : { code: outcome.code }),
      ...(ok && outcome.readBack !== undefined ? { readBack: outcome.readBack } : {}),
    });
  }

  private async nodeCommand(data: Buffer): Promise<void> {
    const nm = this.nodeMetrics;
    const p = this.decode(data);
    if (p instanceof IioError) {
      this.report({ verb: 'NCMD', metric: '' }, p, {
        lastMetric: nm.lastMetric,
        lastResult: nm.lastResult,
      });
      this.flushNode();
      return;
    }
    let rebirth = false;
    for (const c of p.metrics) {
      const m = this.node.find(c.name, c.alias);
      const label = m?.name ?? c.name ?? `alias ${c.alias}`;
      let outcome: IioError | { readBack?: string };
      if (m === nm.rebirth) {
        try {
          const v = commandValue('Boolean', m.name, c, this.o.t);
          if (v !== true) throw new IioError('EINVAL', this.o.t('refuse.rebirthFalse'));
          rebirth = true;
          outcome = {};
        } catch (err) {
          outcome = IioError.wrap(err);
        }
      } else if (m) {
        outcome = new IioError('EACCES', this.o.t('refuse.readOnly', { metric: label }));
      } else {
        outcome = new IioError(
          'ENOENT',
          this.o.t('refuse.noMetric', { metric: label, target: this.o.edgeNodeId }),
        );
      }
      this.report({ verb: 'NCMD', metric: label, value: c.value }, outcome, {
        lastMetric: nm.lastMetric,
        lastResult: nm.lastResult,
      });
    }
    if (rebirth) await this.birth();
    else this.flushNode();
  }

  private async deviceCommand(spId: string, data: Buffer): Promise<void> {
    const d = this.devices.get(spId);
    const nm = this.nodeMetrics;
    if (!d) {
      // No such device here: the answer goes in NDATA.
      this.report(
        { verb: 'DCMD', device: spId, metric: '' },
        new IioError('ENODEV', this.o.t('refuse.noDevice', { device: spId })),
        { lastMetric: nm.lastMetric, lastResult: nm.lastResult },
      );
      this.flushNode();
      return;
    }
    const m = d.metrics;
    const p = this.decode(data);
    if (p instanceof IioError) {
      this.report({ verb: 'DCMD', device: spId, metric: '' }, p, m);
    } else {
      let wroteFrequency = false;
      for (const c of p.metrics) {
        const target = m.set.find(c.name, c.alias);
        const label = target?.name ?? c.name ?? `alias ${c.alias}`;
        let outcome: IioError | { readBack?: string };
        try {
          if (!target) {
            throw new IioError(
              'ENOENT',
              this.o.t('refuse.noMetric', { metric: label, target: spId }),
            );
          }
          const sel = target.options.attr;
          if (!sel) throw new IioError('EACCES', this.o.t('refuse.readOnly', { metric: label }));
          const value = commandValue(target.type, label, c, this.o.t);
          const ctx = this.handle.context;
          if (!ctx) throw new IioError('ENOTCONN', this.o.t('refuse.noContext'));
          const r = await writeChecked(ctx, sel, value, true);
          const now = Date.now();
          target.set(attrValue(r.readBack ?? r.written, target.type), now);
          if (sel.attr === 'sampling_frequency') wroteFrequency = true;
          outcome = r;
        } catch (err) {
          outcome = IioError.wrap(err);
        }
        this.report({ verb: 'DCMD', device: spId, metric: label, value: c.value }, outcome, m);
      }
      if (wroteFrequency && m.streaming && !this.o.samples && d.sub) {
        // The block size follows the rate: resubscribe so the hub re-plans its buffer.
        await this.unsubscribe(d);
        await this.subscribe(d);
      }
    }
    this.flush(d, Date.now(), true);
    this.flushNode();
  }
}
