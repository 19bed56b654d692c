/**
 * libiio 0.x's ASCII protocol (iiod/lexer.l, parser.y, ops.c; still spoken by 1.0's
 * iiod for 0.x clients and for buffers): the shapes that are not tied to one side —
 * which names can travel, integer and VERSION lines, and the packed values of READ or
 * WRITE without an attribute name. Command lines and how replies are read are the
 * client's (src/backends/iiod/ascii.ts); the server has its lexer (src/server).
 */
import { IioError } from '../errors';
import type { ContextVersion } from '../model/info';
import { decodeValue, encodeValue, printable, ProtocolError } from './wire';

/**
 * flex's {WORD} in iiod's lexer: `(([[:alpha:]]+,)|(iio:))?(-|_|\.|[[:alnum:]])+` in the
 * C locale. A name outside it cannot travel: the lexer would split it and the rest of
 * the line (for a WRITE, the payload) would be read as commands.
 */
export const WORD = /^(([A-Za-z]+,)|(iio:))?[-_.A-Za-z0-9]+$/;

/** Words iiod's lexer takes as keywords where a device attribute name could stand. */
export const DEVICE_ATTR_KEYWORDS: ReadonlySet<string> = new Set([
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

/** The keyword that may follow any token of OPEN (and so can never be a name). */
export const CYCLIC_KEYWORDS: ReadonlySet<string> = new Set(['CYCLIC', 'cyclic']);

/** Checks that a device/channel/attribute name can travel in an ASCII command line. */
export function checkToken(kind: 'device' | 'channel' | 'attribute', token: string): void {
  if (!WORD.test(token)) {
    throw new IioError(
      'EINVAL',
      `${kind} name "${printable(token)}" cannot be sent in iiod's ASCII protocol (its lexer accepts letters, digits, "-", "_" and ".")`,
    );
  }
  if (CYCLIC_KEYWORDS.has(token)) {
    throw new IioError('EINVAL', `${kind} name "${token}" is a keyword of iiod's ASCII protocol`);
  }
}

/** An integer reply: `%li\n` (0, a count, a length, or a negative errno). */
export function formatInteger(n: number): string {
  return `${n}\n`;
}

/** `-22`, `4304`: iiod's integer replies, as int32; anything else is a ProtocolError. */
export function parseInteger(line: string): number {
  const t = line.trim();
  if (!/^[-+]?\d{1,10}$/.test(t)) {
    throw new ProtocolError(`expected a number, got "${printable(line)}"`);
  }
  const v = Number(t);
  if (v > 0x7fffffff || v < -0x80000000) throw new ProtocolError(`number ${t} is out of range`);
  return v;
}

/** VERSION's reply: `%u.%u.%-7.7s\n` (the git tag cut or padded to 7 characters). */
export function formatVersion(v: ContextVersion): string {
  return `${v.major}.${v.minor}.${v.git.slice(0, 7).padEnd(7)}\n`;
}

/** Parses VERSION's reply line (without its newline); the tag's padding is trimmed. */
export function parseVersion(line: string): ContextVersion {
  const m = /^(\d{1,9})\.(\d{1,9})\.(.*)$/.exec(line);
  if (!m) throw new ProtocolError(`bad VERSION reply "${printable(line)}"`);
  return { major: Number(m[1]), minor: Number(m[2]), git: m[3].slice(0, 7).trimEnd() };
}

/** The line that switches a connection to libiio 1.0's binary protocol (answered `0\n`). */
export const BINARY_LINE = 'BINARY\r\n';

/**
 * READ without an attribute name answers every attribute of a kind at once, packed:
 * per attribute a big-endian int32 length (a negative errno when that one failed) and
 * the value with its NUL, padded to 4 bytes (libiio's read_each_attr). WRITE without a
 * name takes the same packing (a length ≤ 0 leaves that attribute alone).
 */
export function encodePackedValues(values: ReadonlyArray<string | number>): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    const head = Buffer.alloc(4);
    if (typeof v === 'number') {
      head.writeInt32BE(v, 0);
      parts.push(head);
      continue;
    }
    const b = encodeValue(v);
    head.writeInt32BE(b.length, 0);
    parts.push(head, b);
    if (b.length % 4) parts.push(Buffer.alloc(4 - (b.length % 4)));
  }
  return Buffer.concat(parts);
}

/**
 * Unpacks `count` packed values: each a string (up to its NUL) or, for a length ≤ 0,
 * that number (a negative errno in a READ reply; "leave alone" in a WRITE). Throws a
 * ProtocolError naming `from` when the data are shorter than their lengths say.
 */
export function decodePackedValues(
  data: Buffer,
  count: number,
  from?: string,
): { values: Array<string | number>; consumed: number } {
  const values: Array<string | number> = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > data.length) throw new ProtocolError('packed values are truncated', from);
    const len = data.readInt32BE(off);
    off += 4;
    if (len <= 0) {
      values.push(len);
      continue;
    }
    if (off + len > data.length) throw new ProtocolError('packed values are truncated', from);
    values.push(decodeValue(data.subarray(off, off + len)));
    off += len + ((4 - (len % 4)) % 4);
  }
  return { values, consumed: Math.min(off, data.length) };
}
