/**
 * The queue behind a BackendBuffer's read(): blocks (and errors) a producer delivers —
 * the native streaming thread, an iiod connection — wait here for read(), or go straight
 * to a read() already waiting. One class for every backend, so that what read() answers
 * in each case (a block, the error met, EBUSY, ETIMEDOUT, the end) is decided once.
 *
 * Errors keep their place among the blocks: read() gets the blocks that were complete
 * before a failure, then the failure, and only then waits again.
 */
import { IioError } from '../errors';

interface Waiter<T> {
  resolve(block: T): void;
  reject(e: IioError): void;
  timer?: NodeJS.Timeout;
}

export interface BlockQueueOptions<T> {
  /**
   * When set, one read() at most may wait: another is refused with this error (EBUSY,
   * "a refill is already pending"). Without it read()s wait in turn.
   */
  readonly busy?: () => IioError;
  /**
   * Called when read() takes a queued block or error, with how many are left (a
   * producer that stopped because the queue was full may go on) and what it took.
   */
  readonly onTake?: (left: number, taken: T | IioError) => void;
}

export class BlockQueue<T extends { release(): void }> {
  private readonly items: Array<T | IioError> = [];
  private readonly waiters: Array<Waiter<T>> = [];
  private endError?: IioError;

  constructor(private readonly options: BlockQueueOptions<T> = {}) {}

  /** Blocks and errors waiting for read(). */
  get size(): number {
    return this.items.length;
  }

  /** read()s waiting for a block. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Hands a block to the first waiting read(), or queues it. True when a read() took it. */
  push(block: T): boolean {
    return this.deliver(block);
  }

  /** Fails the first waiting read(), or queues the error for the next. True when a read() got it. */
  fail(error: IioError): boolean {
    return this.deliver(error);
  }

  private deliver(item: T | IioError): boolean {
    const w = this.waiters.shift();
    if (!w) {
      this.items.push(item);
      return false;
    }
    if (w.timer) clearTimeout(w.timer);
    if (item instanceof IioError) w.reject(item);
    else w.resolve(item);
    return true;
  }

  /**
   * The next block: a queued one (or the queued error), else — after end() — the end's
   * error, else a wait for the next delivery.
   */
  take(): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) {
      this.options.onTake?.(this.items.length, item);
      return item instanceof IioError ? Promise.reject(item) : Promise.resolve(item);
    }
    if (this.endError) return Promise.reject(this.endError);
    if (this.options.busy && this.waiters.length) return Promise.reject(this.options.busy());
    return new Promise<T>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * Gives the read()s waiting now a deadline: past `ms`, one still waiting is failed with
   * the error `expire()` returns (which may also drop what was about to deliver to it).
   * A read() that already has a deadline keeps it.
   */
  armWaiters(ms: number, expire: () => IioError): void {
    if (!(ms > 0)) return;
    for (const w of this.waiters) {
      if (w.timer) continue;
      w.timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        w.reject(expire());
      }, ms);
    }
  }

  /** Takes the deadlines off the waiting read()s (they then wait without one). */
  disarmWaiters(): void {
    for (const w of this.waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.timer = undefined;
    }
  }

  /** Fails every waiting read() with `error` (cancel, close). */
  rejectWaiters(error: IioError): void {
    for (const w of this.waiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(error);
    }
  }

  /**
   * No more deliveries: waiting read()s fail with `error`, and so do later ones once the
   * queue is empty.
   */
  end(error: IioError): void {
    this.endError = error;
    this.rejectWaiters(error);
  }

  /** Releases the queued blocks and drops the queued errors (close). */
  clear(): void {
    for (const item of this.items.splice(0)) {
      if (!(item instanceof IioError)) item.release();
    }
  }
}
