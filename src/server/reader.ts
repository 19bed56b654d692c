import type { Socket } from 'node:net';
import { IioError } from '../errors';

/**
 * Bytes buffered before the socket is paused (TCP then pushes back on the client): one
 * command line or WRITE value is far less, and a WRITEBUF payload is taken 1 MiB at a time.
 */
export const HIGH_WATER = 1024 * 1024;

type Want =
  | { kind: 'line'; max: number; resolve: (v: LineResult) => void; reject: (e: Error) => void }
  | {
      kind: 'bytes';
      n: number;
      /** The start of a command (a binary frame's header): no deadline until it begins. */
      command: boolean;
      resolve: (v: Buffer) => void;
      reject: (e: Error) => void;
    }
  | { kind: 'some'; max: number; resolve: (v: Buffer) => void; reject: (e: Error) => void };

/** A line, or the news that it was longer than allowed (its bytes were discarded). */
export type LineResult = { readonly line: string } | { readonly tooLong: true };

/**
 * Pulls lines and exact byte counts out of a socket for a sequential command loop,
 * with bounded memory: at most HIGH_WATER bytes wait unread, an over-long line is
 * discarded up to its newline rather than stored.
 *
 * With `stallMs`, a client that starts something must finish it: a command line must
 * be complete within `stallMs` of its first byte (a byte every few seconds does not keep
 * it alive), and a payload being read must progress at least every `stallMs`; otherwise
 * reads fail with ETIMEDOUT and the connection is dropped. Waiting for the next command
 * with nothing received is not a stall (that is an idle client).
 */
export class SocketReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private want: Want | null = null;
  private ended: Error | null = null;
  private discarding = false;
  private paused = false;
  private stallTimer: NodeJS.Timeout | undefined;
  private stallKind: 'line' | 'payload' | undefined;
  private onClosed: (e: Error) => void = () => undefined;
  private readonly closeWaiters = new Set<() => void>();
  /** Resolves when the connection ends (for waits that should stop on hang-up). */
  readonly closed: Promise<Error>;
  /** Date.now() of the last bytes received (the server evicts the longest idle). */
  lastDataAt = Date.now();
  private highWater = HIGH_WATER;
  /** The connection was dropped because a command or payload stalled. */
  stalled = false;

  constructor(
    private readonly socket: Socket,
    private readonly stallMs = 0,
  ) {
    this.closed = new Promise<Error>((resolve) => (this.onClosed = resolve));
    socket.on('data', (d: Buffer) => {
      this.lastDataAt = Date.now();
      this.chunks.push(d);
      this.size += d.length;
      if (this.size > this.highWater && !this.paused) {
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
    return new Promise<void>((resolve) => this.onDrainOrEnd(resolve));
  }

  /** Calls `cb` once on the socket's 'drain' or the connection's end, leaving no listener behind. */
  onDrainOrEnd(cb: () => void): void {
    let leave = (): void => undefined;
    const done = (): void => {
      this.socket.off('drain', done);
      leave();
      cb();
    };
    this.socket.on('drain', done);
    leave = this.whenClosed(done);
  }

  /**
   * Lets up to `bytes` wait unread (at least HIGH_WATER) before the socket is paused:
   * a WRITEBUF reads ahead of a slow device so that a client that left is noticed (its
   * FIN comes after the bytes it sent) while they are still queued, not after they played.
   */
  setReadAhead(bytes: number): void {
    this.highWater = Math.max(HIGH_WATER, bytes);
    if (this.paused && this.size < this.highWater / 2) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** Bytes received and not read yet (part of a command line, pipelined commands). */
  get buffered(): number {
    return this.size;
  }

  /** True while a read waits for a command line and nothing of it has arrived. */
  get awaitingCommand(): boolean {
    return this.awaitsCommandStart(this.want) && this.size === 0;
  }

  /** A command line, or the header of a binary frame: the client's turn to begin. */
  private awaitsCommandStart(w: Want | null): boolean {
    return w?.kind === 'line' || (w?.kind === 'bytes' && w.command);
  }

  private fail(err: Error): void {
    this.clearStall();
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
    if (this.want) return this.busy();
    return new Promise<LineResult>((resolve, reject) =>
      this.begin({ kind: 'line', max, resolve, reject }),
    );
  }

  /** Reads exactly n bytes. */
  readBytes(n: number, command = false): Promise<Buffer> {
    if (this.want) return this.busy();
    return new Promise<Buffer>((resolve, reject) =>
      this.begin({ kind: 'bytes', n, command, resolve, reject }),
    );
  }

  /** Reads between 1 and max bytes, whatever has arrived. */
  readSome(max: number): Promise<Buffer> {
    if (this.want) return this.busy();
    return new Promise<Buffer>((resolve, reject) =>
      this.begin({ kind: 'some', max, resolve, reject }),
    );
  }

  private busy<T>(): Promise<T> {
    return Promise.reject(new IioError('EBUSY', 'a read is already pending'));
  }

  // Each kind's Want is built whole where it is asked for (one read per block in a
  // stream): a spread of a generic request into a new object took V8's slow path for
  // adding properties on every read.
  private begin(w: Want): void {
    this.want = w;
    this.serve();
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
    if (this.paused && this.size < this.highWater / 2) {
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

  private clearStall(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.stallKind = undefined;
  }

  /**
   * After serve() left a read pending: a line that has begun gets one deadline from its
   * first byte; a payload gets a new one each time bytes arrive.
   */
  private armStall(): void {
    const w = this.want;
    if (!(this.stallMs > 0) || !w || this.ended) return;
    const command = this.awaitsCommandStart(w);
    if (command) {
      if (this.size === 0 && !this.discarding) {
        this.clearStall();
        return;
      }
      if (this.stallKind === 'line') return;
    }
    this.clearStall();
    this.stallKind = command ? 'line' : 'payload';
    const what =
      w.kind === 'line' ? 'a command line' : command ? 'a command' : 'the data of a command';
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      this.stalled = true;
      this.fail(
        new IioError('ETIMEDOUT', `${what} did not arrive within ${this.stallMs} ms`, {
          op: 'receive',
        }),
      );
      this.socket.destroy();
    }, this.stallMs);
  }

  private serve(): void {
    const w = this.want;
    if (!w) return;
    this.serveWant(w);
    if (this.want === w) this.armStall();
    else this.clearStall();
  }

  private serveWant(w: Want): void {
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
