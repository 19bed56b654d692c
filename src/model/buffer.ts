import type { BackendBuffer, RawBlock, TransferMode, TransferStats } from './backend';
import { IioError } from '../errors';
import { demuxChannel, type DemuxOptions } from '../format/demux';
import { computeScanLayout, type ScanLayout, type ScanSlot } from '../format/layout';
import type { Channel } from './channel';
import type { ChannelMask } from './channel-mask';
import type { Device } from './device';

/**
 * The largest block a buffer may have (`samples` × bytes per scan), whatever the backend:
 * past it createBuffer() is EINVAL. A block is one allocation (a Node Buffer, a kernel
 * block, a DMABUF); 256 MiB is beyond any real block size and below what 32-bit boards
 * can allocate at all.
 */
export const MAX_BLOCK_BYTES = 256 * 1024 * 1024;
/** The most blocks (`blocks`, libiio's kernel buffers count) a buffer may have. */
export const MAX_BUFFER_BLOCKS = 1024;
/** The most bytes a buffer's blocks may hold in all (`blocks` × block bytes). */
export const MAX_BUFFER_BYTES = 1024 * 1024 * 1024;

export interface BufferOptions {
  /** Channels to capture or play (Channel objects or ids); default: those enabled. */
  readonly channels?: ReadonlyArray<Channel | string>;
  /** Output only: repeat the first block until the buffer is closed. */
  readonly cyclic?: boolean;
  /** Resolve channel ids among outputs (true) or inputs (false); default: inputs first. */
  readonly isOutput?: boolean;
  /** Set this trigger (Device, id or name) before opening. */
  readonly trigger?: Device | string;
  /** Blocks in the pool / kernel buffers count (backend default if absent). */
  readonly blocks?: number;
  /**
   * `local:` only: `dmabuf` forces the kernel's zero-copy DMABUF interface (an error where
   * the buffer does not take DMABUFs), `fileio` forces read()/write(), `auto` (default)
   * uses DMABUF where the kernel's buffer takes it. Other backends ignore it.
   */
  readonly transfer?: TransferMode;
}

/** What `IioBuffer.stats()` reports. */
export interface BufferStats {
  /** Scans known to be lost since the buffer opened (= `IioBuffer.lost`). */
  readonly lost: number;
  /** Blocks refill() or stream() returned. */
  readonly blocks: number;
  /** The backend's own counters (`local:`): where the blocks are, DMABUF or read(). */
  readonly transfer?: TransferStats;
}

/** A block of scans from `stream()`: release it when done (or let the GC do it, late). */
export interface Block {
  /** Whole scans in the device's layout. Do not keep it after release(). */
  readonly data: Buffer;
  /** Scans in this block. */
  readonly samples: number;
  /** Block number since the buffer opened (0, 1, 2, ...). */
  readonly seq: number;
  /** Scans lost just before this block (overrun, reconnect), if known. */
  readonly lost: number;
  /** Returns the memory to the pool (idempotent). */
  release(): void;
}

/**
 * An open buffer of one device (libiio's iio_buffer), named IioBuffer so it is not
 * mistaken for Node's Buffer.
 */
export class IioBuffer {
  /** The channels in the stream, in scan order (may be more than asked: hardware decides). */
  readonly channels: readonly Channel[];
  readonly layout: ScanLayout;
  private current?: RawBlock;
  private seq = 0;
  private closed = false;
  private totalLost = 0;
  private readonly siParams = new Map<number, { scale: number; offset: number }>();

  constructor(
    readonly device: Device,
    private readonly raw: BackendBuffer,
    /** Scans per block. */
    readonly samples: number,
    readonly isOutput: boolean,
    readonly cyclic: boolean,
    /** The channels asked for. */
    readonly requested: ChannelMask,
    /** Undoes what opening changed outside the backend (the trigger), run by close(). */
    private readonly onClose?: () => Promise<void>,
  ) {
    const mask = raw.mask;
    this.channels = device.channels.filter((c) => mask.has(c.number) && c.isScanElement);
    this.layout = computeScanLayout(
      this.channels.map((c) => ({
        key: c.number,
        index: c.index,
        format: c.format!,
        isTimestamp: c.type === 'timestamp',
      })),
    );
    this.channels = this.layout.slots.map((s) => device.channels[s.key]);
  }

  /** Bytes per scan. */
  get scanBytes(): number {
    return this.layout.scanBytes;
  }

  /** The channels actually enabled in the stream. */
  get mask(): ChannelMask {
    return this.raw.mask;
  }

  /** Total scans known to be lost since the buffer opened. */
  get lost(): number {
    return this.totalLost;
  }

  /**
   * Counters: scans lost, blocks read, and for `local:` the data path's (`transfer.mode`
   * says whether DMABUF was used; blocks with the kernel, waiting for JS, held by JS;
   * copies, stalls, transfer errors). Readable after close().
   */
  stats(): BufferStats {
    const transfer = this.raw.stats?.();
    return { lost: this.totalLost, blocks: this.seq, ...(transfer ? { transfer } : {}) };
  }

  private ctx(op: string): { device: string; uri: string; op: string } {
    return { device: this.device.id, uri: this.device.context.uri, op };
  }

  private ensureOpen(op: string): void {
    if (this.closed) throw new IioError('EBADF', 'the buffer is closed', this.ctx(op));
  }

  /**
   * Input: waits for the next block and returns its scans. The previous block is
   * released: data returned by an earlier refill() must not be used afterwards.
   */
  async refill(): Promise<Buffer> {
    this.ensureOpen('refill');
    if (this.isOutput)
      throw new IioError('EPERM', 'refill() on an output buffer', this.ctx('refill'));
    this.current?.release();
    this.current = undefined;
    try {
      const b = await this.raw.read();
      this.totalLost += b.lost ?? 0;
      this.seq++;
      this.current = b;
      return b.data;
    } catch (err) {
      throw IioError.wrap(err, this.ctx('refill'));
    }
  }

  /**
   * Output: writes whole scans (a Buffer of `n × scanBytes` bytes). For a cyclic buffer
   * the first push is repeated until close().
   */
  async push(data: Uint8Array): Promise<void> {
    this.ensureOpen('push');
    if (!this.isOutput) throw new IioError('EPERM', 'push() on an input buffer', this.ctx('push'));
    if (data.length === 0 || data.length % this.scanBytes !== 0) {
      throw new IioError(
        'EINVAL',
        `push() needs whole scans: ${data.length} bytes is not a multiple of ${this.scanBytes}`,
        this.ctx('push'),
      );
    }
    const buf = Buffer.isBuffer(data)
      ? data
      : Buffer.from(data.buffer, data.byteOffset, data.length);
    try {
      await this.raw.write(buf);
    } catch (err) {
      throw IioError.wrap(err, this.ctx('push'));
    }
  }

  /** Output: waits until what was pushed has been consumed (where the backend can tell). */
  async drain(): Promise<void> {
    if (this.raw.drain) await this.raw.drain();
  }

  /**
   * Reads `scale` and `offset` of every channel in the buffer once, for
   * `channelData(ch, { si: true })` (createBuffer does it). Channels without them get 1 and 0.
   */
  async loadScales(): Promise<void> {
    for (const c of this.channels) {
      try {
        this.siParams.set(c.number, await c.readScaleOffset());
      } catch {
        this.siParams.set(c.number, { scale: 1, offset: 0 });
      }
    }
  }

  /** The `scale` and `offset` read by loadScales() (1 and 0 when unknown). */
  scaleOf(channel: Channel | string): { scale: number; offset: number } {
    return this.siParams.get(this.slotOf(channel).key) ?? { scale: 1, offset: 0 };
  }

  /** Where a channel sits in a scan. */
  slotOf(channel: Channel | string): ScanSlot {
    const c = typeof channel === 'string' ? this.channels.find((x) => x.id === channel) : channel;
    const slot = c && this.layout.slots.find((s) => s.key === c.number);
    if (!slot) {
      const id = typeof channel === 'string' ? channel : channel.id;
      throw new IioError('ENOENT', `channel ${id} is not in this buffer`, {
        device: this.device.id,
        channel: id,
        uri: this.device.context.uri,
      });
    }
    return slot;
  }

  /**
   * The values of one channel from a block (default: the last refill), raw or in SI
   * units: `{ si: true }` applies the channel's own `(raw + offset) * scale` (read when the
   * buffer opened), `{ si: { scale, offset } }` given values.
   */
  channelData(
    channel: Channel | string,
    options: Omit<DemuxOptions, 'si'> & {
      si?: boolean | { readonly scale: number; readonly offset: number };
      data?: Uint8Array;
    } = {},
  ): number[] | bigint[] {
    const data = options.data ?? this.current?.data;
    if (!data)
      throw new IioError('ENODATA', 'no block yet: call refill() first', this.ctx('channelData'));
    const slot = this.slotOf(channel);
    const si =
      options.si === true
        ? (this.siParams.get(slot.key) ?? { scale: 1, offset: 0 })
        : options.si || undefined;
    return demuxChannel(data, this.layout, slot, { repeatIndex: options.repeatIndex, si });
  }

  /**
   * Input: blocks as they arrive. Each block must be released; breaking out of the loop
   * stops the stream but leaves the buffer open (close() it).
   */
  stream(): AsyncGenerator<Block, void, undefined> {
    return new BlockStream(this);
  }

  /**
   * @internal BlockStream's step: the next block, or undefined at the end. `first`: the
   * stream's first step, which checks that the buffer is open and an input.
   */
  async nextBlock(first: boolean): Promise<Block | undefined> {
    if (first) {
      this.ensureOpen('stream');
      if (this.isOutput)
        throw new IioError('EPERM', 'stream() on an output buffer', this.ctx('stream'));
    }
    if (this.closed) return undefined;
    let b: RawBlock;
    try {
      b = await this.raw.read();
    } catch (err) {
      const e = IioError.wrap(err, this.ctx('stream'));
      if (this.closed && (e.code === 'ECANCELED' || e.code === 'EBADF')) return undefined;
      throw e;
    }
    const lost = b.lost ?? 0;
    this.totalLost += lost;
    return {
      data: b.data,
      samples: Math.floor(b.data.length / this.scanBytes),
      seq: this.seq++,
      lost,
      release: () => b.release(),
    };
  }

  /** Aborts a pending refill/push/stream step (it rejects with ECANCELED). */
  cancel(): void {
    this.raw.cancel();
  }

  /** Stops streaming and restores the device. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.current?.release();
    this.current = undefined;
    this.raw.cancel();
    try {
      await this.raw.close();
    } finally {
      if (this.onClose) await this.onClose();
    }
  }
}

const DONE: IteratorReturnResult<void> = Object.freeze({ value: undefined, done: true });

/**
 * What `stream()` returns: an async generator's behaviour (steps one at a time, in order;
 * ends after an error, at close() or return()) without an async generator's machinery,
 * which costs a few hundred ns per block in promises and resumptions: at 4 KiB blocks that
 * is a tenth of the JS thread's work per block (docs/native.md).
 */
class BlockStream implements AsyncGenerator<Block, void, undefined> {
  private started = false;
  private done = false;
  /** Steps asked for and not finished; the last one's promise. */
  private busy = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly run = (): Promise<IteratorResult<Block, void>> => this.step();

  constructor(private readonly buffer: IioBuffer) {}

  next(): Promise<IteratorResult<Block, void>> {
    // A next() called before the previous one settled waits for it, as a generator's does.
    const p = this.busy++ > 0 ? this.tail.then(this.run, this.run) : this.run();
    this.tail = p;
    return p;
  }

  private async step(): Promise<IteratorResult<Block, void>> {
    try {
      if (this.done) return DONE;
      const first = !this.started;
      this.started = true;
      const value = await this.buffer.nextBlock(first);
      if (value === undefined) {
        this.done = true;
        return DONE;
      }
      return { value, done: false };
    } catch (err) {
      this.done = true;
      throw err;
    } finally {
      this.busy--;
    }
  }

  return(): Promise<IteratorResult<Block, void>> {
    const finish = (): IteratorResult<Block, void> => {
      this.done = true;
      return DONE;
    };
    if (this.busy === 0) return Promise.resolve(finish());
    const p = this.tail.then(finish, finish);
    this.tail = p;
    return p;
  }

  throw(err: unknown): Promise<IteratorResult<Block, void>> {
    this.done = true;
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): AsyncGenerator<Block, void, undefined> {
    return this;
  }
}
