/**
 * Sparkplug B payloads through Eclipse Tahu's `sparkplug-payload` (its protobufjs code
 * generated from sparkplug_b.proto), loaded on first use so that the rest of the package
 * never pays for it.
 *
 * Births and deaths go through Tahu's `encodePayload` (names, datatypes, properties). Data
 * messages are built on Tahu's generated `Payload` type directly: the spec says NDATA/DDATA
 * metrics SHOULD NOT carry a datatype, and `encodePayload` always writes one.
 * Commands are decoded with the generated type too, because `decodePayload` returns a null
 * value for a metric that has no datatype (an alias-only DCMD, as the spec asks hosts to send).
 */
import type * as Tahu from 'sparkplug-payload/lib/sparkplugbpayload';

/** The datatypes this edge node publishes (spec 6.4.16). */
export type SpType = 'Int64' | 'UInt64' | 'Double' | 'Boolean' | 'String';
export type SpValue = number | boolean | string | null;

/** Sparkplug datatype numbers (spec, DataType enum). */
export const DATATYPE = {
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
} as const;

export interface BirthMetric {
  readonly name: string;
  readonly alias?: number;
  readonly type: SpType;
  readonly value: SpValue;
  readonly timestamp: number;
  readonly properties?: Readonly<Record<string, { type: SpType; value: SpValue }>>;
}

export interface DataMetric {
  readonly alias: number;
  readonly type: SpType;
  readonly value: SpValue;
  readonly timestamp: number;
}

/** One metric of a command, as it came: the value with the protobuf field that carried it. */
export interface CommandMetric {
  readonly name?: string;
  readonly alias?: number;
  /** The datatype the sender gave, if any. */
  readonly datatype?: number;
  readonly isNull: boolean;
  /** Which field of the value oneof was set (`intValue`, `doubleValue`, ...), if any. */
  readonly field?: string;
  readonly value?: number | boolean | string | Uint8Array;
}

export interface CommandPayload {
  readonly timestamp?: number;
  readonly metrics: readonly CommandMetric[];
}

interface LongLike {
  toNumber(): number;
  toSigned(): LongLike;
  unsigned: boolean;
}

interface ProtoMetric {
  name: string;
  alias: number | LongLike;
  datatype: number;
  isNull: boolean;
  value?: string;
  [field: string]: unknown;
}

interface ProtoPayloadType {
  create(o: object): object;
  encode(o: object): { finish(): Uint8Array };
  decode(b: Uint8Array): { metrics: ProtoMetric[]; timestamp?: number | LongLike };
  Metric: { create(o: object): object };
}

interface Codec {
  tahu: typeof Tahu;
  Payload: ProtoPayloadType;
}

let codec: Codec | undefined;

function load(): Codec {
  if (!codec) {
    const tahu = (require('sparkplug-payload') as { get(ns: string): typeof Tahu | null }).get(
      'spBv1.0',
    );
    const proto = require('sparkplug-payload/lib/sparkplugPayloadProto') as {
      org: { eclipse: { tahu: { protobuf: { Payload: ProtoPayloadType } } } };
    };
    if (!tahu) throw new Error('sparkplug-payload does not know the spBv1.0 namespace');
    codec = { tahu, Payload: proto.org.eclipse.tahu.protobuf.Payload };
  }
  return codec;
}

function toNumber(v: number | LongLike | undefined): number | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'number' ? v : v.toNumber();
}

/** NBIRTH / DBIRTH / NDEATH: names, aliases, datatypes, properties; `seq` absent for NDEATH. */
export function encodeBirth(
  timestamp: number,
  seq: number | undefined,
  metrics: readonly BirthMetric[],
): Buffer {
  const { tahu } = load();
  const out: Tahu.UMetric[] = metrics.map((m) => {
    const um: Tahu.UMetric = { name: m.name, type: m.type, value: m.value, timestamp: m.timestamp };
    if (m.alias !== undefined) um.alias = m.alias;
    if (m.properties) {
      const props: Record<string, Tahu.UPropertyValue> = {};
      for (const [k, p] of Object.entries(m.properties))
        props[k] = { type: p.type, value: p.value };
      um.properties = props;
    }
    return um;
  });
  const payload: Tahu.UPayload = { timestamp, metrics: out };
  if (seq !== undefined) payload.seq = seq;
  return Buffer.from(tahu.encodePayload(payload));
}

const FIELD: Record<SpType, string> = {
  Int64: 'longValue',
  UInt64: 'longValue',
  Double: 'doubleValue',
  Boolean: 'booleanValue',
  String: 'stringValue',
};

/** NDATA / DDATA / DDEATH: aliases, timestamps and values only. */
export function encodeData(timestamp: number, seq: number, metrics: readonly DataMetric[]): Buffer {
  const { Payload } = load();
  const list = metrics.map((m) => {
    const o: Record<string, unknown> = { alias: m.alias, timestamp: m.timestamp };
    if (m.value === null || (typeof m.value === 'number' && !Number.isFinite(m.value))) {
      o.isNull = true;
    } else {
      o[FIELD[m.type]] = m.value;
    }
    return Payload.Metric.create(o);
  });
  return Buffer.from(Payload.encode(Payload.create({ timestamp, seq, metrics: list })).finish());
}

/** Decodes an NCMD/DCMD payload; throws (protobufjs's message) when it is not a Sparkplug B payload. */
export function decodeCommand(data: Uint8Array): CommandPayload {
  const { Payload } = load();
  const p = Payload.decode(data);
  return {
    timestamp: toNumber(p.timestamp),
    metrics: p.metrics.map((m): CommandMetric => {
      const field = typeof m.value === 'string' ? m.value : undefined;
      let value: CommandMetric['value'];
      if (field) {
        const v = m[field];
        if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') value = v;
        else if (v instanceof Uint8Array) value = v;
        else if (v && typeof (v as LongLike).toNumber === 'function') {
          // uint64 on the wire; an Int64 datatype means two's complement.
          const l = v as LongLike;
          value = m.datatype === DATATYPE.Int64 ? l.toSigned().toNumber() : l.toNumber();
        }
      }
      return {
        ...(Object.hasOwn(m, 'name') ? { name: m.name } : {}),
        ...(Object.hasOwn(m, 'alias') ? { alias: toNumber(m.alias) } : {}),
        ...(Object.hasOwn(m, 'datatype') ? { datatype: m.datatype } : {}),
        isNull: m.isNull === true,
        ...(field ? { field } : {}),
        ...(value !== undefined ? { value } : {}),
      };
    }),
  };
}
