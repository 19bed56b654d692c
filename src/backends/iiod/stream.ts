/**
 * Buffers of iiod devices with a connection of their own (as libiio: one per open
 * buffer, over TCP or a USB pipe): `OPEN dev samples mask`, then READBUF (input) or
 * WRITEBUF (output), in the ASCII protocol.
 *
 * Input keeps two READBUF requests queued on the connection so iiod never waits for a
 * round trip between blocks (libiio asks for the next block only after the last one
 * arrived). Through an outage the buffer waits for the context to reconnect, reopens,
 * and counts what the outage cost.
 */
import { IioError } from '../../errors';
import type { RawBlock } from '../../model/backend';
import { simpleCommand } from './ascii';
import { withDeadline, type Connection } from './connection';
import { MAX_READY, PIPELINE } from './readbuf';
import { isConnectionLoss } from './reconnector';
import { IiodStream, writebuf } from './stream-base';

/** A stream with a connection of its own: OPEN on it, CLOSE and EXIT or a hang-up to end. */
abstract class DedicatedStream extends IiodStream {
  protected conn?: Connection;

  /** Opens a connection and sends OPEN; rejects with iiod's error. */
  protected async openConnection(): Promise<Connection> {
    const dev = this.deviceNow();
    const c = await this.host.connectStream();
    // On the buffer's own connection, which is always ASCII (1.0's binary protocol has
    // no such command); iiod refuses it once the buffer is enabled.
    const setCount = this.buffersCountLine(dev);
    if (setCount) await this.command(c, setCount, 'set kernel buffers count');
    await this.command(c, this.openLine(dev), 'open buffer');
    return c;
  }

  /** One set-up command under the deadline; a failure drops the connection. */
  private async command(c: Connection, line: string, op: string): Promise<void> {
    let r: number;
    try {
      r = await withDeadline(c, this.host.timeoutMs(), this.host.uri, simpleCommand(c, line));
    } catch (err) {
      c.kill(IioError.wrap(err));
      throw err;
    }
    if (r < 0) {
      c.kill(new IioError('EBADF', `${op} failed`));
      throw IioError.fromErrno(r, this.ctx(op));
    }
  }

  /** Polite close when the connection is idle (CLOSE, EXIT), else just hang up. */
  protected async hangUp(idle: boolean): Promise<void> {
    const c = this.conn;
    this.conn = undefined;
    if (!c?.alive) return;
    if (idle) {
      try {
        await withDeadline(
          c,
          Math.min(this.host.timeoutMs() || 1000, 1000),
          this.host.uri,
          simpleCommand(c, `CLOSE ${this.device.id}`),
        );
        c.send('EXIT\r\n');
        await c.transport.drain();
      } catch {
        // closing anyway
      }
    }
    c.kill(new IioError('EBADF', 'the buffer is closed'));
    // a transport that can tell (USB) says when the server has let go of the device
    await c.transport.settled?.();
  }
}

/** An input buffer: READBUF, pipelined. */
export class IiodInputStream extends DedicatedStream {
  private readonly parts = this.inputParts(() => this.wake?.());
  private readonly blocks = this.parts.blocks;
  private readonly readbuf = this.parts.readbuf;
  private running = false;
  private wake?: () => void;
  /** When the first scans arrived (to estimate what an outage cost). */
  private since = 0;
  private generation = 0;
  private resuming = false;

  /** Opens the connection (the caller awaits this before handing the buffer out). */
  async start(): Promise<void> {
    this.conn = await this.openConnection();
    this.launch();
  }

  private launch(): void {
    if (this.running || this.closed) return;
    this.running = true;
    const gen = ++this.generation;
    void this.pump(gen).finally(() => {
      if (gen === this.generation) this.running = false;
    });
  }

  private async pump(gen: number): Promise<void> {
    let inflight: number[] = [];
    const c = this.conn;
    if (!c) return;
    // a connection that dies while we wait for the reader must still be noticed
    c.onDeath(() => this.wake?.());
    try {
      while (!this.closed && gen === this.generation) {
        if (!c.alive) throw c.error ?? new IioError('ECONNRESET', 'the connection was lost');
        // at most MAX_READY + PIPELINE requests' blocks wait for a slow reader
        while (inflight.length < PIPELINE && this.blocks.size < MAX_READY) {
          const asked = this.readbuf.bytesFor(this.readbuf.scansPerRequest);
          c.send(`READBUF ${this.device.id} ${asked}\r\n`);
          inflight.push(asked);
        }
        if (!inflight.length) {
          await new Promise<void>((r) => (this.wake = r));
          this.wake = undefined;
          continue;
        }
        await this.readbuf.readReply(c, inflight[0], this.ctx('refill'));
        inflight = inflight.slice(1);
        if (!this.since) this.since = Date.now();
      }
    } catch (err) {
      if (gen !== this.generation || this.closed) return;
      this.failed(IioError.wrap(err, this.ctx('refill')), c);
    }
  }

  /** The connection broke or iiod answered an error. */
  private failed(e: IioError, c: Connection): void {
    if (c.alive) c.kill(e);
    if (this.conn === c) this.conn = undefined;
    this.readbuf.dropFill();
    this.outageOrFailure(e);
  }

  /**
   * A lost server: the context reconnects and the buffer waits for it. Anything else: a
   * waiting read() gets the error, else the next one (the one after it reopens).
   */
  private outageOrFailure(e: IioError): void {
    const rc = this.host.reconnector;
    if (isConnectionLoss(e) && rc.enabled) {
      rc.lost(e);
      void this.resume(Date.now());
    } else this.blocks.fail(e);
  }

  /** Waits for the context to reconnect, then reopens and counts what the outage cost. */
  private async resume(outageStart: number): Promise<void> {
    const gen = ++this.generation;
    this.running = false;
    this.resuming = true;
    // no refill deadline while the server is away: close() ends the wait
    this.blocks.disarmWaiters();
    try {
      await this.reopenAfterOutage(gen, outageStart);
    } finally {
      if (gen === this.generation) this.resuming = false;
    }
    if (this.conn) this.armRefill();
  }

  private async reopenAfterOutage(gen: number, outageStart: number): Promise<void> {
    const wanted = (): boolean => !this.closed && gen === this.generation;
    let c: Connection | undefined;
    try {
      c = await this.host.reconnector.resume(() => this.openConnection(), wanted);
    } catch (err) {
      if (wanted()) this.blocks.fail(IioError.wrap(err, this.ctx('reopen buffer')));
      return;
    }
    if (!c) return;
    if (!wanted()) {
      c.kill(new IioError('EBADF', 'the buffer is closed'));
      return;
    }
    this.conn = c;
    const rb = this.readbuf;
    const elapsed = (Date.now() - outageStart) / 1000;
    const rate = this.since ? rb.received / Math.max(0.001, (outageStart - this.since) / 1000) : 0;
    rb.pendingLost += Math.round(rate * elapsed);
    this.resuming = false;
    this.launch();
  }

  override read(): Promise<RawBlock> {
    if (this.closed) {
      return Promise.reject(this.closedError('refill'));
    }
    const waits = !this.blocks.size && !this.blocks.waiting;
    const p = this.blocks.take();
    if (waits) {
      this.armRefill();
      if (!this.conn && !this.running && !this.resuming) void this.reopen();
      else this.wake?.();
    }
    return p;
  }

  /**
   * Starts the refill deadline. Not while the context reconnects: the stream then waits
   * for the server (the context reports `disconnected`/`reconnected`), ended by close().
   */
  private armRefill(): void {
    const t = this.host.timeoutMs();
    if (this.resuming) return;
    this.blocks.armWaiters(t, () => {
      const e = new IioError('ETIMEDOUT', `no data from iiod within ${t} ms`, this.ctx('refill'));
      // The reply may still come: this connection is dropped, the next read reopens.
      const c = this.conn;
      this.generation++;
      this.running = false;
      this.conn = undefined;
      if (c?.alive) c.kill(e);
      this.readbuf.dropFill();
      return e;
    });
  }

  /** After an error: a fresh connection, OPEN again, and go on. */
  private async reopen(): Promise<void> {
    const gen = ++this.generation;
    this.running = true;
    try {
      const c = await this.openConnection();
      if (this.closed || gen !== this.generation) {
        c.kill(new IioError('EBADF', 'the buffer is closed'));
        return;
      }
      this.conn = c;
      this.running = false;
      this.launch();
    } catch (err) {
      if (gen !== this.generation) return;
      this.running = false;
      this.outageOrFailure(IioError.wrap(err, this.ctx('reopen buffer')));
    }
  }

  cancel(): void {
    this.blocks.rejectWaiters(this.parts.cancelled());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    this.cancel();
    this.wake?.();
    this.blocks.clear();
    // A READBUF may be in flight: iiod would answer CLOSE only after it, so just hang up.
    await this.hangUp(false);
  }
}

/** An output buffer: WRITEBUF. */
export class IiodOutputStream extends DedicatedStream {
  private readonly pushes = this.outputPushes((chunk) => this.pushOne(chunk));

  async start(): Promise<void> {
    this.conn = await this.openConnection();
  }

  override write(data: Buffer): Promise<void> {
    return this.pushes.push(data);
  }

  private async pushOne(chunk: Buffer): Promise<void> {
    if (!this.conn?.alive) {
      try {
        this.conn = await this.openConnection();
      } catch (err) {
        const e = IioError.wrap(err, this.ctx('push'));
        if (isConnectionLoss(e)) this.host.reconnector.lost(e);
        throw e;
      }
    }
    const c = this.conn;
    const ctx = this.ctx('push');
    try {
      await withDeadline(
        c,
        this.host.timeoutMs(),
        this.host.uri,
        writebuf(c, this.device.id, chunk, ctx),
      );
    } catch (err) {
      // The exchange is in doubt: never reuse the connection.
      const e = this.pushes.cancelled ?? IioError.wrap(err, ctx);
      if (c.alive) c.kill(e);
      if (this.conn === c) this.conn = undefined;
      if (isConnectionLoss(e)) this.host.reconnector.lost(e);
      throw e;
    }
  }

  async drain(): Promise<void> {
    await this.pushes.drain();
  }

  cancel(): void {
    if (!this.pushes.busy || !this.conn) return;
    const e = new IioError('ECANCELED', 'the push was cancelled', this.ctx('push'));
    this.pushes.cancelled = e;
    this.conn.kill(e);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.pushes.drain();
    this.closed = true;
    await this.hangUp(true);
  }
}
