/**
 * The TypeScript half of a native stream: a queue between the streaming thread's
 * deliveries and `read()`/`write()` promises. No IIO policy here either: the local
 * backend decides what the fd is, how big a block is and when the device is enabled.
 */
import type { RawBlock } from '../model/backend';
import { IioError, codeOf, strerror, type IioErrorContext } from '../errors';
import {
  nativeError,
  type NativeAddon,
  type NativeDelivery,
  type NativeStreamHandle,
  type NativeStreamOptions,
  type NativeStreamStats,
} from './index';

/** A block handed out by a native input stream. */
export interface NativeBlock extends RawBlock {
  /** Pool block number, or -1 when the pool was dry and the block is fresh memory. */
  readonly block: number;
}

interface Waiter {
  resolve(b: NativeBlock): void;
  reject(e: IioError): void;
}

type Item = { block: NativeBlock; error?: undefined } | { error: IioError; block?: undefined };

export class NativeStream {
  private readonly handle: NativeStreamHandle;
  private readonly queue: Item[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly pushes = new Map<number, { resolve(): void; reject(e: IioError): void }>();
  private nextPush = 1;
  /** Queue places given back by read() and not yet told to the thread. */
  private owed = 0;
  private readonly creditBatch: number;
  private lastError?: IioError;
  private ended?: IioError;
  private closed = false;

  constructor(
    addon: NativeAddon,
    readonly options: NativeStreamOptions,
    private readonly ctx: IioErrorContext,
  ) {
    try {
      this.handle = new addon.Stream(options);
    } catch (err) {
      throw nativeError(err, { ...ctx, op: 'open stream' });
    }
    this.creditBatch = Math.max(1, Math.floor(options.blocks / 4));
  }

  /** Before start(): try DMABUF blocks (the buffer must not be enabled yet). */
  tryDmabuf(heapPath: string): { ok: boolean; code: string; op: string } {
    const r = this.handle.tryDmabuf(heapPath);
    return { ok: r.ok, code: r.ok ? '' : codeOf(r.errno), op: r.op };
  }

  /** Starts the streaming thread. */
  start(): void {
    try {
      this.handle.start((...d: NativeDelivery) => this.onDelivery(d));
    } catch (err) {
      throw nativeError(err, { ...this.ctx, op: 'start stream' });
    }
  }

  private error(errno: number, op: string): IioError {
    const detail =
      errno === 110 ? `no data within ${this.options.timeoutMs} ms` : `${op}: ${strerror(errno)}`;
    return new IioError(codeOf(errno), detail, this.ctx);
  }

  private makeBlock(data: Buffer, block: number, gen: number, lost: number): NativeBlock {
    let released = false;
    const handle = this.handle;
    return {
      data,
      block,
      lost,
      release(): void {
        if (released) return;
        released = true;
        if (block >= 0) handle.release(block, gen);
      },
    };
  }

  /** Runs on the JS thread for every delivery; true = taken at once (credit returns). */
  private onDelivery(d: NativeDelivery): boolean {
    switch (d[0]) {
      case 0: {
        const block = this.makeBlock(d[1], d[2], d[3], d[4] ?? 0);
        if (this.closed) {
          block.release();
          return false;
        }
        const w = this.waiters.shift();
        if (w) {
          w.resolve(block);
          return true;
        }
        this.queue.push({ block });
        return false;
      }
      case 1: {
        const err = this.error(d[1], d[2]);
        if (d[3] !== undefined) {
          const p = this.pushes.get(d[3]);
          this.pushes.delete(d[3]);
          p?.reject(err);
          return false;
        }
        if (err.code !== 'ETIMEDOUT') this.lastError = err;
        if (this.closed) return false;
        const w = this.waiters.shift();
        if (w) {
          w.reject(err);
          return true;
        }
        this.queue.push({ error: err });
        return false;
      }
      case 2: {
        const p = this.pushes.get(d[1]);
        this.pushes.delete(d[1]);
        p?.resolve();
        return false;
      }
      case 3: {
        this.ended =
          this.lastError ?? new IioError('ECANCELED', 'the stream was cancelled', this.ctx);
        for (const w of this.waiters.splice(0)) w.reject(this.ended);
        return false;
      }
    }
    return false;
  }

  /** Input: the next block (or the error the thread met). */
  read(): Promise<NativeBlock> {
    const item = this.queue.shift();
    if (item) {
      // Places are given back a few at a time (each one may wake the thread), and all of
      // them once the queue is empty, so the thread is never kept waiting on us.
      this.owed++;
      if (!this.closed && (this.owed >= this.creditBatch || !this.queue.length)) {
        this.handle.credit(this.owed);
        this.owed = 0;
      }
      return item.error ? Promise.reject(item.error) : Promise.resolve(item.block);
    }
    if (this.ended) return Promise.reject(this.ended);
    if (this.closed) return Promise.reject(this.cancelled());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Output: queues whole units; resolves once they are all written to the kernel. */
  write(data: Uint8Array): Promise<void> {
    if (this.closed || this.ended) return Promise.reject(this.ended ?? this.cancelled());
    // A Buffer view, not a copy: the thread writes straight from the caller's memory.
    const buf = Buffer.isBuffer(data)
      ? data
      : Buffer.from(data.buffer, data.byteOffset, data.length);
    const id = this.nextPush++;
    return new Promise<void>((resolve, reject) => {
      this.pushes.set(id, { resolve, reject });
      try {
        this.handle.write(buf, id);
      } catch (err) {
        this.pushes.delete(id);
        reject(nativeError(err, { ...this.ctx, op: 'push' }));
      }
    });
  }

  /**
   * Output over DMABUF: resolves once everything pushed so far has been played by the
   * device (every DMABUF's fence signalled); rejects with EIO when some transfer was
   * aborted, ETIMEDOUT when the device played nothing for the timeout.
   */
  drain(): Promise<void> {
    if (this.closed || this.ended) return Promise.reject(this.ended ?? this.cancelled());
    const id = this.nextPush++;
    return new Promise<void>((resolve, reject) => {
      this.pushes.set(id, { resolve, reject });
      try {
        this.handle.drain(id);
      } catch (err) {
        this.pushes.delete(id);
        reject(nativeError(err, { ...this.ctx, op: 'drain' }));
      }
    });
  }

  private cancelled(): IioError {
    return new IioError('ECANCELED', 'the stream was cancelled', this.ctx);
  }

  /** Wakes the thread through its eventfd and stops it; pending calls reject with ECANCELED. */
  cancel(): void {
    this.handle.cancel();
  }

  /**
   * DMABUF: DETACHes the DMABUFs and closes their fds. Call it after close() and after
   * the buffer was disabled (its aborted transfers complete then). Blocks JS still holds
   * stay readable: their memory is unmapped only when the last Buffer over it is collected.
   * Returns the errno code of a DETACH that failed, '' otherwise. Idempotent.
   */
  detach(): string {
    const errno = this.handle.detach();
    return errno ? codeOf(errno) : '';
  }

  /** Stops and joins the thread. Blocks still queued go back to the pool. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const unwritten = this.handle.close();
    const err = this.cancelled();
    for (const id of unwritten) {
      const p = this.pushes.get(id);
      this.pushes.delete(id);
      p?.reject(err);
    }
    for (const w of this.waiters.splice(0)) w.reject(this.ended ?? err);
    for (const item of this.queue.splice(0)) item.block?.release();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The thread's counters, plus `waiting`: blocks handed to JS and not yet read. */
  stats(): NativeStreamStats & { readonly waiting: number } {
    let waiting = 0;
    for (const item of this.queue) if (item.block) waiting++;
    return { ...this.handle.stats(), waiting };
  }

  /** @internal test hooks: where the pool's blocks are, and a way to write into one. */
  blockAddresses(): bigint[] {
    return this.handle.blockAddresses();
  }
  /** @internal */
  poke(block: number, offset: number, value: number): void {
    this.handle.poke(block, offset, value);
  }
}
