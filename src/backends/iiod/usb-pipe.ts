/**
 * One pipe of iiod's USB function (usb.ts has the link: the device, its interface, the
 * pipes' allocation): a bulk IN/OUT endpoint couple carrying one connection, read on
 * demand. Two things differ from a TCP stream and shape this file:
 * - iiod reads each OUT transfer as a whole (a command line, or a payload by length):
 *   every write stays in its own transfers, and a command whose length is a multiple of
 *   the packet size gets a zero-length packet to end it.
 * - A bulk IN transfer completes when full or on a short packet: asking for more than
 *   iiod is bound to send could wait forever. We read only on demand: whole packets of
 *   what a payload still owes, or one packet for a reply line.
 */
import type { IioError } from '../../errors';
import type { ReadResult, UsbCouple, UsbHost, WireError } from './usb-host';
import type { Transport, TransportSink, WriteKind } from './transport';

/** libiio's largest URB (usb_sync_transfer): bigger ones may fail with ENOMEM in usbfs. */
const MAX_TRANSFER = 1 << 20;
/** libusb's transfer status of a cancelled transfer. */
const TRANSFER_CANCELLED = 3;

/** What a pipe needs from the link that handed it out. */
export interface PipeOwner {
  readonly description: string;
  /** Maps a worker error; a vanished device becomes a lost link (LinkLostError). */
  transferError(host: UsbHost, err: unknown, what: string): IioError;
  /** The pipe's transfers have ended: give it back to iiod (CLOSE_PIPE). */
  release(host: UsbHost, pipe: number): void;
  /** Resolves when no CLOSE_PIPE is under way for `pipe`. */
  pipeClosed(pipe: number): Promise<void>;
}

/** A queued write: one message (see WriteKind). */
interface Pending {
  readonly data: Buffer;
  readonly zlp: boolean;
}

/** One pipe: a bulk IN/OUT endpoint couple, read on demand. */
export class UsbPipeTransport implements Transport {
  readonly description: string;
  private sink?: TransportSink;
  private readBusy = false;
  private writing = false;
  private queue: Pending[] = [];
  private drained: Array<() => void> = [];
  private ended = false;
  private released = false;
  private pendingEnd?: { error?: Error };
  closed = false;

  constructor(
    private readonly link: PipeOwner,
    private readonly host: UsbHost,
    readonly pipe: number,
    private readonly couple: UsbCouple,
  ) {
    this.description = `${link.description} pipe ${pipe}`;
  }

  /**
   * Reads and drops what a previous user of the pipe left behind (a reply iiod wrote
   * after that client went away, or "-22" from a session that ended without EXIT),
   * until the pipe stays quiet for `quietMs`. libiio's own client does not, which is
   * why it fails on the second connection to a gadget. The timer is ours: the prebuilt
   * libusb may check transfer timeouts only when its event loop wakes (up to 60 s later);
   * a cancel wakes it at once.
   */
  async drainStale(quietMs: number): Promise<void> {
    for (let i = 0; i < 64; i++) {
      let quiet = false;
      const timer = setTimeout(() => {
        quiet = true;
        void this.host.request({ op: 'cancel', pipe: this.pipe }).catch(() => undefined);
      }, quietMs);
      try {
        await this.host.request<ReadResult>({
          op: 'read',
          pipe: this.pipe,
          length: this.couple.inPacket,
        });
      } catch (err) {
        if (quiet && (err as WireError).status && (err as WireError).errno === TRANSFER_CANCELLED) {
          return;
        }
        throw this.link.transferError(this.host, err, `read from ${this.description}`);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  attach(sink: TransportSink): void {
    this.sink = sink;
    sink.setWantListener?.(() => this.pumpRead());
    if (this.pendingEnd) {
      const e = this.pendingEnd.error;
      this.pendingEnd = undefined;
      sink.end(e);
      return;
    }
    this.pumpRead();
  }

  /** Asks for the IN transfer the sink's pending read needs, if any and none is under way. */
  private pumpRead(): void {
    if (this.readBusy || this.closed || !this.sink?.want) return;
    const want = this.sink.want();
    if (!want) return;
    const mps = this.couple.inPacket;
    let length: number;
    if (want.target && want.target.length >= mps) {
      // whole packets of what the payload still owes: iiod sends all of them
      length = Math.min(MAX_TRANSFER, want.target.length - (want.target.length % mps));
    } else {
      // whole packets covering what is owed (one for a reply line): such a transfer
      // never overflows, and ends on the short packet that closes iiod's write
      length = Math.min(MAX_TRANSFER, Math.max(mps, Math.ceil(want.atLeast / mps) * mps));
    }
    this.readBusy = true;
    this.host.request<ReadResult>({ op: 'read', pipe: this.pipe, length }).then(
      (r) => this.readDone(undefined, r),
      (err: unknown) => this.readDone(err),
    );
  }

  private readDone(err: unknown, r?: ReadResult): void {
    this.readBusy = false;
    if (this.closed) {
      this.maybeRelease();
      return;
    }
    if (err) {
      this.finish(this.link.transferError(this.host, err, `read from ${this.description}`));
      return;
    }
    if (r && r.n > 0) this.sink?.data(Buffer.from(r.data, 0, r.n), false);
    this.pumpRead();
  }

  write(data: Uint8Array, kind: WriteKind = 'data'): void {
    if (this.closed || !data.length) return;
    const buf = Buffer.isBuffer(data)
      ? data
      : Buffer.from(data.buffer, data.byteOffset, data.length);
    // iiod reads a command line with one large read: a transfer of whole packets would
    // not end it, a zero-length packet does. Payloads are read by length and must not
    // get one (iiod would take it for an empty read).
    this.queue.push({
      data: buf,
      zlp: kind === 'command' && buf.length % this.couple.outPacket === 0,
    });
    this.pumpWrite();
  }

  private pumpWrite(): void {
    if (this.writing || this.closed) return;
    const next = this.queue.shift();
    if (!next) {
      for (const r of this.drained.splice(0)) r();
      return;
    }
    this.writing = true;
    const piece = next.data.subarray(0, MAX_TRANSFER);
    const rest = next.data.subarray(piece.length);
    if (rest.length) this.queue.unshift({ data: rest, zlp: next.zlp });
    // a copy the worker takes over (the caller's memory may be reused or pooled)
    const ab = piece.buffer.slice(piece.byteOffset, piece.byteOffset + piece.length) as ArrayBuffer;
    this.host
      .request<number>({ op: 'write', pipe: this.pipe, data: ab, zlp: !rest.length && next.zlp }, [
        ab,
      ])
      .then(
        () => this.writeDone(),
        (err: unknown) => this.writeDone(err),
      );
  }

  private writeDone(err?: unknown): void {
    this.writing = false;
    if (this.closed) {
      this.maybeRelease();
      return;
    }
    if (err) {
      this.finish(this.link.transferError(this.host, err, `write to ${this.description}`));
      return;
    }
    this.pumpWrite();
  }

  drain(): Promise<void> {
    if (this.closed || (!this.queue.length && !this.writing)) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private finish(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.shutdown();
    if (this.sink) this.sink.end(error);
    else this.pendingEnd = { error };
  }

  /** Cancels what is under way; the pipe goes back (CLOSE_PIPE) once the transfers ended. */
  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    for (const r of this.drained.splice(0)) r();
    if (this.readBusy || this.writing) {
      void this.host.request({ op: 'cancel', pipe: this.pipe }).catch(() => undefined);
    }
    this.maybeRelease();
  }

  /** libusb must not close a handle with transfers pending: release after the last. */
  private maybeRelease(): void {
    if (this.released || this.readBusy || this.writing) return;
    this.released = true;
    this.link.release(this.host, this.pipe);
    for (const r of this.settledWaiters.splice(0)) r();
  }

  private settledWaiters: Array<() => void> = [];

  /** Resolves once the pipe was handed back and iiod's thread for it has ended. */
  async settled(): Promise<void> {
    if (!this.released) await new Promise<void>((r) => this.settledWaiters.push(r));
    await this.link.pipeClosed(this.pipe);
  }

  close(): void {
    this.finish();
  }
}
