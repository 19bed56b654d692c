/**
 * The byte side of a binary-protocol connection (libiio 1.0, after `BINARY`): reading a
 * command's payload, skipping what we refuse, and writing response frames — one frame
 * at a time, header and payload together, so responses finished out of order (blocks,
 * events) never interleave. What the frames mean is binary-session.ts and
 * binary-buffers.ts.
 */
import type { Socket } from 'node:net';
import { IioError } from '../errors';
import { encodeHeader, responseHeader } from '../iiod-protocol/binary';
import type { SocketReader } from './reader';
import type { ConnectionEnd } from './streams';

/** Bytes we skip for a frame we refuse (a stray response, a payload past a limit). */
export const MAX_SKIP = 16 * 1024 * 1024;

/** A piece of a response's payload and what to do once the socket has flushed it. */
export interface Chunk {
  readonly data: Buffer;
  readonly done?: () => void;
}

export class FrameIo {
  constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
  ) {}

  /** The connection's end, for waits (see ConnectionEnd). */
  get end(): ConnectionEnd {
    return this.reader;
  }

  get isClosed(): boolean {
    return this.reader.isClosed || this.socket.destroyed;
  }

  readBytes(n: number): Promise<Buffer> {
    return this.reader.readBytes(n);
  }

  /** The next frame's header: the client may take its time before it starts one. */
  readCommand(n: number): Promise<Buffer> {
    return this.reader.readBytes(n, true);
  }

  /** A little-endian u64 (a length, a size), as a number when it is a safe integer, else Infinity. */
  async readU64(): Promise<number> {
    // two 32-bit halves, no BigInt (one per TRANSFER_BLOCK): above 2^53 - 1 when the
    // high half exceeds 21 bits
    const b = await this.reader.readBytes(8);
    const hi = b.readUInt32LE(4);
    return hi > 0x1fffff ? Infinity : hi * 0x100000000 + b.readUInt32LE(0);
  }

  /** Reads and drops `n` bytes (at most MAX_SKIP: the caller checks). */
  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) left -= (await this.reader.readSome(Math.min(left, 1024 * 1024))).length;
  }

  /**
   * Writes one response frame: `code`, then the payload (data a positive code announces).
   * Resolves once the socket takes more (at once, unless its buffer is full).
   */
  respond(clientId: number, code: number, payload?: Buffer | readonly Chunk[]): Promise<void> {
    if (this.socket.destroyed) {
      if (Array.isArray(payload)) for (const c of payload as readonly Chunk[]) c.done?.();
      return Promise.resolve();
    }
    const head = encodeHeader(responseHeader(clientId, code));
    let ok: boolean;
    if (!payload) ok = this.socket.write(head);
    else if (Buffer.isBuffer(payload)) {
      ok = this.socket.write(payload.length ? Buffer.concat([head, payload]) : head);
    } else {
      this.socket.cork();
      this.socket.write(head);
      ok = true;
      // A block goes back to its pool only once the socket has flushed it.
      for (const c of payload as readonly Chunk[]) ok = this.socket.write(c.data, () => c.done?.());
      this.socket.uncork();
    }
    // write() says false for any block larger than the socket's high-water mark, even
    // when the kernel took all of it at once: wait only for what is still queued.
    return ok || this.socket.writableLength === 0 ? Promise.resolve() : this.drained();
  }

  /** Bytes outside any frame (the ASCII `0\r\n` a repeated BINARY gets). */
  respondRaw(data: Buffer): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return this.socket.write(data) ? Promise.resolve() : this.drained();
  }

  private async drained(): Promise<void> {
    await this.reader.drainOrEnd();
    if (this.socket.destroyed) throw new IioError('EPIPE', 'the connection is closed');
  }
}
