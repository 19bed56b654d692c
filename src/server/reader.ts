import type { Socket } from 'node:net';
import { IioError } from '../errors';

/** Bytes buffered before the socket is paused (TCP then pushes back on the client). */
const HIGH_WATER = 4 * 1024 * 1024;

type Want =
  | { kind: 'line'; max: number; resolve: (v: LineResult) => void; reject: (e: Error) => void }
  | { kind: 'bytes'; n: number; resolve: (v: Buffer) => void; reject: (e: Error) => void }
  | { kind: 'some'; max: number; resolve: (v: Buffer) => void; reject: (e: Error) => void };

/** A line, or the news that it was longer than allowed (its bytes were discarded). */
export type LineResult = { readonly line: string } | { readonly tooLong: true };

/**
 * Pulls lines and exact byte counts out of a socket for a sequential command loop,
 * with bounded memory: at most HIGH_WATER bytes wait unread, an over-long line is
 * discarded up to its newline rather than stored.
 */
export class SocketReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private want: Want | null = null;
  private ended: Error | null = null;
  private discarding = false;
  private paused = false;
  private onClosed: (e: Error) => void = () => undefined;
  private readonly closeWaiters = new Set<() => void>();
  /** Resolves when the connection ends (for waits that should stop on hang-up). */
  readonly closed: Promise<Error>;

  constructor(private readonly socket: Socket) {
    this.closed = new Promise<Error>((resolve) => (this.onClosed = resolve));
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.size += d.length;
      if (this.size > HIGH_WATER && !this.paused) {
        this.paused = true;
        socket.pause();
      }
      this.serve();
    });
    const end = (): void => this.fail(new IioError('EPIPE', 'the client closed the connection'));
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', (err) => this.fail(IioError.wrap(err, { op: 'receive' })));
  }

  /** True once the peer has gone (reads reject with EPIPE). */
  get isClosed(): boolean {
    return this.ended !== null;
  }

  /**
   * Calls `cb` once when the connection ends (at once if it has); the returned function
   * unregisters it. For waits that must stop on hang-up without leaving a reaction on
   * `closed` behind each time.
   */
  whenClosed(cb: () => void): () => void {
    if (this.ended) {
      queueMicrotask(cb);
      return () => undefined;
    }
    this.closeWaiters.add(cb);
    return () => this.closeWaiters.delete(cb);
  }

  /** Resolves on the socket's 'drain' or the connection's end, leaving no listener behind. */
  drainOrEnd(): Promise<void> {
    return new Promise<void>((resolve) => {
      let leave = (): void => undefined;
      const done = (): void => {
        this.socket.off('drain', done);
        leave();
        resolve();
      };
      this.socket.on('drain', done);
      leave = this.whenClosed(done);
    });
  }

  private fail(err: Error): void {
    if (this.ended) return;
    this.ended = err;
    this.onClosed(err);
    const waiters = [...this.closeWaiters];
    this.closeWaiters.clear();
    for (const w of waiters) w();
    const w = this.want;
    this.want = null;
    w?.reject(err);
  }

  /** Reads up to and including `\n` (latin1, one char per byte). */
  readLine(max: number): Promise<LineResult> {
    return this.wait({ kind: 'line', max } as const);
  }

  /** Reads exactly n bytes. */
  readBytes(n: number): Promise<Buffer> {
    return this.wait({ kind: 'bytes', n } as const);
  }

  /** Reads between 1 and max bytes, whatever has arrived. */
  readSome(max: number): Promise<Buffer> {
    return this.wait({ kind: 'some', max } as const);
  }

  private wait<T>(w: { kind: Want['kind']; max?: number; n?: number }): Promise<T> {
    if (this.want) return Promise.reject(new IioError('EBUSY', 'a read is already pending'));
    return new Promise<T>((resolve, reject) => {
      this.want = { ...w, resolve, reject } as unknown as Want;
      this.serve();
    });
  }

  private take(n: number): Buffer {
    let out: Buffer;
    if (this.chunks[0].length === n) out = this.chunks.shift()!;
    else if (this.chunks[0].length > n) {
      out = this.chunks[0].subarray(0, n);
      this.chunks[0] = this.chunks[0].subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.size -= n;
    if (this.paused && this.size < HIGH_WATER / 2) {
      this.paused = false;
      this.socket.resume();
    }
    return out;
  }

  /** Index of the first `\n` among the buffered bytes, or -1. */
  private newline(limit: number): number {
    let base = 0;
    for (const c of this.chunks) {
      const i = c.indexOf(10);
      if (i >= 0 && base + i < limit) return base + i;
      base += c.length;
      if (base >= limit) break;
    }
    return -1;
  }

  private serve(): void {
    const w = this.want;
    if (!w) return;
    if (w.kind === 'line') {
      for (;;) {
        const nl = this.newline(this.discarding ? Infinity : w.max);
        if (this.discarding) {
          if (nl < 0) {
            if (this.size) this.take(this.size);
            break;
          }
          this.take(nl + 1);
          this.discarding = false;
          this.want = null;
          w.resolve({ tooLong: true });
          return;
        }
        if (nl >= 0) {
          this.want = null;
          w.resolve({ line: this.take(nl + 1).toString('latin1') });
          return;
        }
        if (this.size >= w.max) {
          // Too long to be a command: drop it up to its newline, answer once.
          this.discarding = true;
          continue;
        }
        break;
      }
    } else if (w.kind === 'bytes') {
      if (this.size >= w.n) {
        this.want = null;
        w.resolve(w.n === 0 ? Buffer.alloc(0) : this.take(w.n));
        return;
      }
    } else if (this.size > 0) {
      this.want = null;
      w.resolve(this.take(Math.min(this.size, w.max)));
      return;
    }
    if (this.ended) {
      this.want = null;
      w.reject(this.ended);
    }
  }
}
