/**
 * The client side of libiio 0.x's ASCII protocol (iiod/parser.y, iiod/ops.c): command
 * lines, how their replies are read, and the ASCII dialect of the control connection.
 * Every function here runs on a Connection the caller holds alone; iiod's own errors
 * come back as negative numbers, and anything that does not parse throws (the
 * connection is then dropped). The protocol's shared rules are in src/iiod-protocol.
 */
import { IioError } from '../../errors';
import {
  checkToken,
  decodePackedValues,
  DEVICE_ATTR_KEYWORDS,
  parseVersion,
} from '../../iiod-protocol/ascii';
import {
  decodeValue,
  encodeValue,
  MAX_ATTR_VALUE,
  MAX_TRIGGER_NAME,
  MAX_XML,
  ProtocolError,
} from '../../iiod-protocol/wire';
import type { AttrRef } from '../../model/backend';
import type { ContextVersion, DeviceInfo } from '../../model/info';
import type { Connection } from './connection';
import { attrCtx, type AttrFamily, type DialectHost, type IiodDialect } from './dialect';

/** The command addressing an attribute (`READ` / `WRITE` and the rest of the line). */
export function attrAddress(ref: AttrRef): string {
  const dev = ref.device;
  if (!dev) throw new IioError('EINVAL', 'a context attribute is not read from iiod');
  checkToken('device', dev.id);
  const attr = ref.attr.name;
  checkToken('attribute', attr);
  switch (ref.kind) {
    case 'device':
      // `READ dev debug` would read all debug attributes: refuse what iiod would misread.
      if (DEVICE_ATTR_KEYWORDS.has(attr)) {
        throw new IioError(
          'EINVAL',
          `device attribute "${attr}" is a keyword of iiod's ASCII protocol and cannot be addressed`,
        );
      }
      return `${dev.id} ${attr}`;
    case 'debug':
      return `${dev.id} DEBUG ${attr}`;
    case 'buffer':
      if ((ref.bufferIndex ?? 0) !== 0) {
        throw new IioError('ENOSYS', "iiod's ASCII protocol only reaches buffer 0");
      }
      return `${dev.id} BUFFER ${attr}`;
    case 'channel': {
      const ch = ref.channel;
      if (!ch) throw new IioError('EINVAL', 'a channel attribute needs its channel');
      checkToken('channel', ch.id);
      return `${dev.id} ${ch.isOutput ? 'OUTPUT' : 'INPUT'} ${ch.id} ${attr}`;
    }
    default:
      throw new IioError(
        'ENOSYS',
        `${ref.kind} attributes need iiod's binary protocol (libiio 1.0)`,
      );
  }
}

/** `READ ...`: the value, or the negative errno iiod answered. */
export async function readValue(
  c: Connection,
  address: string,
  max = MAX_ATTR_VALUE,
): Promise<Buffer | number> {
  c.send(`READ ${address}\r\n`);
  return readSized(c, max);
}

/** Reads `<len>\n<len bytes>\n` (or `<negerrno>\n`). */
export async function readSized(c: Connection, max: number): Promise<Buffer | number> {
  const n = await c.readInteger();
  if (n < 0) return n;
  if (n > max) throw new ProtocolError(`announced ${n} bytes, more than the ${max} accepted`);
  const data = Buffer.allocUnsafe(n + 1);
  await c.reader.readInto(data, 0, n + 1);
  if (data[n] !== 10) {
    throw new ProtocolError(`${n} bytes of data are not followed by a newline`);
  }
  return data.subarray(0, n);
}

/** `WRITE ... <len>` + bytes: iiod's answer (bytes written or -errno). */
export async function writeValue(c: Connection, address: string, value: Buffer): Promise<number> {
  // Two writes, as libiio: over USB iiod reads each transfer as a whole, and the value
  // must not be taken for part of the command line.
  c.send(`WRITE ${address} ${value.length}\r\n`);
  c.send(value);
  return c.readInteger();
}

/** A command answered by one integer (TIMEOUT, SETTRIG, OPEN, CLOSE, SET ... BUFFERS_COUNT). */
export async function simpleCommand(c: Connection, line: string): Promise<number> {
  c.send(`${line}\r\n`);
  return c.readInteger();
}

/** `VERSION`: `%u.%u.%-7.7s\n`. */
export async function version(c: Connection): Promise<ContextVersion> {
  c.send('VERSION\r\n');
  return parseVersion(await c.reader.readLine(256));
}

/** `PRINT`: the context XML, or a negative errno. */
export async function print(c: Connection): Promise<Buffer | number> {
  c.send('PRINT\r\n');
  return readSized(c, MAX_XML);
}

/** `ZPRINT`: zstd-compressed XML, or a negative errno (-22 from iiod built without zstd). */
export async function zprint(c: Connection): Promise<Buffer | number> {
  c.send('ZPRINT\r\n');
  return readSized(c, MAX_XML);
}

/** `GETTRIG`: the trigger's name, null for none, or a negative errno. */
export async function getTrigger(c: Connection, deviceId: string): Promise<string | null | number> {
  checkToken('device', deviceId);
  c.send(`GETTRIG ${deviceId}\r\n`);
  // `0` alone means no trigger: nothing follows it (unlike READ's empty value)
  const n = await c.readInteger();
  if (n <= 0) return n === 0 ? null : n;
  if (n > MAX_TRIGGER_NAME) throw new ProtocolError(`a trigger name of ${n} bytes`);
  const data = await c.reader.readExact(n + 1);
  if (data[n] !== 10) throw new ProtocolError('the trigger name is not followed by a newline');
  return decodeValue(data.subarray(0, n));
}

/** libiio's calculate_remote_timeout for 0.x servers: the server gets half (0 = none). */
function remoteTimeout(ms: number): number {
  return Math.floor(ms / 2);
}

/** The control connection in 0.x's ASCII protocol: names in command lines. */
export class AsciiDialect implements IiodDialect {
  readonly name = 'ascii';

  constructor(private readonly host: DialectHost) {}

  async setUp(): Promise<void> {
    // a fresh connection speaks ASCII already
  }

  sendTimeout(c: Connection, timeoutMs: number): Promise<number> {
    return simpleCommand(c, `TIMEOUT ${remoteTimeout(timeoutMs)}`);
  }

  async readAttr(ref: AttrRef): Promise<string> {
    const ctx = attrCtx(this.host.uri, ref);
    const address = attrAddress(ref);
    const r = await this.host.run('read', ctx, (c) => readValue(c, address));
    if (typeof r === 'number') throw IioError.fromErrno(r, { ...ctx, op: 'read' });
    return decodeValue(r);
  }

  async writeAttr(ref: AttrRef, value: string): Promise<number> {
    const ctx = attrCtx(this.host.uri, ref);
    const address = attrAddress(ref);
    const payload = encodeValue(value);
    const r = await this.host.run('write', ctx, (c) => writeValue(c, address, payload));
    if (r < 0) throw IioError.fromErrno(r, { ...ctx, op: 'write' });
    return r;
  }

  /** iiod's read-all: `READ dev`, `READ dev DEBUG`, `READ dev BUFFER`, `READ dev INPUT|OUTPUT chn`. */
  async readAllAttrs(
    device: DeviceInfo,
    family: AttrFamily,
    channel?: DeviceInfo['channels'][number],
  ): Promise<Array<string | IioError>> {
    checkToken('device', device.id);
    let address = device.id;
    let count: number;
    if (family === 'channel') {
      if (!channel) throw new IioError('EINVAL', 'read-all of channel attributes needs a channel');
      checkToken('channel', channel.id);
      address += ` ${channel.isOutput ? 'OUTPUT' : 'INPUT'} ${channel.id}`;
      count = channel.attrs.length;
    } else {
      if (family === 'debug') address += ' DEBUG';
      if (family === 'buffer') address += ' BUFFER';
      count = (
        family === 'device'
          ? device.attrs
          : family === 'debug'
            ? device.debugAttrs
            : device.bufferAttrs
      ).length;
    }
    const ctx = { uri: this.host.uri, device: device.id, channel: channel?.id, op: 'read all' };
    const r = await this.host.run('read all', ctx, (c) => readValue(c, address));
    if (typeof r === 'number') throw IioError.fromErrno(r, ctx);
    // a length of 0 is an empty value; below 0, that attribute's -errno
    return decodePackedValues(r, count).values.map((v) =>
      typeof v === 'string' ? v : v === 0 ? '' : IioError.fromErrno(v, ctx),
    );
  }

  async getTrigger(device: DeviceInfo): Promise<string | null> {
    const ctx = { uri: this.host.uri, device: device.id, op: 'get trigger' };
    const r = await this.host.run('get trigger', ctx, (c) => getTrigger(c, device.id));
    if (typeof r === 'number') throw IioError.fromErrno(r, ctx);
    return r;
  }

  async setTrigger(device: DeviceInfo, trigger: DeviceInfo | null): Promise<void> {
    checkToken('device', device.id);
    if (trigger) checkToken('device', trigger.id);
    const ctx = { uri: this.host.uri, device: device.id, op: 'set trigger' };
    const line = trigger ? `SETTRIG ${device.id} ${trigger.id}` : `SETTRIG ${device.id}`;
    const r = await this.host.run('set trigger', ctx, (c) => simpleCommand(c, line));
    if (r < 0) throw IioError.fromErrno(r, ctx);
  }

  /** Registers through debugfs's `direct_reg_access`, as libiio's 0.x client does. */
  async readRegister(device: DeviceInfo, address: number): Promise<number> {
    const ctx = { uri: this.host.uri, device: device.id, op: 'read register' };
    const reg = this.debugRegAttr(device);
    await this.writeAttr(reg, `0x${address.toString(16)}`);
    const text = (await this.readAttr(reg)).trim();
    const v = Number(text);
    if (!Number.isFinite(v)) throw new IioError('EIO', `register read back "${text}"`, ctx);
    return v >>> 0;
  }

  async writeRegister(device: DeviceInfo, address: number, value: number): Promise<void> {
    await this.writeAttr(
      this.debugRegAttr(device),
      `0x${address.toString(16)} 0x${(value >>> 0).toString(16)}`,
    );
  }

  private debugRegAttr(device: DeviceInfo): AttrRef {
    const attr = device.debugAttrs.find((a) => a.name === 'direct_reg_access');
    if (!attr) {
      throw new IioError('ENOENT', 'no debug attribute "direct_reg_access"', {
        uri: this.host.uri,
        device: device.id,
      });
    }
    return { kind: 'debug', device, attr };
  }

  /** `SET dev BUFFERS_COUNT n`: the number of kernel buffers iiod uses for the device. */
  async setKernelBuffersCount(device: DeviceInfo, count: number): Promise<void> {
    checkToken('device', device.id);
    if (!Number.isInteger(count) || count < 1) {
      throw new IioError('EINVAL', `kernel buffers count must be a positive integer, not ${count}`);
    }
    const ctx = { uri: this.host.uri, device: device.id, op: 'set kernel buffers count' };
    const r = await this.host.run('set buffers count', ctx, (c) =>
      simpleCommand(c, `SET ${device.id} BUFFERS_COUNT ${count}`),
    );
    if (r < 0) throw IioError.fromErrno(r, ctx);
  }

  /** iiod 0.x ends the session on EXIT (1.0 ignores it); the CRLF first ends any line. */
  goodbye(c: Connection): void {
    c.send('\r\nEXIT\r\n');
  }
}
