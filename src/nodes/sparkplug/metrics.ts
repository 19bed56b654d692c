/**
 * The metrics an IIO device becomes on a Sparkplug edge node, and the per-interval
 * aggregates of its streamed channels. Names (docs/nodes.md, "Sparkplug B"):
 *
 *   Device/Id, Device/Name, Device/Label                         String
 *   Attributes/<attr>, Buffer Attributes/<attr>                   Double or String (writable)
 *   Inputs/<ch>/Value|Mean|Min|Max                                Double, SI, property engUnit
 *   Inputs/<ch>/Raw                                               Int64
 *   Inputs|Outputs/<ch>/Attributes/<attr>                         Double or String (writable)
 *   Stream/Sampling Frequency (Double, Hz), Stream/Scans, Stream/Lost (UInt64), Stream/State
 *   Last Command/Metric, Last Command/Result (String), Commands/Accepted|Refused (UInt64)
 */
import type { ScanSlot } from '../../format/layout';
import type { Channel } from '../../model/channel';
import type { Device } from '../../model/device';
import { autoValue, type AttrSelector } from '../attr-select';
import { unitOf } from '../units';
import type { BirthMetric, DataMetric, SpType, SpValue } from './payload';

/** One metric of the edge node or of a device: its definition and its current value. */
export class Metric {
  alias = 0;
  value: SpValue = null;
  timestamp = 0;
  /** Changed since it was last published. */
  dirty = false;

  constructor(
    readonly name: string,
    readonly type: SpType,
    readonly options: {
      /** The attribute a command writes (writable metrics only). */
      readonly attr?: AttrSelector;
      readonly properties?: Readonly<Record<string, { type: SpType; value: SpValue }>>;
      /** Published without an alias (Node Control/Rebirth, spec 5.x). */
      readonly noAlias?: boolean;
    } = {},
  ) {}

  get writable(): boolean {
    return this.options.attr !== undefined;
  }

  /** Sets the value; marks it for the next DATA message when it changed (or when forced). */
  set(v: SpValue, timestamp: number, force = false): void {
    const same = v === this.value || (Number.isNaN(v) && Number.isNaN(this.value));
    if (force || !same) this.dirty = true;
    this.value = v;
    this.timestamp = timestamp;
  }

  birth(): BirthMetric {
    return {
      name: this.name,
      ...(this.options.noAlias ? {} : { alias: this.alias }),
      type: this.type,
      value: this.value,
      timestamp: this.timestamp,
      ...(this.options.properties ? { properties: this.options.properties } : {}),
    };
  }

  data(): DataMetric {
    return { alias: this.alias, type: this.type, value: this.value, timestamp: this.timestamp };
  }
}

/** A set of metrics addressed by name or alias. */
export class MetricSet {
  readonly list: Metric[] = [];
  private readonly byName = new Map<string, Metric>();
  private readonly byAlias = new Map<number, Metric>();

  add(m: Metric): Metric {
    if (this.byName.has(m.name)) return this.byName.get(m.name)!;
    this.list.push(m);
    this.byName.set(m.name, m);
    return m;
  }

  /** Numbers every aliased metric from `next` on; returns the next free alias. */
  assignAliases(next: number): number {
    this.byAlias.clear();
    for (const m of this.list) {
      if (m.options.noAlias) continue;
      m.alias = next++;
      this.byAlias.set(m.alias, m);
    }
    return next;
  }

  find(name: string | undefined, alias: number | undefined): Metric | undefined {
    if (alias !== undefined && this.byAlias.has(alias)) return this.byAlias.get(alias);
    return name !== undefined ? this.byName.get(name) : undefined;
  }

  /** Takes the changed metrics (clearing their mark). */
  takeDirty(): Metric[] {
    const out = this.list.filter((m) => m.dirty);
    for (const m of out) m.dirty = false;
    return out;
  }

  clearDirty(): void {
    for (const m of this.list) m.dirty = false;
  }
}

/** Running statistics of one channel's raw values since the last DATA message. */
export class ChannelStats {
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  last = NaN;

  add(values: ArrayLike<number>, n: number): void {
    let sum = 0;
    let min = this.min;
    let max = this.max;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (n > 0) {
      this.sum += sum;
      this.min = min;
      this.max = max;
      this.last = values[n - 1];
      this.count += n;
    }
  }

  reset(): void {
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }
}

/** A streamed input channel: its metrics and its statistics. */
export interface StreamedChannel {
  readonly channel: Channel;
  readonly value: Metric;
  readonly raw: Metric;
  readonly mean: Metric;
  readonly min: Metric;
  readonly max: Metric;
  readonly stats: ChannelStats;
  slot?: ScanSlot;
  scale: number;
  offset: number;
}

/** An input channel outside any buffer, read on every interval (`raw`, or `input` when only that exists). */
export interface PolledChannel {
  readonly channel: Channel;
  readonly attr: 'raw' | 'input';
  readonly value: Metric;
  readonly raw?: Metric;
  scale: number;
  offset: number;
}

/** Attributes whose value is a measurement, not a setting: input channels publish them as Value/Raw. */
const MEASUREMENTS = new Set(['raw', 'input', 'processed']);

/** The metric type of an attribute's text: Double when it is one number, else String. */
export function attrType(text: string | undefined): SpType {
  return text !== undefined && typeof autoValue(text) === 'number' ? 'Double' : 'String';
}

/** The value of an attribute's text for a metric of `type` (null when it does not fit). */
export function attrValue(text: string | undefined, type: SpType): SpValue {
  if (text === undefined) return null;
  const v = autoValue(text);
  if (type === 'Double') return typeof v === 'number' ? v : null;
  return text.trim();
}

/** Everything one IIO device publishes. */
export class DeviceMetrics {
  readonly set = new MetricSet();
  readonly attrs: Array<{ metric: Metric; read: () => Promise<string> }> = [];
  readonly streamed: StreamedChannel[] = [];
  readonly polled: PolledChannel[] = [];
  readonly scans: Metric | undefined;
  readonly lost: Metric | undefined;
  readonly frequency: Metric | undefined;
  readonly streamState: Metric | undefined;
  readonly lastMetric: Metric;
  readonly lastResult: Metric;
  readonly accepted: Metric;
  readonly refused: Metric;

  /**
   * Attribute metrics take their type from the text read when the device is first seen:
   * Double when it is one number, else String.
   */
  constructor(
    readonly device: Device,
    readonly streaming: boolean,
    /** The text of each attribute at birth (absent: unreadable), by metric name. */
    attrTexts: ReadonlyMap<string, string | undefined>,
  ) {
    const s = this.set;
    const now = Date.now();
    s.add(new Metric('Device/Id', 'String')).set(device.id, now);
    if (device.name) s.add(new Metric('Device/Name', 'String')).set(device.name, now);
    if (device.label) s.add(new Metric('Device/Label', 'String')).set(device.label, now);
    for (const a of attributeSelectors(device)) {
      const text = attrTexts.get(a.name);
      const type = attrType(text);
      const m = s.add(new Metric(a.name, type, { attr: a.sel }));
      m.set(attrValue(text, type), now);
      this.attrs.push({ metric: m, read: a.read });
    }
    const seen = new Set<string>();
    for (const c of device.channels) {
      if (c.type === 'timestamp' || c.isOutput) continue;
      // Input and output channels may share an id; within one direction ids are unique.
      const key = `Inputs/${c.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const unit = unitOf(c.type);
      const si = (name: string): Metric =>
        s.add(
          new Metric(`${key}/${name}`, 'Double', {
            properties: { engUnit: { type: 'String', value: unit } },
          }),
        );
      if (c.isScanElement && streaming) {
        this.streamed.push({
          channel: c,
          value: si('Value'),
          raw: s.add(new Metric(`${key}/Raw`, 'Int64')),
          mean: si('Mean'),
          min: si('Min'),
          max: si('Max'),
          stats: new ChannelStats(),
          scale: 1,
          offset: 0,
        });
      } else if (c.hasAttr('raw') || c.hasAttr('input')) {
        const attr = c.hasAttr('raw') ? 'raw' : 'input';
        this.polled.push({
          channel: c,
          attr,
          value: si('Value'),
          ...(attr === 'raw' ? { raw: s.add(new Metric(`${key}/Raw`, 'Int64')) } : {}),
          scale: 1,
          offset: 0,
        });
      }
    }
    if (streaming) {
      this.frequency = s.add(
        new Metric('Stream/Sampling Frequency', 'Double', {
          properties: { engUnit: { type: 'String', value: 'Hz' } },
        }),
      );
      this.scans = s.add(new Metric('Stream/Scans', 'UInt64'));
      this.lost = s.add(new Metric('Stream/Lost', 'UInt64'));
      this.streamState = s.add(new Metric('Stream/State', 'String'));
      this.scans.set(0, now);
      this.lost.set(0, now);
      this.streamState.set('starting', now);
    }
    this.lastMetric = s.add(new Metric('Last Command/Metric', 'String'));
    this.lastResult = s.add(new Metric('Last Command/Result', 'String'));
    this.accepted = s.add(new Metric('Commands/Accepted', 'UInt64'));
    this.refused = s.add(new Metric('Commands/Refused', 'UInt64'));
    this.lastMetric.set('', now);
    this.lastResult.set('', now);
    this.accepted.set(0, now);
    this.refused.set(0, now);
  }
}

/** The names of every attribute metric of a device, with the selector each one reads. */
export function attributeSelectors(
  device: Device,
): Array<{ name: string; sel: AttrSelector; read: () => Promise<string> }> {
  const out: Array<{ name: string; sel: AttrSelector; read: () => Promise<string> }> = [];
  for (const a of device.attrs) {
    out.push({
      name: `Attributes/${a.name}`,
      sel: { device: device.id, channel: '', isOutput: false, kind: '', attr: a.name },
      read: () => a.read(),
    });
  }
  for (const a of device.bufferAttrs) {
    out.push({
      name: `Buffer Attributes/${a.name}`,
      sel: { device: device.id, channel: '', isOutput: false, kind: 'buffer', attr: a.name },
      read: () => a.read(),
    });
  }
  for (const c of device.channels) {
    if (c.type === 'timestamp') continue;
    const key = `${c.isOutput ? 'Outputs' : 'Inputs'}/${c.id}`;
    for (const a of c.attrs) {
      if (!c.isOutput && MEASUREMENTS.has(a.name)) continue;
      out.push({
        name: `${key}/Attributes/${a.name}`,
        sel: { device: device.id, channel: c.id, isOutput: c.isOutput, kind: '', attr: a.name },
        read: () => a.read(),
      });
    }
  }
  return out;
}
