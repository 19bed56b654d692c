/**
 * Buffers over a link that carries a single connection (a UART: `serial:`). As libiio's
 * serial backend does, every buffer exchange runs on the context's one connection,
 * between its other requests: `OPEN`, then one `READBUF` per refill (or one `WRITEBUF`
 * per push), then `CLOSE`. Each exchange is a request of the control channel, with its
 * deadline; nothing is pipelined, so attribute requests are never starved by a stream.
 *
 * iiod keeps a device opened by "the client on the UART" across our reconnections (the
 * wire does not tell it we went away), so after a lost connection or a timed-out refill
 * the device is closed and opened again before the next exchange.
 */
import { IioError } from '../../errors';
import type { BufferOpenOptions, RawBlock } from '../../model/backend';
import type { DeviceInfo } from '../../model/info';
import { simpleCommand } from './ascii';
import type { Connection } from './connection';
import { isConnectionLoss } from './reconnector';
import { IiodStream, writebuf, type StreamHost } from './stream-base';

type Runner = NonNullable<StreamHost['runShared']>;

/** True for the errors after which iiod's state for our device is unknown. */
function inDoubt(e: IioError): boolean {
  return e.code === 'ETIMEDOUT' || e.code === 'ENOTCONN' || e.code === 'EIO' || isConnectionLoss(e);
}

/** A buffer on the shared connection: whether iiod has our OPEN in force, OPEN and CLOSE. */
abstract class SharedStream extends IiodStream {
  protected readonly run: Runner;
  /** Whether iiod has our OPEN in force. */
  protected opened = false;

  constructor(host: StreamHost, device: DeviceInfo, options: BufferOpenOptions) {
    super(host, device, options);
    const run = host.runShared?.bind(host);
    if (!run) throw new IioError('EINVAL', 'internal: a shared stream needs a shared connection');
    this.run = run as Runner;
  }

  async start(): Promise<void> {
    await this.open(false);
  }

  /** OPEN (with SET BUFFERS_COUNT first when asked, after a CLOSE when `closeFirst`). */
  protected async open(closeFirst: boolean): Promise<void> {
    const ctx = this.ctx('open buffer');
    const dev = this.deviceNow();
    const setCount = this.buffersCountLine(dev);
    const line = this.openLine(dev);
    const r = await this.run('open buffer', ctx, async (c: Connection) => {
      if (closeFirst) {
        // iiod may still have the device open for us (-6 / -9 when it has not)
        await simpleCommand(c, `CLOSE ${dev.id}`);
      }
      if (setCount) {
        const n = await simpleCommand(c, setCount);
        if (n < 0) return n;
      }
      return simpleCommand(c, line);
    });
    if (r < 0) throw IioError.fromErrno(r, ctx);
    this.opened = true;
  }

  /** CLOSE, queued after an exchange in flight, if any (iiod answers in order). */
  protected async closeShared(): Promise<void> {
    if (!this.opened) return;
    this.opened = false;
    await this.run('close buffer', this.ctx('close buffer'), (c) =>
      simpleCommand(c, `CLOSE ${this.device.id}`),
    ).catch(() => undefined);
  }
}

/** An input buffer on the shared connection: one READBUF per refill, as libiio. */
export class SharedInputStream extends SharedStream {
  private readonly parts = this.inputParts();
  private readonly blocks = this.parts.blocks;
  private readonly readbuf = this.parts.readbuf;
  private refilling = false;

  override read(): Promise<RawBlock> {
    if (this.closed) {
      return Promise.reject(this.closedError('refill'));
    }
    const waits = !this.blocks.size && !this.blocks.waiting;
    const p = this.blocks.take();
    if (waits) void this.refill();
    return p;
  }

  /** READBUF exchanges until the waiting read() has its block. */
  private async refill(): Promise<void> {
    if (this.refilling) return;
    this.refilling = true;
    try {
      while (this.blocks.waiting && !this.closed && !this.blocks.size) {
        try {
          if (!this.opened) await this.open(true);
          const asked = this.readbuf.bytesFor(this.readbuf.scansToFill);
          const ctx = this.ctx('refill');
          await this.run('refill', ctx, async (c) => {
            c.send(`READBUF ${this.device.id} ${asked}\r\n`);
            await this.readbuf.readReply(c, asked, ctx);
          });
        } catch (err) {
          const e = IioError.wrap(err, this.ctx('refill'));
          if (this.closed) return;
          this.readbuf.dropFill();
          if (inDoubt(e)) this.opened = false;
          const lost = isConnectionLoss(e) || e.code === 'ENOTCONN';
          const rc = this.host.reconnector;
          if (lost && rc.enabled) {
            // the context reconnects; the read waits for it (close() ends the wait)
            await rc.whenConnected().catch(() => undefined);
            continue;
          }
          this.blocks.fail(e);
          return;
        }
      }
    } finally {
      this.refilling = false;
    }
  }

  cancel(): void {
    this.blocks.rejectWaiters(this.parts.cancelled());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancel();
    this.blocks.clear();
    await this.closeShared();
  }
}

/** An output buffer on the shared connection: one WRITEBUF per kernel buffer. */
export class SharedOutputStream extends SharedStream {
  private readonly pushes = this.outputPushes((chunk) => this.pushOne(chunk));

  override write(data: Buffer): Promise<void> {
    return this.pushes.push(data);
  }

  private async pushOne(chunk: Buffer): Promise<void> {
    if (this.pushes.cancelled) throw this.pushes.cancelled;
    const ctx = this.ctx('push');
    try {
      if (!this.opened) await this.open(true);
      await this.run('push', ctx, (c) => writebuf(c, this.device.id, chunk, ctx));
    } catch (err) {
      const e = IioError.wrap(err, ctx);
      if (inDoubt(e)) this.opened = false;
      throw e;
    }
  }

  async drain(): Promise<void> {
    await this.pushes.drain();
  }

  /**
   * A WRITEBUF in flight cannot be stopped without dropping the context's only
   * connection: cancel() stops the push after it (its remaining kernel buffers fail).
   */
  cancel(): void {
    if (!this.pushes.busy) return;
    this.pushes.cancelled = new IioError('ECANCELED', 'the push was cancelled', this.ctx('push'));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.pushes.drain();
    this.closed = true;
    await this.closeShared();
  }
}
