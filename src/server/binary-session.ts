/**
 * One client connection in libiio 1.0's binary protocol, after `BINARY` (libiio main's
 * iiod/responder.c and iiod-responder.c, read for the facts): 8-byte command frames in,
 * response frames out. This file is the dispatch and the context's commands (PRINT,
 * TIMEOUT, attributes by index, triggers, registers, REFRESH_FORMAT, NOP); buffers,
 * blocks and event streams are binary-buffers.ts and binary-events.ts. What a command
 * does is the protocol-neutral operation the ASCII session calls too (device-ops.ts,
 * buffer-ops.ts).
 *
 * Where iiod leaves a payload unread after an error (its next "frames" are then the
 * payload's bytes), we read or skip it: the connection stays in step. A frame whose size
 * we cannot know or will not take — an unknown opcode, a length past our limits — is
 * answered with its errno and ends the connection, releasing what it had opened.
 */
import type { Socket } from 'node:net';
import {
  attrOpKind,
  BINARY_AGAIN_REPLY,
  decodeHeader,
  DEFAULT_CLIENT_ID,
  formatWireFormat,
  HEADER_BYTES,
  NO_TRIGGER,
  OP,
  opcodeName,
  opcodeSpec,
  parseAttrCode,
  TRIGGER_NONE,
  wireAttrs,
  wireDevices,
  type FrameHeader,
  type WireAttrKind,
} from '../iiod-protocol/binary';
import { BINARY_LINE } from '../iiod-protocol/ascii';
import { decodeValue, encodeValue } from '../iiod-protocol/wire';
import type { Attr } from '../model/attr';
import type { Channel } from '../model/channel';
import type { Device } from '../model/device';
import { tracer } from '../util/trace';
import { BinaryBuffers } from './binary-buffers';
import { BinaryEvents } from './binary-events';
import { FrameIo, MAX_SKIP } from './binary-frames';
import { binaryContextXml } from './binary-xml';
import type { SessionHost } from './buffer-ops';
import {
  getTrigger,
  MAX_ATTR_WRITE,
  NEG,
  negErrno,
  setTriggerDevice,
  type NegErrno,
} from './device-ops';
import type { SocketReader } from './reader';
import type { InputClient } from './streams';

const trace = tracer('server');

/** Each attribute list in wire order (sorted by name), computed once per list. */
const sortedLists = new WeakMap<readonly Attr[], readonly Attr[]>();

function inWireOrder(list: readonly Attr[]): readonly Attr[] {
  let sorted = sortedLists.get(list);
  if (!sorted) {
    sorted = wireAttrs(list);
    sortedLists.set(list, sorted);
  }
  return sorted;
}

/** The devices in wire order (a device's index is its place), computed once per context. */
const deviceLists = new WeakMap<readonly Device[], readonly Device[]>();

export function wireDeviceList(devices: readonly Device[]): readonly Device[] {
  let sorted = deviceLists.get(devices);
  if (!sorted) {
    sorted = wireDevices(devices);
    deviceLists.set(devices, sorted);
  }
  return sorted;
}

/** A device's or channel's event attributes (libiio 1.0's `events/` files), if it has any. */
function eventAttrsOf(x: Device | Channel): readonly Attr[] {
  return x.eventAttrs;
}

/** The attribute an attribute command addresses: device, kind, channel or buffer, index. */
function attrAt(dev: Device | undefined, kind: WireAttrKind, code: number): Attr | undefined {
  if (!dev) return undefined;
  const { attr, arg } = parseAttrCode(code);
  let list: readonly Attr[];
  switch (kind) {
    case 'device':
      list = dev.attrs;
      break;
    case 'debug':
      list = dev.debugAttrs;
      break;
    case 'buffer':
      // Our devices have one buffer, index 0.
      if (arg !== 0) return undefined;
      list = dev.bufferAttrs;
      break;
    case 'channel': {
      const ch = dev.channels[arg];
      if (!ch) return undefined;
      list = ch.attrs;
      break;
    }
    case 'device-event':
      list = eventAttrsOf(dev);
      break;
    case 'channel-event': {
      const ch = dev.channels[arg];
      if (!ch) return undefined;
      list = eventAttrsOf(ch);
      break;
    }
  }
  return inWireOrder(list)[attr];
}

/** `BINARY\r\n` as bytes: compared with each frame header without making a string of it. */
const BINARY_LINE_BYTES = Buffer.from(BINARY_LINE, 'latin1');

/** One connection after `BINARY`. */
export class BinarySession {
  private readonly io: FrameIo;
  private readonly buffers: BinaryBuffers;
  private readonly events: BinaryEvents;
  /** TIMEOUT: kept per connection (never applied to the shared context), as in ASCII. */
  timeoutMs = -1;

  constructor(
    private readonly host: SessionHost,
    socket: Socket,
    reader: SocketReader,
    readonly peer: string,
    owner: object,
  ) {
    this.io = new FrameIo(socket, reader);
    const devices = (): readonly Device[] => this.devices;
    this.buffers = new BinaryBuffers(host, owner, this.io, devices, peer);
    this.events = new BinaryEvents(this.io, devices);
  }

  private get devices(): readonly Device[] {
    return wireDeviceList(this.host.ctx.devices);
  }

  /** Readers open (for statistics). */
  get inputClients(): InputClient[] {
    return this.buffers.inputClients;
  }

  /** Scans this connection's readers lost, closed ones included. */
  get droppedScans(): number {
    return this.buffers.droppedScans;
  }

  /** Bytes this connection's buffers have reserved. */
  get reservedBytes(): number {
    return this.buffers.reservedBytes;
  }

  /** Whether a buffer or an event stream is open. */
  get hasOpen(): boolean {
    return this.buffers.hasOpen || this.events.hasOpen;
  }

  /** Whether an output buffer is open. */
  get hasOutput(): boolean {
    return this.buffers.hasOutput;
  }

  /** Whether this connection has buffer `index` of `dev` open. */
  hasBuffer(dev: Device, index: number): boolean {
    return this.buffers.has(dev, index);
  }

  /** Serves frames until the client leaves or sends one we cannot follow. */
  async run(): Promise<void> {
    for (;;) {
      let head: Buffer;
      try {
        head = await this.io.readCommand(HEADER_BYTES);
      } catch {
        return;
      }
      // A client that does not know the line's state says BINARY again (serial links):
      // exactly one header's worth, answered in ASCII as iiod does.
      if (head.equals(BINARY_LINE_BYTES)) {
        await this.io.respondRaw(Buffer.from(BINARY_AGAIN_REPLY, 'latin1'));
        continue;
      }
      const h = decodeHeader(head);
      let keep: boolean;
      try {
        keep = await this.dispatch(h);
      } catch (err) {
        if (this.io.isClosed) return;
        // A failure outside the protocol's error paths: answer it, keep serving.
        this.host.log(`${this.peer}: ${opcodeName(h.op)}: ${(err as Error).message}`);
        const to = opcodeSpec(h.op)?.answeredOn === 'command' ? h.clientId : DEFAULT_CLIENT_ID;
        await this.io.respond(to, negErrno(err)).catch(() => undefined);
        keep = true;
      }
      if (!keep) return;
    }
  }

  /** Releases what the connection opened. */
  async end(): Promise<void> {
    await this.events.closeAll();
    await this.buffers.closeAll();
  }

  /** Answers on the default client id (the context's commands). */
  private answer(code: number, payload?: Buffer): Promise<void> {
    if (code < 0) trace(`${this.peer}: answered ${code}`);
    return this.io.respond(DEFAULT_CLIENT_ID, code, payload);
  }

  /** Handles one frame; false ends the connection (the stream cannot be followed). */
  private async dispatch(h: FrameHeader): Promise<boolean> {
    if (trace.enabled) {
      trace(`${this.peer}: ${opcodeName(h.op)} dev ${h.dev} code ${h.code} client ${h.clientId}`);
    }
    if (h.op === OP.RESPONSE) {
      // Nobody here waits for a response: drop it and its payload, as iiod does.
      if (h.code <= 0) return true;
      if (h.code > MAX_SKIP) return false;
      await this.io.skip(h.code);
      return true;
    }
    const spec = opcodeSpec(h.op);
    if (!spec) {
      // Its payload's size is unknown: nothing after it can be read as frames.
      this.host.log(`${this.peer}: unknown ${opcodeName(h.op)}: connection closed`);
      await this.io.respond(h.clientId, NEG.ENOSYS);
      return false;
    }
    const kind = attrOpKind(h.op);
    if (kind) return kind.write ? this.writeAttr(h, kind.kind) : this.readAttr(h, kind.kind);
    const dev = this.devices[h.dev];
    switch (h.op) {
      case OP.PRINT: {
        const xml = binaryContextXml(this.host.ctx);
        await (typeof xml === 'number' ? this.answer(xml) : this.answer(xml.length, xml));
        return true;
      }
      case OP.TIMEOUT:
        this.timeoutMs = h.code;
        await this.answer(0);
        return true;
      case OP.NOP:
        await this.answer(0);
        return true;
      case OP.GETTRIG:
        await this.answer(dev ? await this.trigger(dev) : NEG.EINVAL);
        return true;
      case OP.SETTRIG: {
        let code: number = NEG.EINVAL;
        const trig = h.code === TRIGGER_NONE ? null : this.devices[h.code];
        if (dev && trig !== undefined) code = await setTriggerDevice(dev, trig);
        await this.answer(code);
        return true;
      }
      case OP.REG_READ:
        await this.readRegister(dev, h.code >>> 0);
        return true;
      case OP.REG_WRITE: {
        const value = (await this.io.readBytes(4)).readUInt32LE(0);
        let code: number = NEG.ENODEV;
        if (dev) {
          code = await dev.writeRegister(h.code >>> 0, value).then(
            () => 0,
            (err: unknown) => negErrno(err),
          );
        }
        await this.answer(code);
        return true;
      }
      case OP.REFRESH_FORMAT: {
        const ch = dev?.channels[h.code & 0xffff];
        if (!dev) await this.answer(NEG.ENODEV);
        // Only libiio's local backend refreshes a format (from sysfs, where a driver may
        // change it); over a description (xml:, emu:, ...) iiod answers ENOSYS and the
        // client keeps the XML's (with its fully-defined `S`, which this answer drops).
        else if (this.host.ctx.name !== 'local') await this.answer(NEG.ENOSYS);
        else if (!ch?.format || !ch.isScanElement) await this.answer(NEG.EINVAL);
        else {
          const text = Buffer.from(formatWireFormat(ch.format), 'latin1');
          await this.answer(text.length, text);
        }
        return true;
      }
      case OP.CREATE_EVSTREAM:
      case OP.FREE_EVSTREAM:
      case OP.READ_EVENT:
        await this.events.dispatch(h);
        return true;
      default:
        return this.buffers.dispatch(h);
    }
  }

  /** GETTRIG: the trigger's device index, -ENODEV for none. */
  private async trigger(dev: Device): Promise<number | NegErrno> {
    const t = await getTrigger(dev);
    if (typeof t === 'number') return t;
    if (!t) return NO_TRIGGER;
    const i = this.devices.indexOf(t);
    return i >= 0 ? i : NO_TRIGGER;
  }

  private async readRegister(dev: Device | undefined, address: number): Promise<void> {
    if (!dev) return this.answer(NEG.ENODEV);
    let value: number;
    try {
      value = await dev.readRegister(address);
    } catch (err) {
      return this.answer(negErrno(err));
    }
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value >>> 0, 0);
    return this.answer(4, b);
  }

  /** READ_*_ATTR: the value and its NUL (the code counts both), or -errno. */
  private async readAttr(h: FrameHeader, kind: WireAttrKind): Promise<boolean> {
    const attr = attrAt(this.devices[h.dev], kind, h.code);
    if (!attr) {
      await this.answer(NEG.EINVAL);
      return true;
    }
    let value: string;
    try {
      value = await attr.read();
    } catch (err) {
      await this.answer(negErrno(err));
      return true;
    }
    const data = encodeValue(value);
    await this.answer(data.length, data);
    return true;
  }

  /** WRITE_*_ATTR: a u64 length, the value (with its NUL); answers the bytes taken. */
  private async writeAttr(h: FrameHeader, kind: WireAttrKind): Promise<boolean> {
    const len = await this.io.readU64();
    if (len > MAX_ATTR_WRITE) {
      // iiod's malloc would fail: -ENOMEM. We do not read that much to skip it.
      this.host.log(`${this.peer}: an attribute write of ${len} bytes: connection closed`);
      await this.answer(NEG.ENOMEM);
      return false;
    }
    const data = await this.io.readBytes(len);
    const attr = attrAt(this.devices[h.dev], kind, h.code);
    if (!attr) {
      await this.answer(NEG.EINVAL);
      return true;
    }
    let code = len;
    try {
      await attr.write(decodeValue(data));
    } catch (err) {
      code = negErrno(err);
    }
    await this.answer(code);
    return true;
  }
}
