/**
 * What both ends of iiod's protocols share, whichever of the two (0.x ASCII, 1.0 binary)
 * a connection speaks: how errors travel, how values are framed, the limits we accept.
 * docs/protocol.md describes the wire; this folder is the one place its rules are coded,
 * for our client (src/backends/iiod) and our server (src/server).
 */
import { IioError } from '../errors';

/**
 * Bytes that do not follow the protocol (a reply that does not parse, a frame of the
 * wrong length). Always EIO; the connection that carried them is then in doubt.
 */
export class ProtocolError extends IioError {
  /** `from` names the side that sent the bytes, for the message. */
  constructor(detail: string, from = 'reply from iiod') {
    super('EIO', `malformed ${from}: ${detail}`);
  }
}

// Errors travel as negative errno values, never as text: an ASCII integer reply (`-22\n`)
// or a binary response's `code`; zero or more is success (a count, a length, an index,
// depending on the command). Both sides map them with IioError.fromErrno / errnoOf.

/** iiod's TCP port (libiio's IIOD_PORT), for both protocols. */
export const IIOD_PORT = 30431;

/** Largest attribute value accepted (iiod 0.24 sends at most 64 KiB; 1.0 the same). */
export const MAX_ATTR_VALUE = 16 * 1024 * 1024;
/** Largest context XML accepted. */
export const MAX_XML = 256 * 1024 * 1024;
/** Largest ASCII reply line (an integer, a mask, VERSION). */
export const MAX_LINE = 1024;
/** Largest trigger name in a GETTRIG reply. */
export const MAX_TRIGGER_NAME = 4096;

/**
 * A value as libiio hands it out: the C string up to the first NUL. Values travel with
 * their NUL (libiio writes strlen + 1; iiod's read length counts the NUL that replaced
 * sysfs's newline).
 */
export function decodeValue(data: Buffer): string {
  const nul = data.indexOf(0);
  return (nul >= 0 ? data.subarray(0, nul) : data).toString('utf8');
}

/** A value as libiio writes it: the C string and its NUL. */
export function encodeValue(value: string): Buffer {
  return Buffer.from(`${value}\0`, 'utf8');
}

/** A short, printable rendering of bytes from the wire for error messages. */
export function printable(s: string, max = 60): string {
  const cut = s.length > max ? `${s.slice(0, max)}...` : s;
  return cut.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** C's strcmp order (bytes), which libiio sorts devices and attributes with (sort.c). */
export function strcmp(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
