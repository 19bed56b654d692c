/**
 * The TypeScript half of a native stream: a queue between the streaming thread's
 * deliveries and `read()`/`write()` promises. No IIO policy here either: the local
 * backend decides what the fd is, how big a block is and when the device is enabled.
 */
import type { RawBlock } from '../model/backend';
import { BlockQueue } from '../model/block-queue';
import { IioError, codeOf, strerror, type IioErrorContext } from '../errors';
import {
  nativeError,
  resolveStreamOptions,
  type NativeAddon,
  type NativeDelivery,
  type NativeStreamHandle,
  type NativeStreamOptions,
  type NativeStreamStats,
  type ResolvedStreamOptions,
} from './index';

/** A block handed out by a native input stream. */
export interface NativeBlock extends RawBlock {
  /** Pool block number, or -1 when the pool was dry and the block is fresh memory. */
  readonly block: number;
}

export class NativeStream {
  private readonly handle: NativeStreamHandle;
  /** Deliveries waiting for read(); each one taken gives the thread a place back. */
  private readonly queue = new BlockQueue<NativeBlock>({
    onTake: (left, item) => this.taken(left, item),
  });
  /**
   * For stats(): blocks in the queue and how many of them are pooled ones, and every
   * pooled block that reached JS (blocks the thread lent may still be on their way).
   */
  private queuedBlocks = 0;
  private queuedPooled = 0;
  private arrivedPooled = 0;
  private readonly pushes = new Map<
    number,
    { resolve(): void; reject(e: IioError): void; bytes: number }
  >();
  private nextPush = 1;
  /** Queue places given back by read() and not yet told to the thread. */
  private owed = 0;
  private readonly creditBatch: number;
  private lastError?: IioError;
  private ended?: IioError;
  private closed = false;

  /** The options the thread runs with, defaults filled in. */
  readonly options: ResolvedStreamOptions;

  constructor(
    addon: NativeAddon,
    options: NativeStreamOptions,
    private readonly ctx: IioErrorContext,
  ) {
    this.options = resolveStreamOptions(options);
    try {
      this.handle = new addon.Stream(this.options);
    } catch (err) {
      throw nativeError(err, { ...ctx, op: 'open stream' });
    }
    this.creditBatch = Math.max(1, Math.floor(this.options.blocks / 4));
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

  private error(errno: number, op: string, push?: { bytes: number; done: number }): IioError {
    let detail =
      codeOf(errno) !== 'ETIMEDOUT'
        ? `${op}: ${strerror(errno)}`
        : push
          ? `the device took no more within ${this.options.timeoutMs} ms`
          : `no data within ${this.options.timeoutMs} ms`;
    // What the kernel already took plays anyway: pushing it again would play it twice.
    if (push?.done)
      detail += `; ${push.done} of ${push.bytes} bytes were queued before that (the device plays them)`;
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
        if (block.block >= 0) this.arrivedPooled++;
        if (this.closed) {
          block.release();
          return false;
        }
        if (this.queue.push(block)) return true;
        this.queuedBlocks++;
        if (block.block >= 0) this.queuedPooled++;
        return false;
      }
      case 1: {
        if (d[3] !== undefined) {
          const p = this.pushes.get(d[3]);
          this.pushes.delete(d[3]);
          p?.reject(this.error(d[1], d[2], { bytes: p.bytes, done: d[4] }));
          return false;
        }
        const err = this.error(d[1], d[2]);
        if (err.code !== 'ETIMEDOUT') this.lastError = err;
        if (this.closed) return false;
        return this.queue.fail(err);
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
        this.queue.end(this.ended);
        return false;
      }
    }
    return false;
  }

  /** Input: the next block (or the error the thread met). */
  read(): Promise<NativeBlock> {
    return this.queue.take();
  }

  private taken(left: number, item: NativeBlock | IioError): void {
    if (!(item instanceof IioError)) {
      this.queuedBlocks--;
      if (item.block >= 0) this.queuedPooled--;
    }
    // Places are given back a few at a time (each one may wake the thread), and all of
    // them once the queue is empty, so the thread is never kept waiting on us.
    this.owed++;
    if (!this.closed && (this.owed >= this.creditBatch || !left)) {
      this.handle.credit(this.owed);
      this.owed = 0;
    }
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
      this.pushes.set(id, { resolve, reject, bytes: buf.length });
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
      this.pushes.set(id, { resolve, reject, bytes: 0 });
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
    // later reads fail with the thread's end, or ECANCELED
    this.queue.end(this.ended ?? err);
    this.queue.clear();
    this.queuedBlocks = this.queuedPooled = 0;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The thread's counters, plus `waiting`: blocks handed to JS and not yet read, and
   * `held`: pooled blocks read and not yet given back (by release() or the collector).
   * Both are counted on this thread (releases and finalizers run here too), so they are
   * exact whatever the streaming thread is doing; `lent` also counts blocks on their way.
   */
  stats(): NativeStreamStats & {
    readonly waiting: number;
    readonly held: number;
    readonly owed: number;
  } {
    const s = this.handle.stats();
    const back = s.released + s.finalized;
    return {
      ...s,
      waiting: this.queuedBlocks,
      // Places JS took and has not yet given back to the thread (they go back a batch at a
      // time, or all when the queue empties): the thread's queue is `blocks - owed` meanwhile.
      owed: this.owed,
      held: Math.max(0, this.arrivedPooled - this.queuedPooled - back),
    };
  }
}
