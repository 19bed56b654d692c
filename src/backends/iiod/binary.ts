/**
 * The client side of libiio 1.0's binary protocol, on the control connection:
 * attributes (by index), triggers, timeout, registers, NOP — and the switch to it at the
 * handshake. The frames, opcodes and indices are src/iiod-protocol/binary.ts.
 *
 * An iiod with another opcode numbering is recognised by the NOP probe failing (iiod
 * drops a connection on an unknown opcode), and we stay on the ASCII protocol, which
 * every 1.0 iiod still speaks.
 */
import { IioError } from '../../errors';
import {
  attrCode,
  attrList,
  attrOpcode,
  DEFAULT_CLIENT_ID,
  encodeFrame,
  encodeWriteValue,
  HEADER_BYTES,
  decodeHeader,
  NO_TRIGGER,
  OP,
  opcodeSpec,
  remoteTimeout,
  TRIGGER_NONE,
  wireAttrNames,
  wireDevices,
  type WireAttrKind,
} from '../../iiod-protocol/binary';
import { BINARY_LINE } from '../../iiod-protocol/ascii';
import { decodeValue, encodeValue, MAX_ATTR_VALUE, ProtocolError } from '../../iiod-protocol/wire';
import type { AttrRef } from '../../model/backend';
import type { DeviceInfo } from '../../model/info';
import { simpleCommand } from './ascii';
import { withDeadline, type Connection } from './connection';
import { attrCtx, type AttrFamily, type DialectHost, type IiodDialect } from './dialect';

/** One response: its code, and the payload of a command whose response carries data. */
export interface Response {
  readonly code: number;
  readonly data?: Buffer;
}

/** Sends one command frame on the default client id (iiod answers it there). */
export function sendCommand(
  c: Connection,
  op: number,
  dev: number,
  code: number,
  payload?: Buffer,
): void {
  c.send(encodeFrame({ clientId: DEFAULT_CLIENT_ID, op, dev, code }, payload));
}

/**
 * Reads one response: its code, and, when `withData`, the payload a positive code
 * announces. For the other commands a positive code is a status and nothing follows.
 */
export async function readResponse(c: Connection, withData: boolean): Promise<Response> {
  const h = decodeHeader(await c.reader.readExact(HEADER_BYTES));
  if (h.op !== OP.RESPONSE) {
    throw new ProtocolError(`expected a response frame, got opcode ${h.op}`);
  }
  if (h.clientId !== DEFAULT_CLIENT_ID) throw new ProtocolError('a response for another client id');
  if (h.code <= 0 || !withData) return { code: h.code };
  if (h.code > MAX_ATTR_VALUE) throw new ProtocolError(`a response of ${h.code} bytes`);
  return { code: h.code, data: await c.reader.readExact(h.code) };
}

/** Runs one command and reads its response. */
export async function exec(
  c: Connection,
  op: number,
  dev: number,
  code: number,
  payload?: Buffer,
): Promise<Response> {
  sendCommand(c, op, dev, code, payload);
  return readResponse(c, opcodeSpec(op)?.response === 'data');
}

/** The index of a device on the wire. */
export function deviceIndex(devices: readonly DeviceInfo[], dev: DeviceInfo): number {
  const i = wireDevices(devices).findIndex((d) => d.id === dev.id);
  if (i < 0 || i > 255) {
    throw new IioError('ENODEV', `device ${dev.id} cannot be addressed by index (${i})`);
  }
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
  if (ref.kind === 'context') throw new IioError('EINVAL', 'cannot address a context attribute');
  const kind: WireAttrKind = ref.kind;
  const dev = deviceIndex(devices, d);
  let arg = 0;
  if (kind === 'buffer') arg = ref.bufferIndex ?? 0;
  if (kind === 'channel' || kind === 'channel-event') {
    const ch = ref.channel;
    if (!ch) throw new IioError('EINVAL', 'a channel attribute needs its channel');
    arg = d.channels.indexOf(ch);
    if (arg < 0) arg = d.channels.findIndex((x) => x.id === ch.id && x.isOutput === ch.isOutput);
    if (arg < 0) throw new IioError('ENOENT', `no channel ${ch.id}`);
  }
  const names = wireAttrNames(attrList(d, kind, ref.channel, arg));
  const index = names.indexOf(ref.attr.name);
  if (index < 0) throw new IioError('ENOENT', `no attribute "${ref.attr.name}"`);
  return { op: attrOpcode(kind, write), dev, code: attrCode(index, arg) };
}

/**
 * Switches a fresh connection (XML already read) to the binary protocol: `BINARY`, then
 * a NOP probe only iiods with our opcode numbering answer. Resolves with the connection
 * to keep and whether it speaks binary; a connection the attempt spoiled is replaced
 * by `fresh()` (ASCII) unless binary was required.
 */
export async function negotiate(
  conn: Connection,
  required: boolean,
  timeoutMs: number,
  uri: string,
  fresh: () => Promise<Connection>,
): Promise<{ conn: Connection; binary: boolean }> {
  let r: number;
  try {
    r = await withDeadline(conn, timeoutMs, uri, simpleCommand(conn, BINARY_LINE.trimEnd()));
  } catch (err) {
    if (required) throw err;
    conn.kill(IioError.wrap(err));
    return { conn: await fresh(), binary: false };
  }
  if (r !== 0) {
    if (required) throw new IioError('ENOTSUP', `iiod refused the binary protocol (${r})`, { uri });
    return { conn, binary: false }; // still in ASCII mode
  }
  try {
    const nop = await withDeadline(conn, timeoutMs, uri, exec(conn, OP.NOP, 0, 0));
    if (nop.code !== 0) throw new ProtocolError(`NOP answered ${nop.code}`);
    return { conn, binary: true };
  } catch (err) {
    // Another opcode numbering (iiod drops the connection) or no NOP: stay on ASCII.
    conn.kill(IioError.wrap(err));
    if (required) {
      throw new IioError(
        'ENOTSUP',
        "iiod's binary protocol is not the one we speak (NOP probe failed)",
        { uri },
      );
    }
    return { conn: await fresh(), binary: false };
  }
}

/** The control connection in libiio 1.0's binary protocol: everything by index. */
export class BinaryDialect implements IiodDialect {
  readonly name = 'binary';

  constructor(private readonly host: DialectHost) {}

  /** A new control connection starts in ASCII: switch it (the probe was done at the handshake). */
  async setUp(c: Connection, timeoutMs: number): Promise<void> {
    const r = await withDeadline(c, timeoutMs, this.host.uri, simpleCommand(c, 'BINARY'));
    if (r !== 0) throw new ProtocolError(`BINARY answered ${r}`);
  }

  async sendTimeout(c: Connection, timeoutMs: number): Promise<number> {
    return (await exec(c, OP.TIMEOUT, 0, remoteTimeout(timeoutMs))).code;
  }

  async readAttr(ref: AttrRef): Promise<string> {
    const ctx = attrCtx(this.host.uri, ref);
    const cmd = attrCommand(this.host.devices(), ref, false);
    const r = await this.host.run('read', ctx, (c) => exec(c, cmd.op, cmd.dev, cmd.code));
    if (r.code < 0) throw IioError.fromErrno(r.code, { ...ctx, op: 'read' });
    return decodeValue(r.data ?? Buffer.alloc(0));
  }

  async writeAttr(ref: AttrRef, value: string): Promise<number> {
    const ctx = attrCtx(this.host.uri, ref);
    const cmd = attrCommand(this.host.devices(), ref, true);
    const payload = encodeWriteValue(encodeValue(value));
    const r = await this.host.run('write', ctx, (c) => exec(c, cmd.op, cmd.dev, cmd.code, payload));
    if (r.code < 0) throw IioError.fromErrno(r.code, { ...ctx, op: 'write' });
    return r.code;
  }

  /** 1.0 has no read-all: one read per attribute, each its own request. */
  readAllAttrs(
    device: DeviceInfo,
    family: AttrFamily,
    channel?: DeviceInfo['channels'][number],
  ): Promise<Array<string | IioError>> {
    return Promise.all(
      attrList(device, family, channel).map((attr) =>
        this.readAttr({ kind: family, device, channel, attr }).catch((e: unknown) =>
          IioError.wrap(e),
        ),
      ),
    );
  }

  async getTrigger(device: DeviceInfo): Promise<string | null> {
    const ctx = { uri: this.host.uri, device: device.id, op: 'get trigger' };
    const devices = this.host.devices();
    const dev = deviceIndex(devices, device);
    const r = await this.host.run('get trigger', ctx, (c) => exec(c, OP.GETTRIG, dev, 0));
    if (r.code === NO_TRIGGER) return null;
    if (r.code < 0) throw IioError.fromErrno(r.code, ctx);
    const trigger = wireDevices(devices)[r.code];
    if (!trigger) throw new ProtocolError(`trigger index ${r.code} out of range`);
    return trigger.id;
  }

  async setTrigger(device: DeviceInfo, trigger: DeviceInfo | null): Promise<void> {
    const ctx = { uri: this.host.uri, device: device.id, op: 'set trigger' };
    const devices = this.host.devices();
    const dev = deviceIndex(devices, device);
    const code = trigger ? deviceIndex(devices, trigger) : TRIGGER_NONE;
    const r = await this.host.run('set trigger', ctx, (c) => exec(c, OP.SETTRIG, dev, code));
    if (r.code < 0) throw IioError.fromErrno(r.code, ctx);
  }

  async readRegister(device: DeviceInfo, address: number): Promise<number> {
    const ctx = { uri: this.host.uri, device: device.id, op: 'read register' };
    const dev = deviceIndex(this.host.devices(), device);
    const r = await this.host.run('read register', ctx, (c) =>
      exec(c, OP.REG_READ, dev, address >>> 0),
    );
    if (r.code < 0) throw IioError.fromErrno(r.code, ctx);
    if (!r.data || r.data.length !== 4) throw new ProtocolError('REG_READ did not return 4 bytes');
    return r.data.readUInt32LE(0);
  }

  async writeRegister(device: DeviceInfo, address: number, value: number): Promise<void> {
    const ctx = { uri: this.host.uri, device: device.id, op: 'write register' };
    const dev = deviceIndex(this.host.devices(), device);
    const v = Buffer.alloc(4);
    v.writeUInt32LE(value >>> 0, 0);
    const r = await this.host.run('write register', ctx, (c) =>
      exec(c, OP.REG_WRITE, dev, address >>> 0, v),
    );
    if (r.code < 0) throw IioError.fromErrno(r.code, ctx);
  }

  async setKernelBuffersCount(device: DeviceInfo): Promise<void> {
    throw new IioError(
      'ENOSYS',
      "libiio 1.0's iiod has no kernel buffers count: use createBuffer's blocks",
      { uri: this.host.uri, device: device.id },
    );
  }

  /**
   * Nothing: iiod would read an ASCII `EXIT` as a frame (opcode 0x45, "Received invalid
   * opcode" in its log). libiio's client also just hangs up once it speaks binary.
   */
  goodbye(): void {}
}
