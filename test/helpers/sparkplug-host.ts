/**
 * A Sparkplug B host application for the tests and the benchmark, written from the rules of
 * the Eclipse Sparkplug 3.0 specification (chapters 4–6), decoding with sparkplug-codec.ts
 * (protobufjs and test/fixtures/sparkplug/sparkplug_b.proto) — not with the node's decoder
 * (Tahu's generated code in sparkplug-payload). Every rule it checks that a message breaks is recorded in
 * `violations` (tests assert it stays empty); what it saw is kept per edge node and device.
 */
import type { MqttClient } from 'mqtt';
import {
  DT,
  FIELD_OF,
  hostEncode,
  hostDecode,
  num,
  valueOf,
  type HostCommandMetric,
  type HostValue,
  type RawMetric,
  type RawPayload,
} from './sparkplug-codec';

export interface HostMetric {
  name: string;
  alias?: number;
  datatype: number;
  value: HostValue;
  timestamp?: number;
  properties: Record<string, unknown>;
}

export interface HostDevice {
  online: boolean;
  births: number;
  metrics: Map<string, HostMetric>;
  /** Values in the order DDATA messages brought them: name → [value, timestamp, received]. */
  data: Array<{ name: string; value: HostValue; timestamp: number; receivedAt: number }>;
}

export interface HostEdge {
  readonly group: string;
  readonly edge: string;
  online: boolean;
  bdSeq?: number;
  seq?: number;
  births: number;
  deaths: Array<{ bdSeq: number; receivedAt: number }>;
  birthBdSeqs: number[];
  metrics: Map<string, HostMetric>;
  devices: Map<string, HostDevice>;
  aliases: Map<number, { device?: string; name: string }>;
}

export interface LoggedMessage {
  readonly topic: string;
  readonly verb: string;
  readonly group: string;
  readonly edge: string;
  readonly device?: string;
  readonly seq?: number;
  readonly receivedAt: number;
  readonly metrics: number;
}
export class SparkplugHost {
  readonly violations: string[] = [];
  readonly log: LoggedMessage[] = [];
  readonly edges = new Map<string, HostEdge>();
  private listeners = new Set<() => void>();
  /** Keep every data value in `HostDevice.data` (off for long runs: memory). */
  keepData = true;
  /** Called for every data metric (the benchmark's latency probe). */
  onDataMetric?: (name: string, timestamp: number | undefined, receivedAt: number) => void;

  private constructor(readonly client: MqttClient) {}

  /** Connects (MQTT 3.1.1, clean session) and subscribes to `spBv1.0/#`. */
  static async connect(
    url: string,
    clientId = `test-host-${process.pid}-${Date.now()}`,
  ): Promise<SparkplugHost> {
    const mqtt = require('mqtt') as typeof import('mqtt');
    const client = await mqtt.connectAsync(url, { clientId, clean: true, reconnectPeriod: 500 });
    const host = new SparkplugHost(client);
    client.on('message', (topic, payload) => host.onMessage(topic, payload));
    await client.subscribeAsync('spBv1.0/#', { qos: 1 });
    return host;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }

  edge(group: string, edge: string): HostEdge | undefined {
    return this.edges.get(`${group}/${edge}`);
  }

  /** Resolves when `pred` holds (checked after every message); rejects after `timeoutMs`. */
  waitFor<T>(pred: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        let v: T | undefined | false;
        try {
          v = pred();
        } catch {
          v = undefined;
        }
        if (v !== undefined && v !== false) {
          this.listeners.delete(check);
          clearTimeout(timer);
          resolve(v);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(
          new Error(
            `host: ${what} not seen in ${timeoutMs} ms; violations: ${this.violations.join('; ')}`,
          ),
        );
      }, timeoutMs);
      if (!check()) this.listeners.add(check);
    });
  }

  /** Waits for the next message matching `pred` (from now on). */
  nextMessage(
    pred: (m: LoggedMessage) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<LoggedMessage> {
    const from = this.log.length;
    return this.waitFor(() => this.log.slice(from).find(pred), timeoutMs, what);
  }

  async ncmd(group: string, edge: string, metrics: readonly HostCommandMetric[]): Promise<void> {
    await this.client.publishAsync(`spBv1.0/${group}/NCMD/${edge}`, hostEncode(metrics), {
      qos: 1,
    });
  }

  async dcmd(
    group: string,
    edge: string,
    device: string,
    payload: Buffer | readonly HostCommandMetric[],
  ): Promise<void> {
    const body = Buffer.isBuffer(payload) ? payload : hostEncode(payload);
    await this.client.publishAsync(`spBv1.0/${group}/DCMD/${edge}/${device}`, body, { qos: 1 });
  }

  /** The alias a device metric was born with. */
  alias(group: string, edge: string, device: string | undefined, name: string): number {
    const e = this.edge(group, edge);
    const m = device ? e?.devices.get(device)?.metrics.get(name) : e?.metrics.get(name);
    if (m?.alias === undefined) throw new Error(`host: no alias for ${device ?? '(node)'} ${name}`);
    return m.alias;
  }

  private violation(text: string): void {
    this.violations.push(text);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const receivedAt = Date.now();
    const parts = topic.split('/');
    if (parts[0] !== 'spBv1.0' || parts.length < 4) return;
    const [, group, verb, edgeId, device] = parts;
    if (verb === 'STATE' || verb === 'NCMD' || verb === 'DCMD') return;
    const where = `${group}/${edgeId}${device ? `/${device}` : ''} ${verb}`;
    let p: RawPayload;
    try {
      p = hostDecode(payload);
    } catch (err) {
      this.violation(`${where}: not a Sparkplug B payload (${(err as Error).message})`);
      return;
    }
    const key = `${group}/${edgeId}`;
    let e = this.edges.get(key);
    if (!e) {
      e = {
        group,
        edge: edgeId,
        online: false,
        births: 0,
        deaths: [],
        birthBdSeqs: [],
        metrics: new Map(),
        devices: new Map(),
        aliases: new Map(),
      };
      this.edges.set(key, e);
    }
    const seq = num(p.seq);
    this.log.push({
      topic,
      verb,
      group,
      edge: edgeId,
      ...(device ? { device } : {}),
      ...(seq !== undefined ? { seq } : {}),
      receivedAt,
      metrics: p.metrics?.length ?? 0,
    });
    const metrics = p.metrics ?? [];
    const isDevice = verb.startsWith('D');
    if (isDevice && !device) this.violation(`${where}: a device verb without a device id`);
    if (!isDevice && device) this.violation(`${where}: a node verb with a device id`);

    if (verb === 'NDEATH') {
      if (seq !== undefined) this.violation(`${where}: NDEATH carries a seq`);
      const bd = metrics.find((m) => m.name === 'bdSeq');
      if (!bd) {
        this.violation(`${where}: NDEATH without bdSeq`);
      } else {
        const v = valueOf(bd, bd.datatype ?? DT.Int64) as number;
        e.deaths.push({ bdSeq: v, receivedAt });
        // Only the death of the current session ends it (spec: match bdSeq, not timestamps).
        if (v === e.bdSeq) {
          e.online = false;
          for (const d of e.devices.values()) d.online = false;
        }
      }
      this.notify();
      return;
    }

    if (p.timestamp === undefined) this.violation(`${where}: no payload timestamp`);
    if (seq === undefined || seq < 0 || seq > 255) {
      this.violation(`${where}: seq ${String(seq)} not in 0..255`);
    }

    if (verb === 'NBIRTH') {
      e.online = true;
      e.births++;
      e.seq = seq;
      e.aliases.clear();
      e.metrics.clear();
      for (const d of e.devices.values()) d.online = false;
      const born = this.birthMetrics(where, metrics, e, undefined);
      const bd = born.get('bdSeq');
      if (!bd || bd.datatype !== DT.Int64) this.violation(`${where}: no Int64 bdSeq metric`);
      else {
        e.bdSeq = bd.value as number;
        e.birthBdSeqs.push(e.bdSeq);
      }
      const rebirth = born.get('Node Control/Rebirth');
      if (!rebirth) this.violation(`${where}: no Node Control/Rebirth`);
      else {
        if (rebirth.datatype !== DT.Boolean || rebirth.value !== false)
          this.violation(`${where}: Node Control/Rebirth must be Boolean false`);
        if (rebirth.alias !== undefined)
          this.violation(`${where}: Node Control/Rebirth has an alias`);
      }
      e.metrics = born;
      this.notify();
      return;
    }

    if (!e.online) this.violation(`${where}: ${verb} while the edge node is not born`);
    else if (e.seq !== undefined && seq !== undefined && seq !== (e.seq + 1) % 256) {
      this.violation(`${where}: seq ${seq} after ${e.seq}`);
    }
    if (seq !== undefined) e.seq = seq;

    if (verb === 'DBIRTH') {
      const d = this.deviceOf(e, device!);
      d.online = true;
      d.births++;
      d.metrics = this.birthMetrics(where, metrics, e, device);
    } else if (verb === 'NDATA' || verb === 'DDATA') {
      const d = verb === 'DDATA' ? e.devices.get(device!) : undefined;
      if (verb === 'DDATA' && !d?.online) this.violation(`${where}: DDATA before DBIRTH`);
      for (const m of metrics) {
        if (m.name !== undefined)
          this.violation(`${where}: data metric ${m.name} carries its name`);
        const alias = num(m.alias);
        const owner = alias !== undefined ? e.aliases.get(alias) : undefined;
        if (!owner || owner.device !== device) {
          this.violation(`${where}: alias ${String(alias)} was not born here`);
          continue;
        }
        const born = (device ? d?.metrics : e.metrics)?.get(owner.name);
        if (!born) continue;
        if (m.datatype !== undefined && m.datatype !== born.datatype)
          this.violation(`${where}: ${owner.name} datatype ${m.datatype} ≠ birth ${born.datatype}`);
        if (m.timestamp === undefined) this.violation(`${where}: ${owner.name} without timestamp`);
        this.checkValueField(where, owner.name, m, born.datatype);
        born.value = valueOf(m, born.datatype);
        born.timestamp = num(m.timestamp);
        this.onDataMetric?.(owner.name, born.timestamp, receivedAt);
        if (d && this.keepData)
          d.data.push({
            name: owner.name,
            value: born.value,
            timestamp: born.timestamp ?? 0,
            receivedAt,
          });
      }
    } else if (verb === 'DDEATH') {
      const d = e.devices.get(device!);
      if (d) d.online = false;
    } else {
      this.violation(`${where}: unknown verb`);
    }
    this.notify();
  }

  private deviceOf(e: HostEdge, id: string): HostDevice {
    let d = e.devices.get(id);
    if (!d) {
      d = { online: false, births: 0, metrics: new Map(), data: [] };
      e.devices.set(id, d);
    }
    return d;
  }

  private checkValueField(where: string, name: string, m: RawMetric, datatype: number): void {
    const want = FIELD_OF[datatype];
    if (!want) {
      this.violation(`${where}: ${name} has datatype ${datatype}, not a basic type`);
      return;
    }
    if (m.isNull) {
      if (m.value) this.violation(`${where}: ${name} is_null with a value`);
      return;
    }
    if (m.value !== want)
      this.violation(`${where}: ${name} (datatype ${datatype}) in ${String(m.value)}, not ${want}`);
  }

  private birthMetrics(
    where: string,
    metrics: RawMetric[],
    e: HostEdge,
    device: string | undefined,
  ): Map<string, HostMetric> {
    const out = new Map<string, HostMetric>();
    for (const m of metrics) {
      if (!m.name) {
        this.violation(`${where}: a birth metric without a name`);
        continue;
      }
      if (m.datatype === undefined) {
        this.violation(`${where}: ${m.name} without datatype`);
        continue;
      }
      if (m.timestamp === undefined) this.violation(`${where}: ${m.name} without timestamp`);
      if (out.has(m.name)) this.violation(`${where}: ${m.name} twice`);
      const alias = num(m.alias);
      if (alias === undefined && m.name !== 'Node Control/Rebirth')
        this.violation(`${where}: ${m.name} without alias`);
      if (alias !== undefined) {
        if (e.aliases.has(alias))
          this.violation(`${where}: alias ${alias} used twice on the edge node`);
        e.aliases.set(alias, { ...(device ? { device } : {}), name: m.name });
      }
      this.checkValueField(where, m.name, m, m.datatype);
      const properties: Record<string, unknown> = {};
      const keys = m.properties?.keys ?? [];
      const values = m.properties?.values ?? [];
      if (keys.length !== values.length)
        this.violation(`${where}: ${m.name} properties keys ≠ values`);
      keys.forEach((k, i) => {
        const pv = values[i] ?? {};
        const field = pv.value as string | undefined;
        properties[k] = field ? pv[field] : null;
        if (pv.type === DT.String && field !== 'stringValue')
          this.violation(`${where}: ${m.name} property ${k} String in ${String(field)}`);
      });
      out.set(m.name, {
        name: m.name,
        ...(alias !== undefined ? { alias } : {}),
        datatype: m.datatype,
        value: valueOf(m, m.datatype),
        timestamp: num(m.timestamp),
        properties,
      });
    }
    return out;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}
