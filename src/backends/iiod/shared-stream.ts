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
import type { DeviceInfo } from '../../model/info';
import type { BufferOpenOptions, RawBlock } from '../../model/backend';
import { checkToken, simpleCommand } from './ascii';
import type { Connection } from './connection';
import { IiodInputStream, IiodOutputStream, isConnectionLoss, type StreamHost } from './stream';

type Runner = NonNullable<StreamHost['runShared']>;

function runnerOf(host: StreamHost): Runner {
  const run = host.runShared?.bind(host);
  if (!run) throw new IioError('EINVAL', 'internal: a shared stream needs a shared connection');
  return run as Runner;
}

/** True for the errors after which iiod's state for our device is unknown. */
function inDoubt(e: IioError): boolean {
  return e.code === 'ETIMEDOUT' || e.code === 'ENOTCONN' || e.code === 'EIO' || isConnectionLoss(e);
}

/**
 * OPEN (with SET BUFFERS_COUNT first when asked, after a CLOSE when `closeFirst`) on the
 * shared connection; resolves with the device as the context knows it now.
 */
async function openShared(
  run: Runner,
  host: StreamHost,
  id: string,
  blocks: number | undefined,
  lineOf: (dev: DeviceInfo) => string,
  ctx: { device: string; uri: string; op: string },
  closeFirst: boolean,
): Promise<DeviceInfo> {
  const dev = host.currentDevice(id);
  if (!dev) throw new IioError('ENODEV', 'the device is gone from the context', ctx);
  checkToken('device', dev.id);
  const line = lineOf(dev);
  const r = await run('open buffer', ctx, async (c: Connection) => {
    if (closeFirst) {
      // iiod may still have the device open for us (-6 / -9 when it has not)
      await simpleCommand(c, `CLOSE ${dev.id}`);
    }
    if (blocks !== undefined) {
      const n = await simpleCommand(c, `SET ${dev.id} BUFFERS_COUNT ${blocks}`);
      if (n < 0) return n;
    }
    return simpleCommand(c, line);
  });
  if (r < 0) throw IioError.fromErrno(r, ctx);
  return dev;
}

/** An input buffer on the shared connection: one READBUF per refill, as libiio. */
export class SharedInputStream extends IiodInputStream {
  private readonly run: Runner;
  /** Whether iiod has our OPEN in force. */
  private opened = false;
  private refilling = false;

  constructor(host: StreamHost, device: DeviceInfo, options: BufferOpenOptions) {
    super(host, device, options);
    this.run = runnerOf(host);
  }

  override async start(): Promise<void> {
    await this.open(false);
  }

  private async open(closeFirst: boolean): Promise<void> {
    this.device = await openShared(
      this.run,
      this.host,
      this.device.id,
      this.options.blocks,
      (d) => this.openLine(d),
      this.ctx('open buffer'),
      closeFirst,
    );
    this.opened = true;
  }

  override read(): Promise<RawBlock> {
    if (this.closed) {
      return Promise.reject(new IioError('EBADF', 'the buffer is closed', this.ctx('refill')));
    }
    const b = this.ready.shift();
    if (b) return Promise.resolve(b);
    if (this.failure) {
      const e = this.failure;
      this.failure = undefined;
      return Promise.reject(e);
    }
    if (this.waiter) {
      return Promise.reject(
        new IioError('EBUSY', 'a refill is already pending', this.ctx('refill')),
      );
    }
    return new Promise<RawBlock>((resolve, reject) => {
      this.waiter = { resolve, reject };
      void this.refill();
    });
  }

  /** READBUF exchanges until the waiting read() has its block. */
  private async refill(): Promise<void> {
    if (this.refilling) return;
    this.refilling = true;
    try {
      while (this.waiter && !this.closed && !this.ready.length) {
        try {
          if (!this.opened) await this.open(true);
          const scansLeft =
            this.options.samples - Math.floor((this.fill?.used ?? 0) / this.layout.scanBytes);
          const asked = scansLeft * this.serverLayout.scanBytes;
          await this.run('refill', this.ctx('refill'), async (c) => {
            c.send(`READBUF ${this.device.id} ${asked}\r\n`);
            await this.readReply(c, asked);
          });
        } catch (err) {
          const e = IioError.wrap(err, this.ctx('refill'));
          if (this.closed) return;
          this.dropFill();
          if (inDoubt(e)) this.opened = false;
          const lost = isConnectionLoss(e) || e.code === 'ENOTCONN';
          if (lost && this.host.reconnects) {
            // the context reconnects; the read waits for it (close() ends the wait)
            await this.host.whenConnected().catch(() => undefined);
            continue;
          }
          const w = this.waiter;
          this.waiter = undefined;
          if (w) w.reject(e);
          else this.failure = e;
          return;
        }
      }
    } finally {
      this.refilling = false;
    }
  }

  override cancel(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    w.reject(new IioError('ECANCELED', 'the refill was cancelled', this.ctx('refill')));
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancel();
    for (const b of this.ready.splice(0)) b.release();
    if (!this.opened) return;
    this.opened = false;
    // queued after a refill in flight, if any: iiod answers in order
    await this.run('close buffer', this.ctx('close buffer'), (c) =>
      simpleCommand(c, `CLOSE ${this.device.id}`),
    ).catch(() => undefined);
  }
}

/** An output buffer on the shared connection: one WRITEBUF per kernel buffer. */
export class SharedOutputStream extends IiodOutputStream {
  private readonly run: Runner;
  private opened = false;

  constructor(host: StreamHost, device: DeviceInfo, options: BufferOpenOptions) {
    super(host, device, options);
    this.run = runnerOf(host);
  }

  override async start(): Promise<void> {
    await this.open(false);
  }

  private async open(closeFirst: boolean): Promise<void> {
    this.device = await openShared(
      this.run,
      this.host,
      this.device.id,
      this.options.blocks,
      (d) => this.openLine(d),
      this.ctx('open buffer'),
      closeFirst,
    );
    this.opened = true;
  }

  protected override async pushOne(chunk: Buffer): Promise<void> {
    if (this.cancelled) throw this.cancelled;
    try {
      if (!this.opened) await this.open(true);
      await this.run('push', this.ctx('push'), (c) => this.exchange(c, chunk));
    } catch (err) {
      const e = IioError.wrap(err, this.ctx('push'));
      if (inDoubt(e)) this.opened = false;
      throw e;
    }
  }

  /**
   * A WRITEBUF in flight cannot be stopped without dropping the context's only
   * connection: cancel() stops the push after it (its remaining kernel buffers fail).
   */
  override cancel(): void {
    if (!this.busy) return;
    this.cancelled = new IioError('ECANCELED', 'the push was cancelled', this.ctx('push'));
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    if (!this.opened) return;
    this.opened = false;
    await this.run('close buffer', this.ctx('close buffer'), (c) =>
      simpleCommand(c, `CLOSE ${this.device.id}`),
    ).catch(() => undefined);
  }
}
