/**
 * libiio 0.x's iiod ASCII protocol, client side: command lines and the parsing of their
 * replies (iiod/parser.y, iiod/ops.c). Every function here runs on a Connection the
 * caller holds alone; iiod's own errors come back as negative numbers, and anything
 * that does not parse throws (the connection is then dropped).
 */
import { IioError } from '../../errors';
import type { AttrRef } from '../../model/backend';
import type { Connection } from './connection';
import { printable } from './connection';
import { ProtocolError } from './reader';

/** Largest attribute value accepted (iiod 0.24 sends at most 64 KiB; 1.0 the same). */
export const MAX_ATTR_REPLY = 16 * 1024 * 1024;
/** Largest context XML accepted. */
export const MAX_XML_REPLY = 256 * 1024 * 1024;

/** A token iiod's lexer reads as one WORD (lexer.l); anything else desynchronises it. */
const WORD = /^(([A-Za-z]+,)|(iio:))?[-_.A-Za-z0-9]+$/;
/** Words the lexer takes as keywords where an attribute name could stand. */
const DEVICE_KEYWORDS = new Set([
  'DEBUG',
  'debug',
  'BUFFER',
  'buffer',
  'INPUT',
  'input',
  'OUTPUT',
  'output',
  'BUFFERS_COUNT',
  'buffers_count',
]);

/** Checks that a device/channel/attribute name can travel in an ASCII command. */
export function checkToken(kind: 'device' | 'channel' | 'attribute', token: string): void {
  if (!WORD.test(token)) {
    throw new IioError(
      'EINVAL',
      `${kind} name "${printable(token)}" cannot be sent in iiod's ASCII protocol (its lexer accepts letters, digits, "-", "_" and ".")`,
    );
  }
  if (token === 'CYCLIC' || token === 'cyclic') {
    throw new IioError('EINVAL', `${kind} name "${token}" is a keyword of iiod's ASCII protocol`);
  }
}

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
      if (DEVICE_KEYWORDS.has(attr)) {
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
  max = MAX_ATTR_REPLY,
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

/** A value as libiio hands it out: the C string up to the first NUL. */
export function decodeValue(data: Buffer): string {
  const nul = data.indexOf(0);
  return (nul >= 0 ? data.subarray(0, nul) : data).toString('utf8');
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

export interface ServerVersion {
  readonly major: number;
  readonly minor: number;
  /** As iiod prints it: up to 7 characters, padded with spaces (`v0.24  `). */
  readonly git: string;
}

/** `VERSION`: `%u.%u.%-7.7s\n`. */
export async function version(c: Connection): Promise<ServerVersion> {
  c.send('VERSION\r\n');
  const line = await c.reader.readLine(256);
  const m = /^(\d{1,9})\.(\d{1,9})\.(.*)$/.exec(line);
  if (!m) throw new ProtocolError(`bad VERSION reply "${printable(line)}"`);
  // libiio keeps 7 characters of the tag, trailing padding included; we trim the padding.
  return { major: Number(m[1]), minor: Number(m[2]), git: m[3].slice(0, 7).trimEnd() };
}

/** `PRINT`: the context XML, or a negative errno. */
export async function print(c: Connection): Promise<Buffer | number> {
  c.send('PRINT\r\n');
  return readSized(c, MAX_XML_REPLY);
}

/** `ZPRINT`: zstd-compressed XML, or a negative errno (-22 from iiod built without zstd). */
export async function zprint(c: Connection): Promise<Buffer | number> {
  c.send('ZPRINT\r\n');
  return readSized(c, MAX_XML_REPLY);
}

/** `GETTRIG`: the trigger's name, null for none, or a negative errno. */
export async function getTrigger(c: Connection, deviceId: string): Promise<string | null | number> {
  checkToken('device', deviceId);
  c.send(`GETTRIG ${deviceId}\r\n`);
  // `0` alone means no trigger: nothing follows it (unlike READ's empty value)
  const n = await c.readInteger();
  if (n <= 0) return n === 0 ? null : n;
  if (n > 4096) throw new ProtocolError(`a trigger name of ${n} bytes`);
  const data = await c.reader.readExact(n + 1);
  if (data[n] !== 10) throw new ProtocolError('the trigger name is not followed by a newline');
  return decodeValue(data.subarray(0, n));
}

/**
 * Decodes a read-all reply (`READ dev` with no attribute): per attribute a big-endian
 * int32 length (negative: -errno) and the value padded to 4 bytes (libiio's
 * read_each_attr).
 */
export function decodeReadAll(data: Buffer, count: number): Array<string | number> {
  const out: Array<string | number> = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > data.length) throw new ProtocolError('read-all reply is truncated');
    const len = data.readInt32BE(off);
    off += 4;
    if (len < 0) {
      out.push(len);
      continue;
    }
    if (off + len > data.length) throw new ProtocolError('read-all reply is truncated');
    out.push(decodeValue(data.subarray(off, off + len)));
    off += len;
    if (len % 4) off += 4 - (len % 4);
  }
  return out;
}

/** Encodes values for a write-all (`WRITE dev <len>`), the same packing. */
export function encodeWriteAll(values: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    const b = Buffer.from(`${v}\0`, 'utf8');
    const head = Buffer.alloc(4);
    head.writeInt32BE(b.length, 0);
    parts.push(head, b);
    if (b.length % 4) parts.push(Buffer.alloc(4 - (b.length % 4)));
  }
  return Buffer.concat(parts);
}
