/**
 * The buffers one client has open, and the rules for opening them, as iiod applies them
 * — answered with 0 or a negative errno, no wire format in sight. Inputs share the
 * device's stream (streams.ts: one hub per device, a bounded queue per reader); an
 * output device has one writer at a time. OutputWriter turns the bytes a client sends
 * into whole-scan pushes. The ASCII session (session.ts) frames all of this for libiio
 * 0.x; a binary framing can call the same functions.
 */
import { computeScanLayout } from '../format/layout';
import { MAX_BUFFER_BLOCKS } from '../model/buffer';
import type { Channel } from '../model/channel';
import type { ChannelMask } from '../model/channel-mask';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import { tracer } from '../util/trace';
import { NEG, negErrno, type NegErrno } from './device-ops';
import { DEFAULT_DEVICE_BLOCKS, MemoryBudget, type Reservation, type ServerLimits } from './limits';
import {
  BudgetError,
  InputClient,
  OutputClient,
  type InputHub,
  type StreamSettings,
} from './streams';

const trace = tracer('server');

/** Largest cyclic block gathered from one write. */
export const MAX_CYCLIC_BYTES = 64 * 1024 * 1024;

/** What a session needs from its server: the context and the state sessions share. */
export interface SessionHost {
  readonly ctx: Context;
  readonly settings: StreamSettings;
  /** The server's bounds (limits.ts). */
  readonly limits: ServerLimits;
  /** The whole server's memory budget; each connection's draws from it. */
  readonly memory: MemoryBudget;
  hubFor(device: Device): InputHub;
  /** The session writing to each output device (one at a time). */
  readonly writers: Map<Device, object>;
  /** Kernel buffer counts set by clients (SET BUFFERS_COUNT). */
  readonly bufferCounts: Map<Device, number>;
  log(message: string): void;
  /** A connection switched to the binary protocol (statistics). */
  switchedToBinary(session: object): void;
  /**
   * Whether a connection other than `asker` has buffer `index` of `dev` open in the
   * binary protocol (libiio closes a buffer from its context's connection).
   */
  bufferOpenElsewhere(dev: Device, index: number, asker: object): boolean;
}

/**
 * The channels of `requested` a buffer can stream (others are ignored, as iiod does):
 * the mask as it would be enabled, the channels, their direction. -EINVAL when none
 * is left or directions are mixed.
 */
export function streamChannels(
  dev: Device,
  requested: ChannelMask,
): { wire: ChannelMask; channels: Channel[]; isOutput: boolean } | NegErrno {
  const wire = requested.clone();
  for (const i of requested.indices()) if (!dev.channels[i]?.isScanElement) wire.clear(i);
  const channels = wire.indices().map((i) => dev.channels[i]);
  if (!channels.length) return NEG.EINVAL;
  const isOutput = channels[0].isOutput;
  if (channels.some((c) => c.isOutput !== isOutput)) return NEG.EINVAL;
  return { wire, channels, isOutput };
}

/** Bytes of one scan of these channels in the kernel's layout (alignment, padding). */
export function scanBytesOf(channels: readonly Channel[]): number {
  return computeScanLayout(
    channels.map((c) => ({
      key: c.number,
      index: c.index,
      format: c.format!,
      isTimestamp: c.type === 'timestamp',
    })),
  ).scanBytes;
}

type Entry =
  | { readonly kind: 'in'; readonly client: InputClient; readonly reserved: Reservation }
  | { readonly kind: 'out'; readonly client: OutputClient; readonly reserved: Reservation };

/** Sets the kernel buffer count the next buffer of a device gets. */
export function setBuffersCount(
  host: SessionHost,
  dev: Device | null,
  count: number,
): 0 | NegErrno {
  if (!dev) return NEG.ENODEV;
  // at most what the model lets a buffer have (every stream's blocks count against the
  // server's memory budget as well)
  if (count < 1 || count > MAX_BUFFER_BLOCKS) return NEG.EINVAL;
  host.bufferCounts.set(dev, count);
  return 0;
}

/** The buffers one session (one client connection) has open, per device. */
export class SessionBuffers {
  /** Per device, what this session opened (most recent last, as iiod's list head). */
  private readonly opens = new Map<Device, Entry[]>();
  /** What this connection's buffers may hold (drawn from the server's budget too). */
  readonly budget: MemoryBudget;
  /** Scans lost by readers already closed (a count must outlive its reader). */
  private closedDropped = 0;

  /**
   * @param owner the session, as the host's `writers` names it.
   * @param ownLayout readers always get their own channels (binary protocol), whatever
   * the server's `demux` setting.
   */
  constructor(
    private readonly host: SessionHost,
    private readonly owner: object,
    private readonly ownLayout = false,
  ) {
    this.budget = new MemoryBudget(host.limits.connectionBytes, host.memory);
  }

  /** Readers open (for statistics). */
  get inputClients(): InputClient[] {
    return [...this.opens.values()].flat().flatMap((e) => (e.kind === 'in' ? [e.client] : []));
  }

  /** Scans this connection's readers lost, closed ones included. */
  get droppedScans(): number {
    return this.inputClients.reduce((n, c) => n + c.droppedScans, this.closedDropped);
  }

  /** Whether any buffer is open. */
  get hasOpen(): boolean {
    return this.opens.size > 0;
  }

  /** Whether an output buffer is open (a DAC playing: never evicted for being quiet). */
  get hasOutput(): boolean {
    return [...this.opens.values()].some((l) => l.some((e) => e.kind === 'out'));
  }

  /**
   * Reserves what a buffer of `samples` scans of `scanBytes` may hold on this connection
   * (and the server); undefined, after a trace line, when it does not fit.
   */
  private reserve(dev: Device, bytes: number): Reservation | undefined {
    const r = this.budget.reserve(bytes);
    if (!r) {
      trace(
        `${dev.id}: an open needing ${bytes} bytes refused: connection ${this.budget.reserved}/${this.budget.limit}, server ${this.host.memory.reserved}/${this.host.memory.limit} bytes reserved`,
      );
    }
    return r;
  }

  /**
   * Opens a buffer of `samples` scans on the channels of `requested` that can stream
   * (other bits are ignored, as iiod does). Inputs join the device's shared stream;
   * an output takes the device, or answers -EBUSY when another session has it.
   */
  async open(
    dev: Device | null,
    samples: number,
    requested: ChannelMask,
    cyclic: boolean,
  ): Promise<0 | NegErrno> {
    if (!dev) return NEG.ENODEV;
    const picked = streamChannels(dev, requested);
    if (typeof picked === 'number') return picked;
    const { wire, channels, isOutput } = picked;
    if (samples <= 0) return NEG.EINVAL;
    const blockBytes = samples * Math.max(1, scanBytesOf(channels));
    // iiod answers -ENOMEM when it cannot allocate what was asked for
    if (blockBytes > this.host.limits.maxBufferBytes) return NEG.ENOMEM;
    const list = this.opens.get(dev) ?? [];
    const blocks = this.host.bufferCounts.get(dev);
    if (isOutput) {
      if (this.host.writers.get(dev)) return NEG.EBUSY;
      // its device blocks, and what one write gathers before it is pushed
      const reserved = this.reserve(
        dev,
        blockBytes * (blocks ?? DEFAULT_DEVICE_BLOCKS) + (cyclic ? MAX_CYCLIC_BYTES : blockBytes),
      );
      if (!reserved) return NEG.ENOMEM;
      this.host.writers.set(dev, this.owner);
      try {
        const buffer = await dev.createBuffer(samples, {
          channels,
          cyclic,
          ...(blocks ? { blocks } : {}),
        });
        list.push({ kind: 'out', client: new OutputClient(buffer, samples, cyclic), reserved });
      } catch (err) {
        reserved.release();
        this.host.writers.delete(dev);
        return negErrno(err);
      }
    } else {
      // Input buffers cannot be cyclic (libiio's local backend answers EPERM).
      if (cyclic) return NEG.EPERM;
      // its queue, and the one block kept beyond it (the device stream reserves its own)
      const reserved = this.reserve(dev, this.host.limits.queueBytes + blockBytes);
      if (!reserved) return NEG.ENOMEM;
      const client = new InputClient(this.host.hubFor(dev), wire, samples, this.ownLayout);
      try {
        await client.hub.add(client);
      } catch (err) {
        reserved.release();
        if (err instanceof BudgetError) trace(`${dev.id}: ${err.message}`);
        return negErrno(err);
      }
      list.push({ kind: 'in', client, reserved });
    }
    this.opens.set(dev, list);
    return 0;
  }

  /** True when another session writes to the device (its OPEN would be -EBUSY). */
  writerIsOther(dev: Device): boolean {
    const w = this.host.writers.get(dev);
    return w !== undefined && w !== this.owner;
  }

  /** Closes the device's most recent buffer of this session; -ENXIO when none is open. */
  async close(dev: Device | null): Promise<0 | NegErrno> {
    if (!dev) return NEG.ENODEV;
    const list = this.opens.get(dev);
    const e = list?.pop();
    if (!e) return NEG.ENXIO;
    if (!list!.length) this.opens.delete(dev);
    await this.release(dev, e);
    return 0;
  }

  /** Closes everything this session opened (it is going away). */
  async closeAll(): Promise<void> {
    const all = [...this.opens.entries()];
    this.opens.clear();
    for (const [dev, entries] of all) for (const e of entries) await this.release(dev, e);
  }

  /** The device's most recent input of this session; -ENODEV / -EBADF when none. */
  input(dev: Device | null): InputClient | NegErrno {
    if (!dev) return NEG.ENODEV;
    const e = this.latest(dev, 'in');
    return e?.kind === 'in' ? e.client : NEG.EBADF;
  }

  /** The device's most recent output of this session; -ENODEV / -EBADF when none. */
  output(dev: Device | null): OutputClient | NegErrno {
    if (!dev) return NEG.ENODEV;
    const e = this.latest(dev, 'out');
    return e?.kind === 'out' ? e.client : NEG.EBADF;
  }

  private latest(dev: Device, kind: 'in' | 'out'): Entry | undefined {
    const list = this.opens.get(dev) ?? [];
    for (let i = list.length - 1; i >= 0; i--) if (list[i].kind === kind) return list[i];
    return undefined;
  }

  private async release(dev: Device, e: Entry): Promise<void> {
    try {
      if (e.kind === 'in') {
        await e.client.hub.remove(e.client).catch(() => undefined);
        this.closedDropped += e.client.droppedScans;
      } else {
        await e.client.buffer.close().catch(() => undefined);
        if (this.host.writers.get(dev) === this.owner) this.host.writers.delete(dev);
      }
    } finally {
      e.reserved.release();
    }
  }
}

/**
 * Feeds the bytes of one client write into an output buffer, never holding them whole:
 * whole scans are pushed in blocks of the buffer's size as they arrive. A cyclic buffer
 * takes one block (at most MAX_CYCLIC_BYTES): bytes beyond it are discarded and not
 * counted as accepted. After the first failed push the rest is read and discarded.
 */
export class OutputWriter {
  private readonly scan: number;
  private readonly chunk: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private accepted = 0;
  private error: unknown = null;

  /** @param total the bytes the client announced */
  constructor(
    private readonly w: OutputClient,
    total: number,
  ) {
    this.scan = w.scanBytes;
    this.chunk = w.cyclic
      ? Math.min(total, MAX_CYCLIC_BYTES)
      : Math.max(this.scan, w.samples * this.scan);
  }

  /** Takes the next bytes; pushes the whole blocks they complete (not for cyclic buffers). */
  async add(data: Buffer): Promise<void> {
    if (this.w.cyclic && this.pendingBytes + data.length > this.chunk) {
      // Beyond what one cyclic block holds: discard the rest, report it not taken.
      const room = Math.max(0, this.chunk - this.pendingBytes);
      if (room) this.pending.push(data.subarray(0, room));
      this.pendingBytes += room;
    } else {
      this.pending.push(data);
      this.pendingBytes += data.length;
    }
    if (!this.w.cyclic) await this.flush(false);
  }

  /** Pushes what whole scans remain; resolves with the bytes accepted, or a negative errno. */
  async finish(): Promise<number> {
    await this.flush(true);
    return this.error ? negErrno(this.error) : this.accepted;
  }

  private async flush(all: boolean): Promise<void> {
    const { scan, chunk } = this;
    while (this.pendingBytes >= (all ? scan : chunk) && this.pendingBytes >= scan) {
      const joined = Buffer.concat(this.pending);
      const take = Math.floor(Math.min(joined.length, chunk) / scan) * scan;
      const rest = joined.subarray(take);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
      if (this.error) continue;
      try {
        await this.w.buffer.push(joined.subarray(0, take));
        this.accepted += take;
      } catch (err) {
        this.error = err;
      }
    }
  }
}
