import { IioError } from '../../errors';
import { ProtocolError } from '../../iiod-protocol/wire';
import type { ReadWant, TransportSink } from './transport';

type Pending =
  | {
      kind: 'line';
      max: number;
      resolve: (line: string) => void;
      reject: (e: Error) => void;
    }
  | {
      kind: 'into';
      target: Buffer;
      offset: number;
      remaining: number;
      resolve: () => void;
      reject: (e: Error) => void;
    };

/**
 * Turns a transport's chunks into the reads a protocol needs: lines, exact byte counts
 * (straight into the caller's buffer when possible: payloads are copied once), skips.
 * One read is pending at a time; the protocol layer serialises its requests.
 */
export class ByteReader implements TransportSink {
  private chunks: Buffer[] = [];
  private head = 0;
  private available = 0;
  private pending?: Pending;
  private endError?: Error;
  private wantListener?: () => void;
  /** When set, `lastDataAt` follows the arrival of bytes (idle deadlines). */
  trackActivity = false;
  /** Date.now() of the last bytes received (with trackActivity). */
  lastDataAt = 0;

  constructor(
    /** Builds the error of a stream that ended (EOF: no cause). */
    private readonly onEnd: (cause?: Error) => Error,
  ) {}

  /** Bytes received and not yet consumed. */
  get buffered(): number {
    return this.available;
  }

  get ended(): boolean {
    return this.endError !== undefined;
  }

  data(chunk: Buffer, transient: boolean): void {
    if (this.endError || chunk.length === 0) return;
    if (this.trackActivity) this.lastDataAt = Date.now();
    let rest = chunk;
    // Serve the pending read from the chunk in place where possible: a payload is then
    // copied once, from the socket's memory to the caller's buffer.
    while (rest.length) {
      const p = this.pending;
      if (p && p.kind === 'into') {
        if (this.available > 0) {
          this.serve();
          continue;
        }
        const n = Math.min(p.remaining, rest.length);
        rest.copy(p.target, p.offset, 0, n);
        p.offset += n;
        p.remaining -= n;
        rest = rest.subarray(n);
        if (p.remaining === 0) {
          this.pending = undefined;
          p.resolve();
        }
        continue;
      }
      if (p && p.kind === 'line' && this.available === 0) {
        const nl = rest.indexOf(10);
        if (nl >= 0 && nl <= p.max) {
          let line = rest.toString('latin1', 0, nl);
          if (line.endsWith('\r')) line = line.slice(0, -1);
          rest = rest.subarray(nl + 1);
          this.pending = undefined;
          p.resolve(line);
          continue;
        }
      }
      break;
    }
    if (!rest.length) return;
    // Nobody can take these bytes now (the next read is issued later): keep a copy.
    this.chunks.push(transient ? Buffer.from(rest) : rest);
    this.available += rest.length;
    this.serve();
  }

  /** Large payload reads take the socket's bytes directly (see TransportSink.readTarget). */
  readTarget(): Buffer | undefined {
    const p = this.pending;
    if (!p || p.kind !== 'into' || this.available > 0 || this.endError) return undefined;
    return p.target.subarray(p.offset, p.offset + p.remaining);
  }

  /**
   * A read with no payload buffer to go to (readTarget() is undefined) takes 256 bytes at
   * most: between two payloads the next one's read is issued only after the reply's header
   * lines resolve, and whatever the socket hands over before that must be copied out of the
   * transport's shared buffer and copied again into the block. With full-size reads that was
   * most of each READBUF payload (docs/network.md); with 256 it is the header's neighbourhood.
   */
  readLimit(): number | undefined {
    return 256;
  }

  want(): ReadWant | undefined {
    const p = this.pending;
    if (!p || this.endError) return undefined;
    if (p.kind === 'line') return { atLeast: 0 };
    if (this.available === 0) {
      return { target: p.target.subarray(p.offset, p.offset + p.remaining), atLeast: p.remaining };
    }
    return { atLeast: Math.max(1, p.remaining - this.available) };
  }

  setWantListener(listener: () => void): void {
    this.wantListener = listener;
  }

  filled(n: number): void {
    if (this.trackActivity && n > 0) this.lastDataAt = Date.now();
    const p = this.pending;
    if (!p || p.kind !== 'into') return;
    p.offset += n;
    p.remaining -= n;
    if (p.remaining === 0) {
      this.pending = undefined;
      p.resolve();
    }
  }

  end(error?: Error): void {
    if (this.endError) return;
    this.endError = this.onEnd(error);
    this.serve();
  }

  /** Makes every pending and later read fail with `error` (the connection is being dropped). */
  fail(error: Error): void {
    if (!this.endError) this.endError = error;
    this.chunks = [];
    this.available = 0;
    this.head = 0;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(this.endError);
  }

  /** Reads one line (up to `\n`, which is dropped with a `\r` before it). */
  readLine(max = 1024): Promise<string> {
    return new Promise((resolve, reject) => {
      this.start({ kind: 'line', max, resolve, reject });
    });
  }

  /** Reads exactly `n` bytes into `target` at `offset`. */
  readInto(target: Buffer, offset: number, n: number): Promise<void> {
    if (n === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.start({ kind: 'into', target, offset, remaining: n, resolve, reject });
    });
  }

  /** Reads exactly `n` bytes. */
  async readExact(n: number): Promise<Buffer> {
    const b = Buffer.allocUnsafe(n);
    await this.readInto(b, 0, n);
    return b;
  }

  /** Discards exactly `n` bytes. */
  async skip(n: number): Promise<void> {
    let left = n;
    const scratch = Buffer.allocUnsafe(Math.min(n, 65536));
    while (left > 0) {
      const k = Math.min(left, scratch.length);
      await this.readInto(scratch, 0, k);
      left -= k;
    }
  }

  private start(p: Pending): void {
    if (this.pending) {
      p.reject(new IioError('EBUSY', 'internal: two reads pending on one iiod connection'));
      return;
    }
    this.pending = p;
    this.serve();
    if (this.pending && this.wantListener) this.wantListener();
  }

  private serve(): void {
    const p = this.pending;
    if (!p) return;
    if (p.kind === 'into') {
      while (p.remaining > 0 && this.available > 0) {
        const c = this.chunks[0];
        const n = Math.min(p.remaining, c.length - this.head);
        c.copy(p.target, p.offset, this.head, this.head + n);
        p.offset += n;
        p.remaining -= n;
        this.consume(n);
      }
      if (p.remaining === 0) {
        this.pending = undefined;
        p.resolve();
        return;
      }
    } else {
      const line = this.takeLine(p.max);
      if (line instanceof Error) {
        this.pending = undefined;
        p.reject(line);
        return;
      }
      if (line !== undefined) {
        this.pending = undefined;
        p.resolve(line);
        return;
      }
    }
    if (this.endError) {
      this.pending = undefined;
      p.reject(this.endError);
    }
  }

  private consume(n: number): void {
    this.available -= n;
    this.head += n;
    while (this.chunks.length && this.head >= this.chunks[0].length) {
      this.head -= this.chunks[0].length;
      this.chunks.shift();
    }
  }

  /** The next line if complete; an error if it is longer than `max`; else undefined. */
  private takeLine(max: number): string | Error | undefined {
    let len = 0;
    for (let ci = 0; ci < this.chunks.length; ci++) {
      const c = this.chunks[ci];
      const from = ci === 0 ? this.head : 0;
      const nl = c.indexOf(10, from);
      if (nl >= 0) {
        len += nl - from;
        if (len > max) return new ProtocolError(`a reply line is longer than ${max} bytes`);
        const bytes = this.copyOut(len);
        this.consume(1);
        let s = bytes.toString('latin1');
        if (s.endsWith('\r')) s = s.slice(0, -1);
        return s;
      }
      len += c.length - from;
      if (len > max) return new ProtocolError(`a reply line is longer than ${max} bytes`);
    }
    return undefined;
  }

  private copyOut(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const k = Math.min(n - off, c.length - this.head);
      c.copy(out, off, this.head, this.head + k);
      off += k;
      this.consume(k);
    }
    return out;
  }
}
