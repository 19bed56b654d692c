/**
 * What every buffer of an iiod context shares, whether it has a connection of its own
 * (stream.ts, as libiio over TCP and USB) or takes turns on the context's only one
 * (shared-stream.ts, a UART): the host it runs in, the buffer's layout and its ASCII
 * commands (buffers always use 0.x's ASCII protocol, which every iiod speaks), and the
 * output side's queue of pushes.
 */
import { IioError, type IioErrorContext } from '../../errors';
import type { ScanLayout } from '../../format/layout';
import { checkToken } from '../../iiod-protocol/ascii';
import { ProtocolError } from '../../iiod-protocol/wire';
import type { BackendBuffer, BufferOpenOptions, RawBlock } from '../../model/backend';
import type { ChannelMask } from '../../model/channel-mask';
import type { DeviceInfo } from '../../model/info';
import { BlockQueue } from '../../model/block-queue';
import type { Connection } from './connection';
import { layoutOf, ReadbufBlocks } from './readbuf';
import type { Reconnector } from './reconnector';

/** What a stream needs from its backend. */
export interface StreamHost {
  readonly uri: string;
  /** Current context timeout (ms, 0 = none). */
  timeoutMs(): number;
  /** Opens a new connection for a buffer. */
  connectStream(): Promise<Connection>;
  /** The context's reconnection: report a loss to it, wait for it. */
  readonly reconnector: Reconnector;
  /** The device as the (possibly reloaded) context describes it now. */
  currentDevice(id: string): DeviceInfo | undefined;
  /**
   * On links that carry one connection (a UART): runs an exchange on the control
   * connection, between the context's other requests (see shared-stream.ts).
   */
  runShared?<T>(op: string, ctx: IioErrorContext, body: (c: Connection) => Promise<T>): Promise<T>;
}

/** The device, its channels as the buffer sees them, and the ASCII lines about it. */
export abstract class IiodStream implements BackendBuffer {
  readonly mask: ChannelMask;
  protected closed = false;
  protected readonly layout: ScanLayout;
  protected device: DeviceInfo;

  constructor(
    protected readonly host: StreamHost,
    device: DeviceInfo,
    protected readonly options: BufferOpenOptions,
  ) {
    this.device = device;
    this.mask = options.mask.clone();
    this.layout = layoutOf(device, this.mask);
    if (this.layout.scanBytes === 0) {
      throw new IioError('EINVAL', 'no scan element among the channels asked for', {
        device: device.id,
      });
    }
  }

  protected ctx(op: string): { device: string; uri: string; op: string } {
    return { device: this.device.id, uri: this.host.uri, op };
  }

  /** EBADF for a call on a closed buffer. */
  protected closedError(op: string): IioError {
    return new IioError('EBADF', 'the buffer is closed', this.ctx(op));
  }

  /**
   * An input buffer's parts: the queue read() takes blocks from (one read() at a time,
   * as libiio's refill) and the READBUF replies turned into blocks for it.
   */
  protected inputParts(wake?: () => void): {
    blocks: BlockQueue<RawBlock>;
    readbuf: ReadbufBlocks;
    cancelled: () => IioError;
  } {
    const blocks = new BlockQueue<RawBlock>({
      busy: () => new IioError('EBUSY', 'a refill is already pending', this.ctx('refill')),
      onTake: wake,
    });
    const readbuf = new ReadbufBlocks({
      samples: this.options.samples,
      mask: this.mask,
      layout: this.layout,
      device: () => this.device,
      queue: blocks,
      onRelease: wake,
    });
    const cancelled = (): IioError =>
      new IioError('ECANCELED', 'the refill was cancelled', this.ctx('refill'));
    return { blocks, readbuf, cancelled };
  }

  /** An output buffer's pushes: `pushOne` runs one WRITEBUF per kernel buffer. */
  protected outputPushes(pushOne: (chunk: Buffer) => Promise<void>): PushQueue {
    return new PushQueue(this.options.samples * this.layout.scanBytes, pushOne, () =>
      this.closed ? this.closedError('push') : undefined,
    );
  }

  /** The device as the context knows it now (it may have reconnected to a changed server). */
  protected deviceNow(): DeviceInfo {
    const dev = this.host.currentDevice(this.device.id);
    if (!dev) {
      throw new IioError('ENODEV', 'the device is gone from the context', this.ctx('open buffer'));
    }
    checkToken('device', dev.id);
    this.device = dev;
    return dev;
  }

  /** `OPEN dev samples mask [CYCLIC]`. */
  protected openLine(dev: DeviceInfo): string {
    return `OPEN ${dev.id} ${this.options.samples} ${this.mask.toHex()}${this.options.cyclic ? ' CYCLIC' : ''}`;
  }

  /** `SET dev BUFFERS_COUNT n` when the caller asked for a number of kernel buffers. */
  protected buffersCountLine(dev: DeviceInfo): string | undefined {
    const n = this.options.blocks;
    return n === undefined ? undefined : `SET ${dev.id} BUFFERS_COUNT ${n}`;
  }

  /** Input buffers override it; an output buffer refuses. */
  read(): Promise<RawBlock> {
    return Promise.reject(new IioError('EPERM', 'read() on an output buffer', this.ctx('refill')));
  }

  /** Output buffers override it; an input buffer refuses. */
  write(_data: Buffer): Promise<void> {
    return Promise.reject(new IioError('EPERM', 'write() on an input buffer', this.ctx('push')));
  }

  abstract start(): Promise<void>;
  abstract cancel(): void;
  abstract close(): Promise<void>;
}

/** One WRITEBUF: the command, iiod's go-ahead, the samples, the count it took. */
export async function writebuf(
  c: Connection,
  deviceId: string,
  chunk: Buffer,
  ctx: IioErrorContext,
): Promise<void> {
  c.send(`WRITEBUF ${deviceId} ${chunk.length}\r\n`);
  // Wait for iiod's go-ahead: had it refused, our samples would be parsed as commands.
  const go = await c.readInteger();
  if (go < 0) throw IioError.fromErrno(go, ctx);
  if (go !== 0) throw new ProtocolError(`WRITEBUF go-ahead was ${go}, not 0`);
  c.send(chunk);
  const done = await c.readInteger();
  if (done < 0) throw IioError.fromErrno(done, ctx);
  if (done !== chunk.length) {
    throw new IioError('EIO', `iiod took ${done} of ${chunk.length} bytes`, ctx);
  }
}

/**
 * An output buffer's pushes, one after the other, each cut into kernel buffers of
 * `maxBytes` (one WRITEBUF each, as libiio pushes).
 */
export class PushQueue {
  private queue: Promise<void> = Promise.resolve();
  /** Pushes accepted and not yet done. */
  busy = 0;
  /** Set by cancel() for the push under way; cleared when the next one starts. */
  cancelled?: IioError;

  constructor(
    private readonly maxBytes: number,
    private readonly pushOne: (chunk: Buffer) => Promise<void>,
    /** EBADF when the buffer is closed, checked when a push is given and when it starts. */
    private readonly closedError: () => IioError | undefined,
  ) {}

  push(data: Buffer): Promise<void> {
    const refused = this.closedError();
    if (refused) return Promise.reject(refused);
    this.busy++;
    const p = this.queue.then(async () => {
      const closed = this.closedError();
      if (closed) throw closed;
      this.cancelled = undefined;
      for (let off = 0; off < data.length; off += this.maxBytes) {
        await this.pushOne(data.subarray(off, Math.min(data.length, off + this.maxBytes)));
      }
    });
    this.queue = p.catch(() => undefined);
    return p.finally(() => this.busy--);
  }

  /** Resolves once every push queued so far is done (whatever its outcome). */
  async drain(): Promise<void> {
    await this.queue;
  }
}
