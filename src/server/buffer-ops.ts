/**
 * The buffers one client has open, and the rules for opening them, as iiod applies them
 * — answered with 0 or a negative errno, no wire format in sight. Inputs share the
 * device's stream (streams.ts: one hub per device, a bounded queue per reader); an
 * output device has one writer at a time. OutputWriter turns the bytes a client sends
 * into whole-scan pushes. The ASCII session (session.ts) frames all of this for libiio
 * 0.x; a binary framing can call the same functions.
 */
import type { ChannelMask } from '../model/channel-mask';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import { NEG, negErrno, type NegErrno } from './device-ops';
import { InputClient, OutputClient, type InputHub, type StreamSettings } from './streams';

/** Largest buffer accepted by an open, in bytes. */
const MAX_BUFFER_BYTES = 256 * 1024 * 1024;
/** Largest cyclic block gathered from one write. */
const MAX_CYCLIC_BYTES = 64 * 1024 * 1024;

/** What a session needs from its server: the context and the state sessions share. */
export interface SessionHost {
  readonly ctx: Context;
  readonly settings: StreamSettings;
  hubFor(device: Device): InputHub;
  /** The session writing to each output device (one at a time). */
  readonly writers: Map<Device, object>;
  /** Kernel buffer counts set by clients (SET BUFFERS_COUNT). */
  readonly bufferCounts: Map<Device, number>;
  log(message: string): void;
}

type Entry =
  | { readonly kind: 'in'; readonly client: InputClient }
  | { readonly kind: 'out'; readonly client: OutputClient };

/** Sets the kernel buffer count the next buffer of a device gets. */
export function setBuffersCount(
  host: SessionHost,
  dev: Device | null,
  count: number,
): 0 | NegErrno {
  if (!dev) return NEG.ENODEV;
  if (count < 1) return NEG.EINVAL;
  host.bufferCounts.set(dev, count);
  return 0;
}

/** The buffers one session (one client connection) has open, per device. */
export class SessionBuffers {
  /** Per device, what this session opened (most recent last, as iiod's list head). */
  private readonly opens = new Map<Device, Entry[]>();

  /** @param owner the session, as the host's `writers` names it. */
  constructor(
    private readonly host: SessionHost,
    private readonly owner: object,
  ) {}

  /** Readers open (for statistics). */
  get inputClients(): InputClient[] {
    return [...this.opens.values()].flat().flatMap((e) => (e.kind === 'in' ? [e.client] : []));
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
    const wire = requested.clone();
    for (const i of requested.indices()) if (!dev.channels[i]?.isScanElement) wire.clear(i);
    const channels = wire.indices().map((i) => dev.channels[i]);
    if (!channels.length) return NEG.EINVAL;
    if (samples <= 0) return NEG.EINVAL;
    const isOutput = channels[0].isOutput;
    if (channels.some((c) => c.isOutput !== isOutput)) return NEG.EINVAL;
    const scanEstimate = channels.reduce(
      (n, c) => n + ((c.format?.length ?? 8) / 8) * (c.format?.repeat ?? 1),
      0,
    );
    if (samples * Math.max(1, scanEstimate) > MAX_BUFFER_BYTES) return NEG.ENOMEM;
    const list = this.opens.get(dev) ?? [];
    if (isOutput) {
      if (this.host.writers.get(dev)) return NEG.EBUSY;
      this.host.writers.set(dev, this.owner);
      try {
        const blocks = this.host.bufferCounts.get(dev);
        const buffer = await dev.createBuffer(samples, {
          channels,
          cyclic,
          ...(blocks ? { blocks } : {}),
        });
        list.push({ kind: 'out', client: new OutputClient(buffer, samples, cyclic) });
      } catch (err) {
        this.host.writers.delete(dev);
        return negErrno(err);
      }
    } else {
      // Input buffers cannot be cyclic (libiio's local backend answers EPERM).
      if (cyclic) return NEG.EPERM;
      const client = new InputClient(this.host.hubFor(dev), wire, samples);
      try {
        await client.hub.add(client);
      } catch (err) {
        return negErrno(err);
      }
      list.push({ kind: 'in', client });
    }
    this.opens.set(dev, list);
    return 0;
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
    if (e.kind === 'in') await e.client.hub.remove(e.client).catch(() => undefined);
    else {
      await e.client.buffer.close().catch(() => undefined);
      if (this.host.writers.get(dev) === this.owner) this.host.writers.delete(dev);
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
