/**
 * READBUF replies turned into blocks, for both input streams (a connection of its own,
 * stream.ts, or the shared one of a UART, shared-stream.ts). A reply is a series of
 * chunks `<len>\n[<mask>\n only in the first]<len bytes>`, ended when the bytes asked
 * for were sent, by `0\n` (another client changed iiod's mask), or by `-errno\n`.
 *
 * Data always reach the caller in the layout of the channels it asked for: when another
 * client widened iiod's channel mask, iiod sends the wider scans (with the new mask) and
 * we pick our channels out. Blocks go to the stream's BlockQueue as soon as they are
 * full, whole or not at all: the scans of a dropped half-filled block are counted lost.
 */
import { IioError, type IioErrorContext } from '../../errors';
import { computeScanLayout, type ScanLayout } from '../../format/layout';
import { ProtocolError } from '../../iiod-protocol/wire';
import type { BlockQueue } from '../../model/block-queue';
import type { RawBlock } from '../../model/backend';
import { ChannelMask } from '../../model/channel-mask';
import type { DeviceInfo } from '../../model/info';
import { channelKindOf } from '../../names/channel-type';
import type { Connection } from './connection';

/** How many READBUF requests a dedicated connection keeps queued ahead. */
export const PIPELINE = 2;
/** How many filled blocks may wait for the reader before we stop asking for more. */
export const MAX_READY = 4;
/**
 * A READBUF asks for several blocks when blocks are small: iiod then streams refill
 * after refill without waiting for its parser thread between them. Each block is still
 * handed out as soon as it is full.
 */
const REQUEST_BYTES = 1 << 20;
const MAX_BLOCKS_PER_REQUEST = 16;
/** Block memory kept for reuse: what can be in flight and waiting at once. */
const KEEP_FREE = MAX_READY + PIPELINE;

/** The layout of the channels of `mask` in scans of `dev` (the kernel's rule). */
export function layoutOf(dev: DeviceInfo, mask: ChannelMask): ScanLayout {
  const els = dev.channels
    .map((c, i) => ({ c, i }))
    .filter(({ c, i }) => mask.has(i) && c.isScanElement && c.format && c.index >= 0)
    .map(({ c, i }) => ({ key: i, index: c.index, format: c.format! }));
  return computeScanLayout(els);
}

export interface ReadbufOptions {
  /** Scans per block. */
  readonly samples: number;
  /** Our channels and their layout. */
  readonly mask: ChannelMask;
  readonly layout: ScanLayout;
  /** The device as the context describes it now (a mask line is read against it). */
  readonly device: () => DeviceInfo;
  /** Where full blocks go. */
  readonly queue: BlockQueue<RawBlock>;
  /** A block came back (the pump may ask for more). */
  readonly onRelease?: () => void;
}

/** Where a block's scans carry a 64-bit nanosecond timestamp, if they do. */
interface TimestampSlot {
  readonly offset: number;
  readonly bigEndian: boolean;
}

/** The timestamp channel of a layout, when it has one in 64 bits (IIO's own). */
function timestampSlot(dev: DeviceInfo, layout: ScanLayout): TimestampSlot | undefined {
  for (const s of layout.slots) {
    const c = dev.channels[s.key];
    if (!c || channelKindOf(c.id).type !== 'timestamp' || c.format?.length !== 64) continue;
    if (c.format.repeat > 1 || c.format.shift !== 0) continue;
    return { offset: s.offset, bigEndian: c.format.isBigEndian };
  }
  return undefined;
}

/**
 * What an outage cost, in scans: measured from the timestamps when the scans carry
 * them, else from the device's rate (its `sampling_frequency`, or its trigger's), else
 * from the rate the scans arrived at while they were flowing — never over a time that
 * includes an outage (issue 15: dividing by the time since the first block, outages
 * included, was 50% off).
 */
class OutageCounter {
  /** The last delivered scan's timestamp (ns), and the period seen between scans. */
  private lastTs?: bigint;
  private periodNs?: number;
  private spanNs = 0;
  private spanScans = 0;
  /** When the scans received last arrived (Date.now()). */
  private lastDataAt = 0;
  /** Streaming since the last (re)open: the first chunk's arrival, and scans since it. */
  private flowSince = 0;
  private flowScans = 0;
  private flowRate = 0;
  /** An outage not yet charged: the device rate, the first chunk after it. */
  private outage?: { rate?: number; firstChunk?: { at: number; scans: number } };
  /** Taken when the outage began: the flow's rate and its last scans' arrival. */
  private flowRateBefore = 0;
  private lastBefore = 0;

  constructor(
    private readonly ts: TimestampSlot | undefined,
    private readonly scanBytes: number,
  ) {}

  /** Scans arrived (a chunk of a READBUF reply, in our layout). */
  chunk(scans: number, at = Date.now()): void {
    if (!scans) return;
    if (this.outage && !this.outage.firstChunk) this.outage.firstChunk = { at, scans };
    if (!this.flowSince) this.flowSince = at;
    else {
      this.flowScans += scans;
      const s = (at - this.flowSince) / 1000;
      // over less than half a second it is mostly the first burst (what the device
      // buffered before the first read): not trusted
      if (s >= 0.5) this.flowRate = this.flowScans / s;
    }
    this.lastDataAt = at;
  }

  private stamp(data: Buffer, scan: number): bigint {
    const off = scan * this.scanBytes + this.ts!.offset;
    return this.ts!.bigEndian ? data.readBigInt64BE(off) : data.readBigInt64LE(off);
  }

  /**
   * The connection was lost: what follows is charged to the next block. The flow before
   * the outage (its rate, its last scans' arrival) is what a rate estimate starts from.
   */
  begin(): void {
    if (!this.outage) {
      this.flowRateBefore = this.flowRate;
      this.lastBefore = this.lastDataAt;
      this.outage = {};
    }
    this.flowSince = 0;
    this.flowScans = 0;
    this.flowRate = 0;
  }

  /** The device's rate, read once the server is back (undefined: unknown). */
  setRate(rate: number | undefined): void {
    if (this.outage && rate !== undefined && Number.isFinite(rate) && rate > 0)
      this.outage.rate = rate;
  }

  /**
   * A block is handed out: returns the scans lost before it (`partial`: those of a block
   * dropped half-filled), and remembers its last timestamp.
   */
  deliver(data: Buffer, partial: number): number {
    const n = Math.floor(data.length / this.scanBytes);
    let lost = partial;
    const o = this.outage;
    if (o) {
      this.outage = undefined;
      lost = this.estimate(o, data, partial);
    }
    if (this.ts && n > 0) {
      const first = this.stamp(data, 0);
      const last = this.stamp(data, n - 1);
      // the mean period within blocks (never across a gap between them), over the whole
      // stream: one block's is at the mercy of a jittery timer
      if (n > 1 && last > first) {
        this.spanNs += Number(last - first);
        this.spanScans += n - 1;
        this.periodNs = this.spanNs / this.spanScans;
      }
      this.lastTs = last;
    }
    return lost;
  }

  private estimate(o: NonNullable<OutageCounter['outage']>, data: Buffer, partial: number): number {
    // timestamps: the gap between the last scan handed out and this block's first
    if (this.ts && this.lastTs !== undefined && data.length >= this.scanBytes) {
      // the period the scans themselves show, else the device's
      const period = this.periodNs ?? (o.rate ? 1e9 / o.rate : undefined);
      const gap = Number(this.stamp(data, 0) - this.lastTs);
      if (period && gap > 0) return Math.max(0, Math.round(gap / period) - 1);
    }
    // a rate: the scans made between the last ones received and the first chunk's first
    // A device cannot deliver faster than it samples: when the scans flowed faster than
    // its sampling_frequency says, that attribute is not the buffer's rate (another
    // clock domain, a decimator), and the flow is the better measure.
    const rate = Math.max(o.rate ?? 0, this.flowRateBefore);
    if (!rate || !o.firstChunk || !this.lastBefore) return partial;
    const seconds = (o.firstChunk.at - this.lastBefore) / 1000;
    return partial + Math.max(0, Math.round(rate * seconds - o.firstChunk.scans));
  }
}

export class ReadbufBlocks {
  readonly blockBytes: number;
  /** Scans lost since the last block handed out; the next block carries them. */
  pendingLost = 0;
  /** Scans received. */
  received = 0;
  private readonly outages: OutageCounter;
  private fill?: { buf: Buffer; used: number };
  private free: Buffer[] = [];
  private serverMask: ChannelMask;
  private serverLayout: ScanLayout;

  constructor(private readonly o: ReadbufOptions) {
    this.blockBytes = o.samples * o.layout.scanBytes;
    this.serverMask = o.mask;
    this.serverLayout = o.layout;
    this.outages = new OutageCounter(timestampSlot(o.device(), o.layout), o.layout.scanBytes);
  }

  /**
   * The server went away: the half-filled block is dropped and what the outage costs is
   * charged to the first block after it (see OutageCounter).
   */
  beginOutage(): void {
    this.outages.begin();
  }

  /** The device's rate, read once the server is back (undefined when unknown). */
  setDeviceRate(rate: number | undefined): void {
    this.outages.setRate(rate);
  }

  /** The bytes a READBUF asks for `scans` scans in the server's current layout. */
  bytesFor(scans: number): number {
    return scans * this.serverLayout.scanBytes;
  }

  /** Scans a pipelined READBUF asks for: whole blocks, about REQUEST_BYTES. */
  get scansPerRequest(): number {
    const per = Math.max(
      1,
      Math.min(MAX_BLOCKS_PER_REQUEST, Math.floor(REQUEST_BYTES / this.blockBytes)),
    );
    return per * this.o.samples;
  }

  /** Scans still missing from the block being filled. */
  get scansToFill(): number {
    return this.o.samples - Math.floor((this.fill?.used ?? 0) / this.o.layout.scanBytes);
  }

  private takeBuffer(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.blockBytes);
  }

  private deliver(buf: Buffer, length: number): void {
    let released = false;
    const lost = this.outages.deliver(buf.subarray(0, length), this.pendingLost);
    this.pendingLost = 0;
    this.o.queue.push({
      data: buf.subarray(0, length),
      lost: lost || undefined,
      release: () => {
        if (released) return;
        released = true;
        if (this.free.length < KEEP_FREE && buf.length === this.blockBytes) this.free.push(buf);
        this.o.onRelease?.();
      },
    });
  }

  /** Appends whole scans (in our layout) to the block being filled. */
  private appendOurs(src: Buffer): void {
    let off = 0;
    while (off < src.length) {
      if (!this.fill) this.fill = { buf: this.takeBuffer(), used: 0 };
      const n = Math.min(src.length - off, this.blockBytes - this.fill.used);
      src.copy(this.fill.buf, this.fill.used, off, off + n);
      this.fill.used += n;
      off += n;
      this.completeFill();
    }
  }

  private completeFill(): void {
    if (this.fill && this.fill.used === this.blockBytes) {
      const f = this.fill;
      this.fill = undefined;
      this.deliver(f.buf, this.blockBytes);
    }
  }

  /** Converts scans of the server's layout into ours. */
  private convert(src: Buffer, scans: number): Buffer {
    const ours = this.o.layout;
    const out = Buffer.allocUnsafe(scans * ours.scanBytes);
    const from = this.serverLayout;
    const slots = ours.slots.map((s) => ({
      to: s.offset,
      from: from.slots.find((x) => x.key === s.key)?.offset ?? -1,
      bytes: s.bytes,
    }));
    if (slots.some((s) => s.from < 0)) {
      throw new ProtocolError('iiod sent a channel mask without channels this buffer asked for');
    }
    for (let i = 0; i < scans; i++) {
      const so = i * from.scanBytes;
      const oo = i * ours.scanBytes;
      for (const s of slots) src.copy(out, oo + s.to, so + s.from, so + s.from + s.bytes);
    }
    return out;
  }

  private setServerMask(hex: string): void {
    const device = this.o.device();
    let m: ChannelMask;
    try {
      m = ChannelMask.fromHex(device.channels.length, hex);
    } catch (err) {
      throw new ProtocolError(`bad channel mask line: ${(err as Error).message}`);
    }
    if (m.equals(this.serverMask)) return;
    if (!m.contains(this.o.mask)) {
      throw new ProtocolError(
        `iiod's channel mask ${hex} lacks channels of ${this.o.mask.toHex()}`,
      );
    }
    this.serverMask = m;
    this.serverLayout = m.equals(this.o.mask) ? this.o.layout : layoutOf(device, m);
  }

  /** Reads one READBUF reply of at most `asked` bytes; iiod's error rejects (with `ctx`). */
  async readReply(c: Connection, asked: number, ctx: IioErrorContext): Promise<void> {
    const scanBytes = this.o.layout.scanBytes;
    let got = 0;
    let first = true;
    let carry: Buffer | undefined;
    while (got < asked) {
      const n = await c.readInteger();
      if (n < 0) throw IioError.fromErrno(n, ctx);
      if (n === 0) break; // iiod ends early (the mask changed): ask again
      if (n > asked - got) {
        throw new ProtocolError(`a READBUF chunk of ${n} bytes exceeds the ${asked - got} left`);
      }
      if (first) {
        this.setServerMask(await c.reader.readLine(1024));
        first = false;
      }
      got += n;
      if (this.serverLayout === this.o.layout) {
        // Straight into the block: one copy from the socket.
        let left = n;
        while (left > 0) {
          if (!this.fill) this.fill = { buf: this.takeBuffer(), used: 0 };
          const k = Math.min(left, this.blockBytes - this.fill.used);
          await c.reader.readInto(this.fill.buf, this.fill.used, k);
          this.fill.used += k;
          left -= k;
          const scans = Math.floor(k / scanBytes);
          this.received += scans;
          this.outages.chunk(scans);
          this.completeFill();
        }
      } else {
        let data = await c.reader.readExact(n);
        if (carry) data = Buffer.concat([carry, data]);
        const sb = this.serverLayout.scanBytes;
        const scans = Math.floor(data.length / sb);
        carry = data.length % sb ? data.subarray(scans * sb) : undefined;
        this.received += scans;
        this.outages.chunk(scans);
        this.appendOurs(this.convert(data, scans));
      }
    }
    if (carry) this.pendingLost += 1; // a scan cut by a mask change mid-request
  }

  /** Drops the half-filled block (its scans are counted lost): a block is whole or not at all. */
  dropFill(): void {
    if (this.fill) {
      this.pendingLost += Math.floor(this.fill.used / this.o.layout.scanBytes);
      this.free.push(this.fill.buf);
      this.fill = undefined;
    }
  }
}
