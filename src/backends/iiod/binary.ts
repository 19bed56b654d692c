/**
 * libiio 1.0's binary iiod protocol ("async" protocol, main branch), client side, for the
 * control connection: attributes (by index), triggers, timeout, registers, NOP.
 *
 * Frames are 8-byte little-endian headers `{u16 client_id, u8 op, u8 dev, i32 code}`,
 * then a payload; a response has op 0 and `code` = payload length (>0) or status (<=0).
 *
 * The opcode numbers are those of libiio main since its May 2026 renumbering (event
 * attributes inserted at 7) with NOP (32) added after it. An iiod with another numbering
 * is recognised by the NOP probe failing (iiod drops a connection on an unknown opcode),
 * and we stay on the ASCII protocol, which every 1.0 iiod still speaks.
 */
import { IioError } from '../../errors';
import type { DeviceInfo } from '../../model/info';
import type { AttrRef } from '../../model/backend';
import type { Connection } from './connection';
import { ProtocolError } from './reader';

/** libiio main's `enum iiod_opcode` (2026-07 and later). */
export const OP = {
  RESPONSE: 0,
  PRINT: 1,
  TIMEOUT: 2,
  READ_ATTR: 3,
  READ_DBG_ATTR: 4,
  READ_BUF_ATTR: 5,
  READ_CHN_ATTR: 6,
  READ_DEV_EVT_ATTR: 7,
  READ_CHN_EVT_ATTR: 8,
  WRITE_ATTR: 9,
  WRITE_DBG_ATTR: 10,
  WRITE_BUF_ATTR: 11,
  WRITE_CHN_ATTR: 12,
  WRITE_DEV_EVT_ATTR: 13,
  WRITE_CHN_EVT_ATTR: 14,
  GETTRIG: 15,
  SETTRIG: 16,
  REG_READ: 29,
  REG_WRITE: 30,
  NOP: 32,
} as const;

const MAX_PAYLOAD = 16 * 1024 * 1024;

/** Sends one command frame. */
export function sendCommand(
  c: Connection,
  op: number,
  dev: number,
  code: number,
  payload?: Buffer,
): void {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(0, 0); // the default io: iiod answers these on client id 0
  h.writeUInt8(op, 2);
  h.writeUInt8(dev, 3);
  h.writeInt32LE(code | 0, 4);
  c.send(payload ? Buffer.concat([h, payload]) : h);
}

/**
 * Reads one response: its code, and, for commands that return data (reads), the payload
 * whose length a positive code gives. For the others a positive code is a status (the
 * bytes a write took) and nothing follows.
 */
export async function readResponse(
  c: Connection,
  withData: boolean,
): Promise<{ code: number; data?: Buffer }> {
  const h = await c.reader.readExact(8);
  const op = h.readUInt8(2);
  const code = h.readInt32LE(4);
  if (op !== OP.RESPONSE) throw new ProtocolError(`expected a response frame, got opcode ${op}`);
  if (h.readUInt16LE(0) !== 0) throw new ProtocolError('a response for another client id');
  if (code <= 0 || !withData) return { code };
  if (code > MAX_PAYLOAD) throw new ProtocolError(`a response of ${code} bytes`);
  return { code, data: await c.reader.readExact(code) };
}

/** Commands whose response carries data. */
const WITH_DATA = new Set<number>([
  OP.PRINT,
  OP.READ_ATTR,
  OP.READ_DBG_ATTR,
  OP.READ_BUF_ATTR,
  OP.READ_CHN_ATTR,
  OP.READ_DEV_EVT_ATTR,
  OP.READ_CHN_EVT_ATTR,
  OP.REG_READ,
]);

/** Runs one command and reads its response. */
export async function exec(
  c: Connection,
  op: number,
  dev: number,
  code: number,
  payload?: Buffer,
): Promise<{ code: number; data?: Buffer }> {
  sendCommand(c, op, dev, code, payload);
  return readResponse(c, WITH_DATA.has(op));
}

/** Byte order of C's strcmp, which libiio sorts devices and attributes with. */
function strcmp(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}

/** The index of a device on the wire: its place among the context's ids, sorted. */
export function deviceIndex(devices: readonly DeviceInfo[], dev: DeviceInfo): number {
  const ids = devices.map((d) => d.id).sort(strcmp);
  const i = ids.indexOf(dev.id);
  if (i < 0 || i > 255) {
    throw new IioError('ENODEV', `device ${dev.id} cannot be addressed by index (${i})`);
  }
  return i;
}

/** The index of an attribute in its list, sorted by name as libiio sorts them. */
function attrIndex(names: readonly string[], name: string): number {
  const i = [...names].sort(strcmp).indexOf(name);
  if (i < 0) throw new IioError('ENOENT', `no attribute "${name}"`);
  return i;
}

/** Opcode, device index and code addressing an attribute (iiod_client_read_attr_new). */
export function attrCommand(
  devices: readonly DeviceInfo[],
  ref: AttrRef,
  write: boolean,
): { op: number; dev: number; code: number } {
  const d = ref.device;
  if (!d) throw new IioError('EINVAL', 'a context attribute is not read from iiod');
  const dev = deviceIndex(devices, d);
  const name = ref.attr.name;
  let op: number;
  let arg1: number;
  let arg2 = 0;
  switch (ref.kind) {
    case 'device':
      op = write ? OP.WRITE_ATTR : OP.READ_ATTR;
      arg1 = attrIndex(
        d.attrs.map((a) => a.name),
        name,
      );
      break;
    case 'debug':
      op = write ? OP.WRITE_DBG_ATTR : OP.READ_DBG_ATTR;
      arg1 = attrIndex(
        d.debugAttrs.map((a) => a.name),
        name,
      );
      break;
    case 'buffer': {
      op = write ? OP.WRITE_BUF_ATTR : OP.READ_BUF_ATTR;
      arg2 = ref.bufferIndex ?? 0;
      const b = d.buffers?.find((x) => x.index === arg2);
      arg1 = attrIndex(
        (b?.attrs ?? d.bufferAttrs).map((a) => a.name),
        name,
      );
      break;
    }
    case 'channel':
    case 'channel-event': {
      const ch = ref.channel;
      if (!ch) throw new IioError('EINVAL', 'a channel attribute needs its channel');
      arg2 = d.channels.indexOf(ch);
      if (arg2 < 0)
        arg2 = d.channels.findIndex((x) => x.id === ch.id && x.isOutput === ch.isOutput);
      if (arg2 < 0) throw new IioError('ENOENT', `no channel ${ch.id}`);
      if (ref.kind === 'channel') {
        op = write ? OP.WRITE_CHN_ATTR : OP.READ_CHN_ATTR;
        arg1 = attrIndex(
          ch.attrs.map((a) => a.name),
          name,
        );
      } else {
        op = write ? OP.WRITE_CHN_EVT_ATTR : OP.READ_CHN_EVT_ATTR;
        arg1 = attrIndex(
          (ch.eventAttrs ?? []).map((a) => a.name),
          name,
        );
      }
      break;
    }
    case 'device-event':
      op = write ? OP.WRITE_DEV_EVT_ATTR : OP.READ_DEV_EVT_ATTR;
      arg1 = attrIndex(
        (d.eventAttrs ?? []).map((a) => a.name),
        name,
      );
      break;
    default:
      throw new IioError('EINVAL', `cannot address a ${ref.kind} attribute`);
  }
  return { op, dev, code: ((arg1 & 0xffff) << 16) | (arg2 & 0xffff) };
}

/** WRITE_*_ATTR payload: u64 length, then the bytes. */
export function writePayload(value: Buffer): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(value.length), 0);
  return Buffer.concat([len, value]);
}

/** 1.0's remote timeout: half ours; -1 (not 0) means none. */
export function remoteTimeout(ms: number): number {
  return ms > 0 ? Math.floor(ms / 2) : -1;
}
