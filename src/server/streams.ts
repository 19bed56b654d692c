import { IioError } from '../errors';
import type { IioBuffer } from '../model/buffer';
import type { Channel } from '../model/channel';
import { ChannelMask } from '../model/channel-mask';
import type { Device } from '../model/device';
import { computeScanLayout } from '../format/layout';
import { DemuxPlan } from './demux';
import { DEFAULT_DEVICE_BLOCKS, type MemoryBudget, type Reservation } from './limits';

/** A connection's end, as waits see it (SocketReader). */
export interface ConnectionEnd {
  readonly isClosed: boolean;
  /** Calls `cb` once when the connection ends; the returned function unregisters it. */
  whenClosed(cb: () => void): () => void;
}

/** Settings shared by a server's streams. */
export interface StreamSettings {
  /** Send each client only its channels (iiod -D); else the whole scan with its mask. */
  readonly demux: boolean;
  /** Bytes a client may have queued before its oldest blocks are dropped. */
  readonly queueBytes: number;
  /** Longest block, in seconds of data, when the device's rate is known. */
  readonly maxBlockSeconds: number;
  /** Kernel buffers count per device (SET BUFFERS_COUNT), if set. */
  blocksFor(device: Device): number | undefined;
  /** The server's memory budget: each device stream reserves what its blocks hold. */
  readonly budget?: MemoryBudget;
}

/** An open refused because the server's memory budget has no room for it (-ENOMEM). */
export class BudgetError extends IioError {}

/** A queued piece of stream data and what to do once it is sent or dropped. */
interface Item {
  readonly data: Buffer;
  readonly done: () => void;
}

/** Counts of one client of a device stream. */
export interface StreamClientStats {
  readonly device: string;
  readonly channels: string[];
  readonly queuedBytes: number;
  /** Scans dropped because the client fell behind. */
  readonly droppedScans: number;
  readonly sentBytes: number;
}

/**
 * One reader of a device (one OPEN): its channels, and a bounded queue the device's
 * stream fills and its READBUFs drain. A reader that falls behind loses its oldest
 * blocks (counted), never the other readers' data.
 */
export class InputClient {
  readonly channels: Channel[];
  private queue: Item[] = [];
  private queuedBytes = 0;
  /** Size of the last block queued: the next one is as large. */
  private lastItemBytes = 0;
  private wake: (() => void) | null = null;
  /** Changes when the wire layout changes (whole-scan mode, on a new union of channels). */
  generation = 0;
  plan: DemuxPlan | null = null;
  /** The mask sent in front of each READBUF's data. */
  wireMask: ChannelMask;
  error: IioError | null = null;
  droppedScans = 0;
  sentBytes = 0;

  /**
   * @param ownLayout always send this reader its own channels, whatever the server's
   * `demux` setting: a binary-protocol reader's layout is fixed when it opens (OPEN_BUFFER
   * answers its mask), there is no mask in front of each block to announce another.
   */
  constructor(
    readonly hub: InputHub,
    readonly mask: ChannelMask,
    readonly samples: number,
    readonly ownLayout = false,
  ) {
    this.channels = mask.indices().map((i) => hub.device.channels[i]);
    this.wireMask = mask;
  }

  /** Bytes per scan on the wire. */
  get scanBytes(): number {
    return this.plan?.scanBytes ?? 0;
  }

  /**
   * Full when one more block would not fit: the hub then stops pulling (the device waits,
   * or its own buffer overruns) instead of pulling a block that push() would have to make
   * room for by dropping the oldest, which lost data whenever the limit was not a
   * multiple of the block size (e.g. while a client had not sent its first READBUF yet).
   * An empty queue is never full, whatever its limit: a reader whose blocks are larger
   * than the limit still gets one at a time.
   */
  get isFull(): boolean {
    return (
      this.queuedBytes > 0 && this.queuedBytes + this.lastItemBytes > this.hub.queueLimit(this)
    );
  }

  get stats(): StreamClientStats {
    return {
      device: this.hub.device.id,
      channels: this.channels.map((c) => c.id),
      queuedBytes: this.queuedBytes,
      droppedScans: this.droppedScans,
      sentBytes: this.sentBytes,
    };
  }

  /** @internal the hub hands over a block (already in this client's layout). */
  push(item: Item): void {
    this.queue.push(item);
    this.queuedBytes += item.data.length;
    this.lastItemBytes = item.data.length;
    const limit = this.hub.queueLimit(this);
    while (this.queuedBytes > limit && this.queue.length > 1) {
      const old = this.queue.shift()!;
      this.queuedBytes -= old.data.length;
      if (this.scanBytes) this.droppedScans += Math.floor(old.data.length / this.scanBytes);
      old.done();
    }
    this.notify();
  }

  /** @internal drops everything queued (the layout changed). */
  flush(): void {
    for (const it of this.queue) it.done();
    this.queue = [];
    this.queuedBytes = 0;
    this.notify();
  }

  /** @internal */
  fail(err: IioError): void {
    this.error = err;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** True when a block is queued (waitForData() would return at once). */
  get hasData(): boolean {
    return this.queue.length > 0;
  }

  /**
   * Resolves when data, an error or a layout change is there, or the connection ends.
   * Each wait registers with the connection and leaves again: a promise of the
   * connection's end raced on every block would keep one reaction per block alive for
   * as long as the connection lives.
   */
  async waitForData(conn: ConnectionEnd): Promise<void> {
    while (!this.queue.length && !this.error && !conn.isClosed) {
      const gen = this.generation;
      let leave = (): void => undefined;
      await new Promise<void>((r) => {
        this.wake = r;
        leave = conn.whenClosed(r);
      });
      leave();
      if (this.generation !== gen) return;
      if (this.hub.isClosed(this)) return;
    }
  }

  /**
   * Takes queued data, whole scans, `max` bytes at most (several blocks when they fit,
   * so a READBUF chunk can carry them all); empty when nothing is queued.
   */
  take(max: number): Item[] {
    const scan = this.scanBytes;
    const out: Item[] = [];
    if (!scan) return out;
    let room = Math.floor(max / scan) * scan;
    while (room > 0 && this.queue.length) {
      const head = this.queue[0];
      const n = Math.min(head.data.length, room);
      if (n === head.data.length) {
        this.queue.shift();
        out.push(head);
      } else {
        // The rest stays queued: the block is released once both parts are done with.
        let holders = 2;
        const done = (): void => {
          if (--holders === 0) head.done();
        };
        out.push({ data: head.data.subarray(0, n), done });
        this.queue[0] = { data: head.data.subarray(n), done };
      }
      this.queuedBytes -= n;
      room -= n;
    }
    if (out.length) this.hub.kick();
    return out;
  }
}

/** A block of the device stream shared by the readers that take it unchanged. */
function shared(release: () => void, holders: number): () => void {
  let left = holders;
  let released = holders === 0;
  if (released) release();
  return () => {
    if (released) return;
    if (--left <= 0) {
      released = true;
      release();
    }
  };
}

/**
 * The one input stream of a device that several readers share: it is opened with the
 * union of their channels and the largest of their block sizes (as iiod does), reopened
 * when that union grows, and its blocks are demultiplexed into each reader's queue.
 * When every reader's queue is full it stops pulling (the device's own buffer then
 * overruns, as it would); otherwise slow readers drop and fast ones keep up.
 */
export class InputHub {
  readonly clients = new Set<InputClient>();
  private buffer: IioBuffer | null = null;
  private mask: ChannelMask | null = null;
  private samples = 0;
  private gen = 0;
  /** add/remove run one at a time: a reopen must not race another. */
  private lock: Promise<unknown> = Promise.resolve();
  private kickFn: (() => void) | null = null;
  /** What the open stream holds, reserved from the server's budget. */
  private reservation: Reservation | undefined;
  blocksRead = 0;

  constructor(
    readonly device: Device,
    private readonly settings: StreamSettings,
  ) {}

  get isStreaming(): boolean {
    return this.buffer !== null;
  }

  /** The channels streamed now. */
  get streamMask(): ChannelMask | null {
    return this.mask;
  }

  isClosed(client: InputClient): boolean {
    return !this.clients.has(client);
  }

  /**
   * The same for every reader, whatever block size it asked for (a client must not choose
   * how much of the server's memory it holds): past it the oldest blocks go, but the
   * newest block is always kept, however large.
   */
  queueLimit(_client: InputClient): number {
    return this.settings.queueBytes;
  }

  /** Wakes the pump when a reader made room. */
  kick(): void {
    const k = this.kickFn;
    this.kickFn = null;
    k?.();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Adds a reader; resolves once the device streams its channels (or rejects). */
  add(client: InputClient): Promise<void> {
    return this.serial(() => this.addNow(client));
  }

  private async addNow(client: InputClient): Promise<void> {
    this.clients.add(client);
    try {
      await this.reconfigure(false);
    } catch (err) {
      this.clients.delete(client);
      // Refused before the stream was touched: the others go on as they were.
      if (err instanceof BudgetError) throw err;
      // Keep serving the others with what they had.
      if (this.clients.size) await this.reconfigure(true).catch(() => undefined);
      throw err;
    }
  }

  /** Removes a reader; the stream stops with the last one. */
  remove(client: InputClient): Promise<void> {
    return this.serial(() => this.removeNow(client));
  }

  private async removeNow(client: InputClient): Promise<void> {
    if (!this.clients.delete(client)) return;
    client.flush();
    if (!this.clients.size) await this.stop();
  }

  private async stop(): Promise<void> {
    const b = this.buffer;
    this.buffer = null;
    this.mask = null;
    this.gen++;
    this.kick();
    if (b) await b.close().catch(() => undefined);
    this.reservation?.release();
    this.reservation = undefined;
  }

  /** What a stream of `samples` scans of `union` holds at most (its device blocks). */
  private streamBytes(union: ChannelMask, samples: number): number {
    const scan = computeScanLayout(
      union.indices().map((i) => {
        const c = this.device.channels[i];
        return { key: i, index: c.index, format: c.format! };
      }),
    ).scanBytes;
    return samples * scan * (this.settings.blocksFor(this.device) ?? DEFAULT_DEVICE_BLOCKS);
  }

  /** How many scans per block: the readers' largest, capped to maxBlockSeconds of data. */
  private async blockSamples(): Promise<number> {
    let samples = 0;
    for (const c of this.clients) samples = Math.max(samples, c.samples);
    try {
      let rateDev: Device = this.device;
      const trig = await this.device.getTrigger().catch(() => null);
      if (trig) rateDev = trig;
      const a = rateDev.attrs.find((x) => x.name === 'sampling_frequency');
      const rate = a ? Number((await a.read()).trim()) : NaN;
      if (Number.isFinite(rate) && rate > 0) {
        samples = Math.min(samples, Math.max(1, Math.ceil(rate * this.settings.maxBlockSeconds)));
      }
    } catch {
      // rate unknown: blocks as large as asked
    }
    return samples;
  }

  /**
   * Opens (or reopens) the stream for the current readers. Reopens only when the union
   * of channels grows, or `force`; readers keep their queues when demultiplexed.
   */
  private async reconfigure(force: boolean): Promise<void> {
    let union = new ChannelMask(this.device.channels.length);
    for (const c of this.clients) union = union.union(c.mask);
    const samples = await this.blockSamples();
    const covered = this.mask !== null && this.mask.contains(union);
    if (this.buffer && covered && !force && samples <= this.samples) {
      this.planClients();
      return;
    }
    const budget = this.settings.budget;
    const bytes = this.streamBytes(union, samples);
    if (budget && !budget.fits(bytes - (this.reservation?.bytes ?? 0))) {
      throw new BudgetError(
        'ENOMEM',
        `a stream of ${samples} scans (${bytes} bytes in its blocks) does not fit in the server's memory limit of ${budget.limit} bytes (${budget.reserved} reserved)`,
        { device: this.device.id, op: 'open buffer' },
      );
    }
    await this.stop();
    this.reservation = budget?.reserve(bytes);
    const channels = union.indices().map((i) => this.device.channels[i]);
    const blocks = this.settings.blocksFor(this.device);
    let buffer: IioBuffer;
    try {
      buffer = await this.device.createBuffer(samples, {
        channels,
        ...(blocks ? { blocks } : {}),
      });
    } catch (err) {
      this.reservation?.release();
      this.reservation = undefined;
      throw err;
    }
    this.buffer = buffer;
    this.mask = buffer.mask;
    this.samples = samples;
    const gen = ++this.gen;
    this.planClients();
    void this.pump(buffer, gen);
  }

  /** (Re)computes each reader's wire layout for the current stream. */
  private planClients(): void {
    const b = this.buffer;
    if (!b) return;
    for (const c of this.clients) {
      if (this.settings.demux || c.ownLayout) {
        // A reader's own layout never changes: what it has queued stays valid.
        c.plan = new DemuxPlan(b.layout, c.channels);
        c.wireMask = c.mask;
      } else {
        const plan = new DemuxPlan(b.layout, b.channels);
        if (!c.plan || c.plan.scanBytes !== plan.scanBytes || !c.wireMask.equals(b.mask)) {
          c.generation++;
          c.flush();
        }
        c.plan = plan;
        c.wireMask = b.mask;
      }
    }
  }

  private allFull(): boolean {
    for (const c of this.clients) if (!c.isFull) return false;
    return true;
  }

  private async pump(buffer: IioBuffer, gen: number): Promise<void> {
    const stream = buffer.stream();
    try {
      while (this.gen === gen) {
        if (this.allFull()) {
          await new Promise<void>((r) => (this.kickFn = r));
          continue;
        }
        const next = await stream.next();
        if (next.done || this.gen !== gen) {
          if (!next.done) next.value.release();
          break;
        }
        const block = next.value;
        this.blocksRead++;
        // (two passes over the readers, no arrays made: this runs once per block)
        let holders = 0;
        for (const c of this.clients) {
          if (!c.plan) continue;
          // scans the device lost (it overran while every reader was full, or the link of
          // an ip: context was down): a gap in every reader's stream, counted as theirs
          if (block.lost) c.droppedScans += block.lost;
          if (c.plan.identity) holders++;
        }
        const done = shared(() => block.release(), holders);
        for (const c of this.clients) {
          if (!c.plan) continue;
          if (c.plan.identity) c.push({ data: block.data, done });
          else c.push({ data: c.plan.apply(block.data), done: () => undefined });
        }
      }
    } catch (err) {
      if (this.gen === gen) {
        const e = IioError.wrap(err, { device: this.device.id, op: 'read' });
        for (const c of this.clients) c.fail(e);
        await this.stop();
      }
    } finally {
      await stream.return(undefined).catch(() => undefined);
    }
  }
}

/** The one writer of an output device (one OPEN at a time, as a DAC has one stream). */
export class OutputClient {
  constructor(
    readonly buffer: IioBuffer,
    readonly samples: number,
    readonly cyclic: boolean,
  ) {}

  get scanBytes(): number {
    return this.buffer.scanBytes;
  }
}
