/**
 * The Sparkplug B payload as the test host reads and writes it: protobufjs over
 * test/fixtures/sparkplug/sparkplug_b.proto, written from the specification (chapter 6) and
 * not with the node's decoder (Tahu's generated code in sparkplug-payload), so the two
 * check each other.
 */
import { join } from 'node:path';
import * as protobuf from 'protobufjs';

const PROTO = join(
  __dirname,
  '..',
  '..',
  '..',
  'test',
  'fixtures',
  'sparkplug',
  'sparkplug_b.proto',
);

/** The datatype enum of the specification (6.4.16). */
export const DT = {
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
  UUID: 15,
  Bytes: 17,
  File: 18,
} as const;

/** Which protobuf field carries each datatype (spec "Datatype Details"). */
export const FIELD_OF: Record<number, string> = {
  1: 'intValue',
  2: 'intValue',
  3: 'intValue',
  5: 'intValue',
  6: 'intValue',
  7: 'intValue',
  4: 'longValue',
  8: 'longValue',
  13: 'longValue',
  9: 'floatValue',
  10: 'doubleValue',
  11: 'booleanValue',
  12: 'stringValue',
  14: 'stringValue',
  15: 'stringValue',
  17: 'bytesValue',
  18: 'bytesValue',
};

/** A metric's value as the host keeps it. */
export type HostValue = number | string | boolean | null;

export interface RawMetric {
  name?: string;
  alias?: string;
  timestamp?: string;
  datatype?: number;
  isNull?: boolean;
  properties?: { keys?: string[]; values?: Array<Record<string, unknown>> };
  value?: string;
  [k: string]: unknown;
}

export interface RawPayload {
  timestamp?: string;
  seq?: string;
  metrics?: RawMetric[];
}

let payloadType: protobuf.Type | undefined;
function type(): protobuf.Type {
  payloadType ??= protobuf.loadSync(PROTO).lookupType('sparkplug.b.testhost.Payload');
  return payloadType;
}

/** Decodes with the test schema (longs as strings, so 64-bit values stay exact). */
export function hostDecode(data: Uint8Array): RawPayload {
  const t = type();
  return t.toObject(t.decode(data), { longs: String, oneofs: true, defaults: false }) as RawPayload;
}

/** A metric of a command the host sends. */
export interface HostCommandMetric {
  name?: string;
  alias?: number;
  datatype?: number;
  value?: number | string | boolean;
  isNull?: boolean;
}

/** Encodes a command with the test schema; the value goes in the field its datatype names. */
export function hostEncode(metrics: readonly HostCommandMetric[], timestamp = Date.now()): Buffer {
  const t = type();
  const list = metrics.map((m) => {
    const o: Record<string, unknown> = { timestamp };
    if (m.name !== undefined) o.name = m.name;
    if (m.alias !== undefined) o.alias = m.alias;
    if (m.datatype !== undefined) o.datatype = m.datatype;
    if (m.isNull) o.isNull = true;
    if (m.value !== undefined) {
      const field =
        m.datatype !== undefined
          ? FIELD_OF[m.datatype]
          : typeof m.value === 'boolean'
            ? 'booleanValue'
            : typeof m.value === 'string'
              ? 'stringValue'
              : 'doubleValue';
      // Signed types travel as two's complement in the unsigned fields (spec 6.4.16).
      const v = m.value;
      o[field] =
        typeof v !== 'number'
          ? v
          : field === 'intValue'
            ? v >>> 0
            : field === 'longValue'
              ? BigInt.asUintN(64, BigInt(v)).toString()
              : v;
    }
    return o;
  });
  const msg = t.fromObject({ timestamp, metrics: list });
  return Buffer.from(t.encode(msg).finish());
}

/** A protobuf long as the test schema gives it (a string), as a number. */
export function num(s: string | undefined): number | undefined {
  return s === undefined ? undefined : Number(s);
}

/** The value of a raw metric as its datatype reads it. */
export function valueOf(m: RawMetric, datatype: number): HostValue {
  if (m.isNull) return null;
  const field = m.value;
  if (!field) return null;
  const v = m[field];
  switch (datatype) {
    case DT.Int8:
    case DT.Int16:
    case DT.Int32:
      return (v as number) | 0;
    case DT.Int64:
      return Number(BigInt.asIntN(64, BigInt(v as string)));
    case DT.UInt64:
    case DT.DateTime:
      return Number(BigInt(v as string));
    default:
      return v as number | string | boolean;
  }
}
