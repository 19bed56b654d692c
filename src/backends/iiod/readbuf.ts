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

export class ReadbufBlocks {
  readonly blockBytes: number;
  /** Scans lost since the last block handed out; the next block carries them. */
  pendingLost = 0;
  /** Scans received (to estimate what an outage cost). */
  received = 0;
  private fill?: { buf: Buffer; used: number };
  private free: Buffer[] = [];
  private serverMask: ChannelMask;
  private serverLayout: ScanLayout;

  constructor(private readonly o: ReadbufOptions) {
    this.blockBytes = o.samples * o.layout.scanBytes;
    this.serverMask = o.mask;
    this.serverLayout = o.layout;
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
    const lost = this.pendingLost;
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
          this.received += Math.floor(k / scanBytes);
          this.completeFill();
        }
      } else {
        let data = await c.reader.readExact(n);
        if (carry) data = Buffer.concat([carry, data]);
        const sb = this.serverLayout.scanBytes;
        const scans = Math.floor(data.length / sb);
        carry = data.length % sb ? data.subarray(scans * sb) : undefined;
        this.received += scans;
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
