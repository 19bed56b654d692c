/**
 * libiio 1.0's binary iiod protocol (libiio main: iiod-responder.[ch], iiod/responder.c,
 * iiod-client.c): the opcode table, the frame header, how `code` packs its arguments,
 * the payloads that follow a header, and the wire indices of devices, channels and
 * attributes. Both ends use it: our client (src/backends/iiod/binary.ts) and the server.
 * Read for the facts; nothing here is copied from libiio.
 *
 * A connection speaks ASCII until the client sends `BINARY\r\n` and iiod answers `0\n`;
 * from then on both sides exchange frames: an 8-byte little-endian header
 * `{u16 client_id, u8 op, u8 dev, i32 code}`, then the payload the opcode calls for.
 */
import type { DeviceInfo } from '../model/info';
import { ProtocolError, strcmp } from './wire';

/** libiio main's `enum iiod_opcode` (since its May 2026 renumbering, NOP added after it). */
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
  OPEN_BUFFER: 17,
  CLOSE_BUFFER: 18,
  ENABLE_BUFFER: 19,
  DISABLE_BUFFER: 20,
  CREATE_BLOCK: 21,
  FREE_BLOCK: 22,
  TRANSFER_BLOCK: 23,
  ENQUEUE_BLOCK_CYCLIC: 24,
  RETRY_DEQUEUE_BLOCK: 25,
  CREATE_EVSTREAM: 26,
  FREE_EVSTREAM: 27,
  READ_EVENT: 28,
  REG_READ: 29,
  REG_WRITE: 30,
  REFRESH_FORMAT: 31,
  NOP: 32,
} as const;

export type OpName = keyof typeof OP;
export type Opcode = (typeof OP)[OpName];

/** Opcodes iiod knows; a frame with `op` at or past this ends the connection there. */
export const OPCODE_COUNT = 33;

const NAMES: readonly string[] = Object.entries(OP)
  .sort((a, b) => a[1] - b[1])
  .map(([k]) => k);

/** `READ_ATTR`, or `opcode 0x45` for one iiod does not know (as its log prints it). */
export function opcodeName(op: number): string {
  return NAMES[op] ?? `opcode 0x${op.toString(16)}`;
}

/**
 * What follows a command's header, before the server answers:
 * - `none`;
 * - `u32`: 4 bytes (REG_WRITE's value); `u64`: 8 bytes (CREATE_BLOCK's size);
 * - `value`: a u64 length, then that many bytes (WRITE_*_ATTR: the value and its NUL);
 * - `mask`: the channel mask, one u32 per 32 channels of the device (OPEN_BUFFER);
 * - `block`: a u64 `bytes_used`, then, for an output buffer, the block's data
 *   (TRANSFER_BLOCK, ENQUEUE_BLOCK_CYCLIC). libiio main's iiod reads the whole block's
 *   size there, not `bytes_used`: a client sends full blocks.
 */
export type RequestPayload = 'none' | 'u32' | 'u64' | 'value' | 'mask' | 'block';

/**
 * What the response to a command carries, after its header (op RESPONSE, the command's
 * client id):
 * - `status`: nothing; `code` is a status (< 0: -errno; a write's count of bytes taken);
 * - `data`: when `code` > 0, that many bytes (a value, the XML, a register, a format,
 *   OPEN_BUFFER's mask as the server enabled it, READ_EVENT's event);
 * - `block`: an input buffer's block: `code` > 0 bytes of samples; an output buffer's:
 *   a status. A failure to enqueue is told apart from one to dequeue: see blockStatus().
 * Block transfers and blocking READ_EVENTs are answered when done, possibly after the
 * responses to later commands: the client id tells whose response a frame is.
 */
export type ResponsePayload = 'status' | 'data' | 'block';

export interface OpcodeSpec {
  readonly request: RequestPayload;
  readonly response: ResponsePayload;
  /**
   * The client id its response comes on: `default` is 0 whatever the command's; `command`
   * is the command's own. libiio's client sends the context's commands (and FREE_BLOCK,
   * FREE_EVSTREAM) on 0, a block's on `block index + 1`, an event stream's on an id
   * counting down from 0xffff.
   */
  readonly answeredOn: 'default' | 'command';
}

const attrRead: OpcodeSpec = { request: 'none', response: 'data', answeredOn: 'default' };
const attrWrite: OpcodeSpec = { request: 'value', response: 'status', answeredOn: 'default' };
const plain: OpcodeSpec = { request: 'none', response: 'status', answeredOn: 'default' };

/** Every opcode's payloads (libiio main's responder.c handlers and iiod-client.c). */
export const OPCODES: Readonly<Record<Exclude<OpName, 'RESPONSE'>, OpcodeSpec>> = {
  PRINT: attrRead, // zstd-compressed XML (-EINVAL from an iiod built without zstd)
  TIMEOUT: plain, // code: ms, -1 = none (see remoteTimeout)
  READ_ATTR: attrRead,
  READ_DBG_ATTR: attrRead,
  READ_BUF_ATTR: attrRead,
  READ_CHN_ATTR: attrRead,
  READ_DEV_EVT_ATTR: attrRead,
  READ_CHN_EVT_ATTR: attrRead,
  WRITE_ATTR: attrWrite,
  WRITE_DBG_ATTR: attrWrite,
  WRITE_BUF_ATTR: attrWrite,
  WRITE_CHN_ATTR: attrWrite,
  WRITE_DEV_EVT_ATTR: attrWrite,
  WRITE_CHN_EVT_ATTR: attrWrite,
  GETTRIG: plain, // answers the trigger's device index, or NO_TRIGGER
  SETTRIG: plain, // code: the trigger's device index, or -1 for none
  OPEN_BUFFER: { request: 'mask', response: 'data', answeredOn: 'default' }, // code: buffer index
  CLOSE_BUFFER: plain, // code: buffer index
  ENABLE_BUFFER: plain,
  DISABLE_BUFFER: plain,
  CREATE_BLOCK: { request: 'u64', response: 'status', answeredOn: 'command' }, // code: blockCode
  FREE_BLOCK: { request: 'none', response: 'status', answeredOn: 'command' },
  TRANSFER_BLOCK: { request: 'block', response: 'block', answeredOn: 'command' },
  ENQUEUE_BLOCK_CYCLIC: { request: 'block', response: 'block', answeredOn: 'command' },
  RETRY_DEQUEUE_BLOCK: { request: 'none', response: 'block', answeredOn: 'command' },
  CREATE_EVSTREAM: { request: 'none', response: 'status', answeredOn: 'command' },
  FREE_EVSTREAM: plain, // code: the event stream's client id
  READ_EVENT: { request: 'none', response: 'data', answeredOn: 'command' }, // code ≠ 0: nonblocking
  REG_READ: { request: 'none', response: 'data', answeredOn: 'default' }, // code: address; u32 back
  REG_WRITE: { request: 'u32', response: 'status', answeredOn: 'default' }, // code: address
  REFRESH_FORMAT: { request: 'none', response: 'data', answeredOn: 'default' }, // code: channel
  NOP: plain, // answers 0: the probe that tells our numbering from older ones
};

/** The spec of opcode `op`, or undefined for RESPONSE and unknown ones. */
export function opcodeSpec(op: number): OpcodeSpec | undefined {
  const name = NAMES[op];
  return name && name !== 'RESPONSE' ? OPCODES[name as Exclude<OpName, 'RESPONSE'>] : undefined;
}

// ---- the header ----

export const HEADER_BYTES = 8;

/** The client id of the default io: the context's commands and their responses. */
export const DEFAULT_CLIENT_ID = 0;

export interface FrameHeader {
  readonly clientId: number;
  readonly op: number;
  readonly dev: number;
  readonly code: number;
}

/** The 8 header bytes (`{u16 client_id, u8 op, u8 dev, i32 code}`, little-endian). */
export function encodeHeader(h: FrameHeader): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b.writeUInt16LE(h.clientId & 0xffff, 0);
  b.writeUInt8(h.op & 0xff, 2);
  b.writeUInt8(h.dev & 0xff, 3);
  b.writeInt32LE(h.code | 0, 4);
  return b;
}

/** Reads a header at `offset` (8 bytes must be there). */
export function decodeHeader(b: Buffer, offset = 0): FrameHeader {
  if (b.length - offset < HEADER_BYTES) throw new ProtocolError('a frame header is truncated');
  return {
    clientId: b.readUInt16LE(offset),
    op: b.readUInt8(offset + 2),
    dev: b.readUInt8(offset + 3),
    code: b.readInt32LE(offset + 4),
  };
}

/** A whole frame: header and payload in one buffer (one write, one USB transfer). */
export function encodeFrame(h: FrameHeader, payload?: Buffer): Buffer {
  const head = encodeHeader(h);
  return payload?.length ? Buffer.concat([head, payload]) : head;
}

/** A response frame's header: op RESPONSE, the command's client id, `code`. */
export function responseHeader(clientId: number, code: number): FrameHeader {
  return { clientId, op: OP.RESPONSE, dev: 0, code };
}

/**
 * After the switch, iiod answers a repeated `BINARY\r\n` — exactly 8 bytes, read as a
 * header — with this, in ASCII (a serial client that reconnects does not know the
 * line's state).
 */
export const BINARY_AGAIN_REPLY = '0\r\n';

// ---- what `code` carries ----

/** An attribute command's code: the attribute's index high, the channel or buffer index low. */
export function attrCode(attrIndex: number, arg: number): number {
  return ((attrIndex & 0xffff) << 16) | (arg & 0xffff);
}

export function parseAttrCode(code: number): { attr: number; arg: number } {
  return { attr: (code >>> 16) & 0xffff, arg: code & 0xffff };
}

/** A block command's code: the buffer's index low, the block's index high. */
export function blockCode(bufferIndex: number, blockIndex: number): number {
  return (bufferIndex & 0xffff) | ((blockIndex & 0xffff) << 16);
}

export function parseBlockCode(code: number): { buffer: number; block: number } {
  return { buffer: code & 0xffff, block: (code >>> 16) & 0xffff };
}

/** GETTRIG's answer when the device has no trigger (-ENODEV). */
export const NO_TRIGGER = -19;
/** SETTRIG's code for "no trigger". */
export const TRIGGER_NONE = -1;

/** TIMEOUT's code for a client timeout of `ms` (0 = none): half of it; -1 means none. */
export function remoteTimeout(ms: number): number {
  return ms > 0 ? Math.floor(ms / 2) : -1;
}

/**
 * A block transfer's status. iiod shifts an enqueue failure 16 bits left (its low half
 * then zero) so the client knows the block was not queued; any other negative code
 * failed the dequeue (the block stays queued: RETRY_DEQUEUE_BLOCK).
 */
export function encodeEnqueueFailure(negErrno: number): number {
  return negErrno << 16;
}

export function blockStatus(
  code: number,
): { ok: true; bytes: number } | { ok: false; stage: 'enqueue' | 'dequeue'; code: number } {
  if (code >= 0) return { ok: true, bytes: code };
  if ((code & 0xffff) === 0) return { ok: false, stage: 'enqueue', code: code >> 16 };
  return { ok: false, stage: 'dequeue', code };
}

// ---- payloads ----

/** WRITE_*_ATTR's payload: the u64 length, then the bytes (the value and its NUL). */
export function encodeWriteValue(value: Buffer): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(value.length), 0);
  return Buffer.concat([len, value]);
}

/** The length at the start of a WRITE_*_ATTR payload (or CREATE_BLOCK's size). */
export function readU64Length(b: Buffer, offset = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = b.readBigUInt64LE(offset);
  if (n > BigInt(max)) throw new ProtocolError(`a length of ${n} bytes`, 'frame');
  return Number(n);
}

/**
 * OPEN_BUFFER's mask: one u32 per 32 channels, little-endian, word w holding channels
 * 32w..32w+31 (bit b = channel 32w+b; channel numbers as in wireChannels()).
 */
export function encodeMaskWords(channels: number, enabled: (channel: number) => boolean): Buffer {
  const words = Math.ceil(channels / 32);
  const b = Buffer.alloc(words * 4);
  for (let i = 0; i < channels; i++) {
    if (enabled(i)) {
      const off = (i >> 5) * 4;
      b.writeUInt32LE((b.readUInt32LE(off) | (1 << (i & 31))) >>> 0, off);
    }
  }
  return b;
}

/** The channel numbers a mask's words enable (bits past `channels` are ignored). */
export function decodeMaskWords(words: Buffer, channels: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < channels && (i >> 5) * 4 + 4 <= words.length; i++) {
    if (words.readUInt32LE((i >> 5) * 4) & (1 << (i & 31))) out.push(i);
  }
  return out;
}

/** Bytes of OPEN_BUFFER's mask for a device of `channels` channels. */
export function maskBytes(channels: number): number {
  return Math.ceil(channels / 32) * 4;
}

/** READ_EVENT's payload: `struct iio_event { u64 id; i64 timestamp; }`, little-endian. */
export const EVENT_BYTES = 16;

export function encodeEvent(ev: { readonly id: bigint; readonly timestamp: bigint }): Buffer {
  const b = Buffer.alloc(EVENT_BYTES);
  b.writeBigUInt64LE(ev.id, 0);
  b.writeBigInt64LE(ev.timestamp, 8);
  return b;
}

export function decodeEvent(b: Buffer): { id: bigint; timestamp: bigint } {
  if (b.length < EVENT_BYTES) throw new ProtocolError(`an event of ${b.length} bytes`);
  return { id: b.readBigUInt64LE(0), timestamp: b.readBigInt64LE(8) };
}

// ---- indices: how frames name devices, channels and attributes ----

/** The attribute families frames reach (libiio 1.0's IIO_ATTR_TYPE_*, context excepted). */
export type WireAttrKind =
  'device' | 'debug' | 'buffer' | 'channel' | 'device-event' | 'channel-event';

const ATTR_OPS: Readonly<Record<WireAttrKind, readonly [read: number, write: number]>> = {
  device: [OP.READ_ATTR, OP.WRITE_ATTR],
  debug: [OP.READ_DBG_ATTR, OP.WRITE_DBG_ATTR],
  buffer: [OP.READ_BUF_ATTR, OP.WRITE_BUF_ATTR],
  channel: [OP.READ_CHN_ATTR, OP.WRITE_CHN_ATTR],
  'device-event': [OP.READ_DEV_EVT_ATTR, OP.WRITE_DEV_EVT_ATTR],
  'channel-event': [OP.READ_CHN_EVT_ATTR, OP.WRITE_CHN_EVT_ATTR],
};

/** The opcode reading (or writing) an attribute of `kind`. */
export function attrOpcode(kind: WireAttrKind, write: boolean): number {
  return ATTR_OPS[kind][write ? 1 : 0];
}

/** The attribute family and direction of an attribute opcode, or undefined. */
export function attrOpKind(op: number): { kind: WireAttrKind; write: boolean } | undefined {
  for (const [kind, ops] of Object.entries(ATTR_OPS) as Array<[WireAttrKind, readonly number[]]>) {
    const i = ops.indexOf(op);
    if (i >= 0) return { kind, write: i === 1 };
  }
  return undefined;
}

/**
 * The devices in wire order: libiio sorts a context's devices by id (strcmp), and a
 * device's index is its place there. `dev` is a u8: at most 256 devices are reachable.
 */
export function wireDevices<D extends Pick<DeviceInfo, 'id'>>(devices: readonly D[]): D[] {
  return [...devices].sort((a, b) => strcmp(a.id, b.id));
}

/** Attribute names in wire order: sorted by name (strcmp), an attribute's index its place. */
export function wireAttrNames(attrs: ReadonlyArray<{ readonly name: string }>): string[] {
  return attrs.map((a) => a.name).sort(strcmp);
}

/**
 * The attribute list a kind names, for indexing: a channel's (by its place in the
 * device's channel list, the server's XML order), a buffer's (by its index), the device's.
 */
export function attrList(
  device: DeviceInfo,
  kind: WireAttrKind,
  channel?: DeviceInfo['channels'][number],
  bufferIndex = 0,
): ReadonlyArray<{ readonly name: string }> {
  switch (kind) {
    case 'device':
      return device.attrs;
    case 'debug':
      return device.debugAttrs;
    case 'buffer':
      return device.buffers?.find((b) => b.index === bufferIndex)?.attrs ?? device.bufferAttrs;
    case 'device-event':
      return device.eventAttrs ?? [];
    case 'channel':
      return channel?.attrs ?? [];
    case 'channel-event':
      return channel?.eventAttrs ?? [];
  }
}
