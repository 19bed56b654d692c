import { IioError, type IioErrorContext } from '../../errors';
import { convert, convertInverse } from '../../format/convert';
import { computeScanLayout, type ScanLayout } from '../../format/layout';
import type { ChannelMask } from '../../model/channel-mask';
import type { BackendBuffer, RawBlock } from '../../model/backend';
import { now } from './clock';
import type { EmuChannel, EmuDevice } from './device';
import { elementWriter, type ElementWriter } from './element-writer';

/** A sleep that cancel() or close() can cut short. */
class Sleeper {
  private timer: NodeJS.Timeout | null = null;
  private rejectFn: ((err: Error) => void) | null = null;

  get busy(): boolean {
    return this.rejectFn !== null;
  }

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.rejectFn = reject;
      this.timer = setTimeout(
        () => {
          this.timer = null;
          this.rejectFn = null;
          resolve();
        },
        Math.max(0, Math.ceil(ms)),
      );
    });
  }

  abort(err: Error): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const r = this.rejectFn;
    this.rejectFn = null;
    r?.(err);
  }
}

/** Where a channel's elements go in a scan and how they are stored. */
interface SlotWriter {
  readonly channel: EmuChannel;
  readonly offset: number;
  readonly size: number;
  readonly repeat: number;
  readonly write: ElementWriter;
}

function layoutOf(dev: EmuDevice, mask: ChannelMask, ctx: IioErrorContext): ScanLayout {
  const elements = mask.indices().map((i) => {
    const c = dev.info.channels[i];
    if (!c.isScanElement || !c.format || c.format.length === 0) {
      throw new IioError('EINVAL', `channel ${c.id} has no scan format and cannot be buffered`, {
        ...ctx,
        channel: c.id,
      });
    }
    return { key: i, index: c.index, format: c.format, isTimestamp: dev.channels[i].isTimestamp };
  });
  return computeScanLayout(elements);
}

export interface EmuBufferOptions {
  readonly samples: number;
  /** Blocks the "kernel" queue holds before it overruns (input) or blocks writers (output). */
  readonly blocks: number;
  /** Context timeout in ms (0: none), read at each operation. */
  readonly timeoutMs: () => number;
  readonly uri: string;
}

/**
 * An input buffer of an emulated device: block k holds samples [start + k·samples, …) of
 * the device clock, handed out once they have happened, in the kernel's scan layout.
 * A reader that falls more than `blocks` blocks behind loses the oldest samples
 * (reported in `lost`), as an overrun on hardware.
 */
export class EmuInputBuffer implements BackendBuffer {
  private readonly layout: ScanLayout;
  private readonly slots: SlotWriter[];
  private readonly timestampSlots: Array<{ offset: number; channel: EmuChannel }>;
  private next: number;
  private closed = false;
  private readonly sleeper = new Sleeper();

  constructor(
    private readonly dev: EmuDevice,
    readonly mask: ChannelMask,
    private readonly options: EmuBufferOptions,
  ) {
    const ctx = { device: dev.info.id, uri: options.uri };
    this.layout = layoutOf(dev, mask, ctx);
    this.slots = [];
    this.timestampSlots = [];
    for (const s of this.layout.slots) {
      const channel = dev.channels[s.key];
      if (channel.isTimestamp) this.timestampSlots.push({ offset: s.offset, channel });
      else {
        this.slots.push({
          channel,
          offset: s.offset,
          size: s.size,
          repeat: s.format.repeat,
          write: elementWriter(s.format),
        });
      }
    }
    this.next = dev.nowIndex();
  }

  private ctx(op: string): IioErrorContext {
    return { device: this.dev.info.id, uri: this.options.uri, op };
  }

  /** Scans waiting to be read (the buffer's data_available). */
  available(): number {
    if (this.closed) return 0;
    const cap = this.options.samples * this.options.blocks;
    return Math.max(0, Math.min(cap, this.dev.nowIndex() - this.next));
  }

  async read(): Promise<RawBlock> {
    if (this.closed) throw new IioError('EBADF', 'the buffer is closed', this.ctx('read'));
    if (this.sleeper.busy)
      throw new IioError('EBUSY', 'a read is already pending', this.ctx('read'));
    const { samples, blocks } = this.options;
    const started = now();
    let lost = 0;
    for (;;) {
      const nowIndex = this.dev.nowIndex();
      const behind = nowIndex - this.next - samples * blocks;
      if (behind > 0) {
        lost += behind;
        this.next += behind;
      }
      const end = this.next + samples;
      if (nowIndex >= end) break;
      let wait = this.dev.clock.timeOf(end) - now();
      const timeout = this.options.timeoutMs();
      if (timeout > 0 && now() + wait - started > timeout) {
        wait = started + timeout - now();
        await this.sleeper.sleep(wait);
        throw new IioError(
          'ETIMEDOUT',
          `no ${samples} samples within ${timeout} ms (the device samples at ${this.dev.rate} Hz)`,
          this.ctx('read'),
        );
      }
      await this.sleeper.sleep(wait);
      if (this.closed) throw new IioError('EBADF', 'the buffer is closed', this.ctx('read'));
    }
    const data = this.generate(this.next, samples);
    this.next += samples;
    return { data, release: () => undefined, lost };
  }

  /** Scans n0..n0+count-1 in the kernel layout. */
  private generate(n0: number, count: number): Buffer {
    const scan = this.layout.scanBytes;
    const buf = Buffer.alloc(count * scan);
    for (const s of this.slots) {
      const { channel, write, size, repeat } = s;
      let off = s.offset;
      for (let i = 0; i < count; i++, off += scan) {
        const v = channel.valueAt(n0 + i);
        write(buf, off, v);
        for (let r = 1; r < repeat; r++) write(buf, off + r * size, v);
      }
    }
    for (const t of this.timestampSlots) {
      const f = t.channel.info.format!;
      const fast = !f.isBigEndian && f.length === 64 && f.bits === 64 && f.shift === 0;
      for (let i = 0; i < count; i++) {
        const ts = this.dev.clock.timestampOf(n0 + i);
        if (fast) buf.writeBigInt64LE(ts, i * scan + t.offset);
        else convertInverse(ts, buf, i * scan + t.offset, f);
      }
    }
    return buf;
  }

  async write(): Promise<void> {
    throw new IioError('EPERM', 'write() on an input buffer', this.ctx('write'));
  }

  cancel(): void {
    this.sleeper.abort(new IioError('ECANCELED', 'the read was cancelled', this.ctx('read')));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sleeper.abort(new IioError('ECANCELED', 'the buffer was closed', this.ctx('read')));
    if (this.dev.input === this) this.dev.input = null;
  }
}

/** How long played DAC samples stay visible to the ADC they are looped into (seconds). */
const PLAYBACK_RETENTION_S = 10;

/**
 * An output buffer of an emulated DAC: pushed scans are queued on the DAC's clock and
 * played at its sampling rate (see Playback); write() resolves once the queue holds no
 * more than `blocks` blocks, so a writer runs at the DAC's pace. Queued samples still
 * play after close(), as a FIFO drains; a cyclic buffer repeats its one block until
 * closed.
 */
export class EmuOutputBuffer implements BackendBuffer {
  private readonly layout: ScanLayout;
  private closed = false;
  private pushed = false;
  private readonly sleeper = new Sleeper();

  constructor(
    private readonly dev: EmuDevice,
    readonly mask: ChannelMask,
    private readonly options: EmuBufferOptions & { readonly cyclic: boolean },
  ) {
    this.layout = layoutOf(dev, mask, { device: dev.info.id, uri: options.uri });
  }

  private ctx(op: string): IioErrorContext {
    return { device: this.dev.info.id, uri: this.options.uri, op };
  }

  async read(): Promise<RawBlock> {
    throw new IioError('EPERM', 'read() on an output buffer', this.ctx('read'));
  }

  /** Scans pushed and not yet played (the buffer's data_available). */
  queued(): number {
    if (this.closed || this.options.cyclic) return 0;
    const n = this.dev.nowIndex();
    return Math.max(0, this.dev.playback!.endIndex(n) - n);
  }

  async write(data: Buffer): Promise<void> {
    if (this.closed) throw new IioError('EBADF', 'the buffer is closed', this.ctx('write'));
    if (this.sleeper.busy)
      throw new IioError('EBUSY', 'a write is already pending', this.ctx('write'));
    const scan = this.layout.scanBytes;
    if (data.length === 0 || data.length % scan !== 0) {
      throw new IioError(
        'EINVAL',
        `${data.length} bytes is not a whole number of ${scan}-byte scans`,
        this.ctx('write'),
      );
    }
    if (this.options.cyclic && this.pushed) {
      throw new IioError(
        'EBUSY',
        'a cyclic buffer repeats its first push; close it to push new data',
        this.ctx('write'),
      );
    }
    const count = data.length / scan;
    const values = new Map<number, Float64Array>();
    for (const s of this.layout.slots) {
      const arr = new Float64Array(count);
      for (let i = 0; i < count; i++) arr[i] = Number(convert(data, i * scan + s.offset, s.format));
      values.set(s.key, arr);
    }
    const playback = this.dev.playback!;
    const nowIndex = this.dev.nowIndex();
    playback.prune(nowIndex - Math.max(65536, this.dev.clock.rate * PLAYBACK_RETENTION_S));
    playback.schedule(values, count, this.options.cyclic, nowIndex);
    this.pushed = true;
    if (this.options.cyclic) return;
    await this.waitUntil(
      (n) => playback.endIndex(n) - n <= this.options.samples * this.options.blocks,
      'write',
    );
  }

  /** Sleeps until `done(nowIndex)` holds (re-checked when the queue should have moved). */
  private async waitUntil(done: (nowIndex: number) => boolean, op: string): Promise<void> {
    const playback = this.dev.playback!;
    const started = now();
    for (;;) {
      const n = this.dev.nowIndex();
      if (done(n)) return;
      const timeout = this.options.timeoutMs();
      if (timeout > 0 && now() - started > timeout) {
        throw new IioError('ETIMEDOUT', `the DAC did not take the data within ${timeout} ms`, {
          ...this.ctx(op),
        });
      }
      // Wake when one block has played (or the queue end is reached, whichever is first).
      const target = Math.min(playback.endIndex(n), n + this.options.samples);
      await this.sleeper.sleep(Math.max(1, this.dev.clock.timeOf(target) - now()));
      if (this.closed) throw new IioError('EBADF', 'the buffer is closed', this.ctx(op));
    }
  }

  async drain(): Promise<void> {
    if (this.options.cyclic || this.closed) return;
    const playback = this.dev.playback!;
    await this.waitUntil((n) => playback.endIndex(n) <= n, 'drain');
  }

  cancel(): void {
    this.sleeper.abort(new IioError('ECANCELED', 'the write was cancelled', this.ctx('write')));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sleeper.abort(new IioError('ECANCELED', 'the buffer was closed', this.ctx('write')));
    if (this.options.cyclic) this.dev.playback?.stopCyclic(this.dev.nowIndex());
    if (this.dev.output === this) this.dev.output = null;
  }
}
