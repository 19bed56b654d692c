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
 * This file is the session and the node's own metrics; it composes the devices (their
 * captures, births and DDATA: edge-devices.ts) and the commands (NCMD/DCMD: edge-commands.ts),
 * each through a small interface of what it needs of the session.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import type { ContextHandle, ContextState, ContextUser } from '../context-handle';
import { EdgeCommands, type CommandOptions } from './edge-commands';
import { EdgeDevices, type DeviceOptions } from './edge-devices';
import { Metric, MetricSet } from './metrics';
import { encodeBirth, encodeData } from './payload';
import { deviceTopic, nodeTopic } from './topics';

export type { CommandResult } from './edge-commands';

/** Publishes handed to the MQTT client and not yet written; beyond this data waits. */
const MAX_UNWRITTEN = 128;
const RECONNECT_MS = [1000, 2000, 5000, 10000];

/** The session's options; what the devices and the commands read is declared beside them. */
export interface EdgeOptions extends DeviceOptions, CommandOptions {
  /** `mqtt://host:port`, `mqtts://`, `ws://`, `wss://`. */
  readonly brokerUrl: string;
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
  /** MQTT keep-alive, seconds: the broker publishes NDEATH this long (×1.5) after a silent loss. */
  readonly keepaliveS: number;
  readonly rejectUnauthorized?: boolean;
  readonly onStatus?: (s: EdgeStatus) => void;
  /** Where bdSeq survives between sessions (default: this process, by broker/group/edge). */
  readonly bdSeqStore?: { load(): number | undefined; save(n: number): void };
}

export type EdgeStatus =
  | { readonly kind: 'connecting'; readonly attempt: number }
  | { readonly kind: 'online'; readonly bdSeq: number; readonly devices: number }
  | { readonly kind: 'error'; readonly error: Error }
  | { readonly kind: 'stopped' };

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

/** The counters kept in EdgeStats and published as node metrics of the same name. */
type Counter = 'commands' | 'refused' | 'dropped' | 'skipped' | 'streamErrors';

const bdSeqMemory = new Map<string, number>();

/** Adds the node's own metrics to `n` in NBIRTH order; returns those updated later, by name. */
function addNodeMetrics(n: MetricSet, handle: ContextHandle, intervalMs: number) {
  const now = Date.now();
  const add = (name: string, type: Metric['type'], value: Metric['value']): Metric => {
    const m = n.add(new Metric(name, type));
    m.set(value, now);
    return m;
  };
  const named = {
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
  named.rebirth.set(false, now);
  add('Context/URI', 'String', handle.uri);
  add('Node Info/Publish Interval', 'Int64', intervalMs);
  return named;
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
  private readonly nodeMetrics: ReturnType<typeof addNodeMetrics>;
  private readonly devices: EdgeDevices;
  private readonly commands: EdgeCommands;
  /** Births, device set-up and commands, one at a time in order. */
  private ops: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly user: ContextUser;

  constructor(
    private readonly handle: ContextHandle,
    private readonly o: EdgeOptions,
  ) {
    this.nodeMetrics = addNodeMetrics(this.node, handle, o.intervalMs);
    this.user = {
      id: `sparkplug:${o.groupId}/${o.edgeNodeId}`,
      onContextState: (s) => this.onContextState(s),
    };
    // The parts see the session through these functions only, not through its fields.
    this.devices = new EdgeDevices(
      {
        online: () => this.connected && this.born,
        stopping: () => this.stopping,
        backlogged: () => this.unwritten >= MAX_UNWRITTEN,
        send: (topic, payload) => this.send(topic, payload),
        peekSeq: () => this.peekSeq(),
        count: (what, at) => this.count(what, at),
      },
      handle,
      o,
      this.user.id,
    );
    this.commands = new EdgeCommands(
      {
        stopping: () => this.stopping,
        node: this.node,
        answer: {
          rebirth: this.nodeMetrics.rebirth,
          lastMetric: this.nodeMetrics.lastMetric,
          lastResult: this.nodeMetrics.lastResult,
        },
        count: (what, at) => this.count(what, at),
        enqueue: (step) => this.enqueue(step),
        flushNode: () => this.flushNode(),
        birth: () => this.birth(),
      },
      this.devices,
      handle,
      o,
    );
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
    await this.devices.drop();
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
    return this.devices.ids();
  }

  // ---------------------------------------------------------------- MQTT session

  private topicN(verb: 'NBIRTH' | 'NDEATH' | 'NDATA' | 'NCMD'): string {
    return nodeTopic(this.o.groupId, verb, this.o.edgeNodeId);
  }

  private topicD(verb: 'DCMD', device: string): string {
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
      client.subscribe([this.topicN('NCMD'), this.topicD('DCMD', '+')], { qos: 1 }, (err) => {
        if (session !== this.session) return;
        if (err) {
          this.o.log('warn', this.o.t('log.subscribe', { error: err.message }));
          client.end(true);
          return;
        }
        this.enqueue(() => this.birth());
      });
    });
    client.on('message', (topic, payload) => this.commands.onMessage(topic, payload));
    client.on('error', (err) => {
      if (session !== this.session) return;
      this.o.onStatus?.({ kind: 'error', error: err });
    });
    client.on('close', () => {
      if (session !== this.session) return;
      this.connected = false;
      this.born = false;
      this.devices.unborn();
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
    this.devices.unborn();
    await this.devices.refreshAll();
    if (!this.connected || session !== this.session || this.stopping) return;
    const now = Date.now();
    for (const m of this.node.list) m.timestamp = now;
    this.nodeMetrics.state.set(this.handle.state.kind, now);
    this.devices.assignAliases(this.node.assignAliases(1));
    // NBIRTH always carries seq 0; everything after counts from there.
    this.seq = 255;
    const nbirth = encodeBirth(
      now,
      this.peekSeq(),
      this.node.list.map((m) => m.birth()),
    );
    if (!this.send(this.topicN('NBIRTH'), nbirth)) return;
    this.node.clearDirty();
    this.devices.births(now);
    this.born = true;
    this.stats.births++;
    this.o.onStatus?.({ kind: 'online', bdSeq: this.bdSeq, devices: this.devices.size });
  }

  // ---------------------------------------------------------------- the context, the timer

  private onContextState(s: ContextState): void {
    if (this.stopping) return;
    this.nodeMetrics.state.set(s.kind, Date.now());
    if (s.kind === 'connected') {
      const ctx = this.handle.context;
      if (ctx && ctx !== this.devices.context) {
        this.enqueue(async () => {
          await this.devices.drop();
          await this.devices.setup(ctx);
          await this.birth();
        });
      } else if (ctx) {
        this.enqueue(() => this.birth());
      }
    } else if (this.devices.size > 0 && s.kind !== 'connecting') {
      // The devices are gone with the context: DDEATH, then forget them.
      this.enqueue(() => this.devices.drop());
    }
  }

  private tick(): void {
    if (this.stopping) return;
    this.devices.tick(Date.now());
    this.flushNode();
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

  private count(what: Counter, now: number): void {
    this.nodeMetrics[what].set(++this.stats[what], now);
  }
}
