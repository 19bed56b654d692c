/**
 * Buffers of `ip:` devices over iiod's ASCII protocol: one connection per open buffer
 * (as libiio), `OPEN dev samples mask`, then READBUF (input) or WRITEBUF (output).
 *
 * Input keeps two READBUF requests queued on the connection so iiod never waits for a
 * round trip between blocks (libiio asks for the next block only after the last one
 * arrived). Data always reaches the caller in the layout of the channels it asked for:
 * when another client widened iiod's channel mask, iiod sends the wider scans (with the
 * new mask) and we pick our channels out.
 */
import { IioError, type IioErrorContext } from '../../errors';
import { computeScanLayout, type ScanLayout } from '../../format/layout';
import { ChannelMask } from '../../model/channel-mask';
import type { DeviceInfo } from '../../model/info';
import type { BackendBuffer, BufferOpenOptions, RawBlock } from '../../model/backend';
import { checkToken, simpleCommand } from './ascii';
import type { Connection } from './connection';
import { ProtocolError } from './reader';
import { isLinkLoss } from './transport';

/** What a stream needs from its backend. */
export interface StreamHost {
  readonly uri: string;
  /** Current context timeout (ms, 0 = none). */
  timeoutMs(): number;
  /** Opens a new connection for a buffer. */
  connectStream(): Promise<Connection>;
  /** Tells the backend a connection was lost (it reconnects the context). */
  lost(error: IioError): void;
  /** Whether streams wait for a reconnect instead of failing. */
  readonly reconnects: boolean;
  /** Resolves once the context is connected again; rejects when it is closed. */
  whenConnected(): Promise<void>;
  /** The device as the (possibly reloaded) context describes it now. */
  currentDevice(id: string): DeviceInfo | undefined;
  /**
   * On links that carry one connection (a UART): runs an exchange on the control
   * connection, between the context's other requests (see shared-stream.ts).
   */
  runShared?<T>(op: string, ctx: IioErrorContext, body: (c: Connection) => Promise<T>): Promise<T>;
}

/** How many READBUF requests are kept queued ahead. */
const PIPELINE = 2;
/** How many filled blocks may wait for the reader before we stop asking for more. */
const MAX_READY = 4;
/**
 * A READBUF asks for several blocks when blocks are small: iiod then streams refill
 * after refill without waiting for its parser thread between them. Each block is still
 * handed out as soon as it is full.
 */
const REQUEST_BYTES = 1 << 20;
const MAX_BLOCKS_PER_REQUEST = 16;

export function layoutOf(dev: DeviceInfo, mask: ChannelMask): ScanLayout {
  const els = dev.channels
    .map((c, i) => ({ c, i }))
    .filter(({ c, i }) => mask.has(i) && c.isScanElement && c.format && c.index >= 0)
    .map(({ c, i }) => ({ key: i, index: c.index, format: c.format! }));
  return computeScanLayout(els);
}

export function isConnectionLoss(e: IioError): boolean {
  if (isLinkLoss(e)) return true;
  return [
    'ECONNRESET',
    'ECONNREFUSED',
    'EPIPE',
    'ENOTCONN',
    'ECONNABORTED',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'ENETDOWN',
  ].includes(e.code);
}

interface Waiter {
  resolve: (b: RawBlock) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** Common part: the connection and OPEN/CLOSE. */
abstract class IiodStream implements BackendBuffer {
  readonly mask: ChannelMask;
  protected conn?: Connection;
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

  /** Opens a connection and sends OPEN; rejects with iiod's error. */
  protected async openConnection(): Promise<Connection> {
    const dev = this.host.currentDevice(this.device.id);
    if (!dev) {
      throw new IioError('ENODEV', 'the device is gone from the context', this.ctx('open buffer'));
    }
    this.device = dev;
    checkToken('device', dev.id);
    const c = await this.host.connectStream();
    const t = this.host.timeoutMs();
    if (this.options.blocks !== undefined) {
      // On the buffer's own connection, which is always ASCII (1.0's binary protocol
      // has no such command); iiod refuses it once the buffer is enabled.
      const n = this.options.blocks;
      let r: number;
      try {
        r = await withDeadline(
          c,
          t,
          this.host.uri,
          simpleCommand(c, `SET ${dev.id} BUFFERS_COUNT ${n}`),
        );
      } catch (err) {
        c.kill(IioError.wrap(err));
        throw err;
      }
      if (r < 0) {
        c.kill(new IioError('EBADF', 'SET BUFFERS_COUNT failed'));
        throw IioError.fromErrno(r, this.ctx('set kernel buffers count'));
      }
    }
    const line = this.openLine(dev);
    let ret: number;
    try {
      ret = await withDeadline(c, t, this.host.uri, simpleCommand(c, line));
    } catch (err) {
      c.kill(IioError.wrap(err));
      throw err;
    }
    if (ret < 0) {
      c.kill(new IioError('EBADF', 'OPEN failed'));
      throw IioError.fromErrno(ret, this.ctx('open buffer'));
    }
    return c;
  }

  /** `OPEN dev samples mask [CYCLIC]`. */
  protected openLine(dev: DeviceInfo): string {
    return `OPEN ${dev.id} ${this.options.samples} ${this.mask.toHex()}${this.options.cyclic ? ' CYCLIC' : ''}`;
  }

  abstract read(): Promise<RawBlock>;
  abstract write(data: Buffer): Promise<void>;
  abstract cancel(): void;

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

  abstract close(): Promise<void>;
}

/** Runs `p` on `c`; past `ms` the connection is killed with ETIMEDOUT (p then rejects). */
export async function withDeadline<T>(
  c: Connection,
  ms: number,
  where: string,
  p: Promise<T>,
): Promise<T> {
  if (!(ms > 0)) return p;
  const since = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
    // on idle-timeout links (a UART) a reply still arriving keeps the deadline away
    const left = c.remaining(ms, since);
    if (left > 0) {
      timer = setTimeout(check, left);
      return;
    }
    c.kill(new IioError('ETIMEDOUT', `no reply from iiod within ${ms} ms`, { uri: where }));
  };
  timer = setTimeout(check, ms);
  try {
    return await p;
  } finally {
    clearTimeout(timer);
  }
}

/** An input buffer: READBUF, pipelined. */
export class IiodInputStream extends IiodStream {
  protected ready: RawBlock[] = [];
  protected waiter?: Waiter;
  protected fill?: { buf: Buffer; used: number };
  protected free: Buffer[] = [];
  protected readonly blockBytes: number;
  protected serverMask: ChannelMask;
  protected serverLayout: ScanLayout;
  private running = false;
  protected failure?: IioError;
  protected pendingLost = 0;
  private wake?: () => void;
  /** Scans received and when the first arrived (to estimate what an outage cost). */
  protected received = 0;
  private since = 0;
  private generation = 0;
  private resuming = false;

  constructor(host: StreamHost, device: DeviceInfo, options: BufferOpenOptions) {
    super(host, device, options);
    this.blockBytes = options.samples * this.layout.scanBytes;
    this.serverMask = this.mask;
    this.serverLayout = this.layout;
  }

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

  protected takeBuffer(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.blockBytes);
  }

  protected deliver(buf: Buffer, length: number): void {
    let released = false;
    const lost = this.pendingLost;
    this.pendingLost = 0;
    const block: RawBlock = {
      data: buf.subarray(0, length),
      lost: lost || undefined,
      release: () => {
        if (released) return;
        released = true;
        if (this.free.length < MAX_READY + PIPELINE && buf.length === this.blockBytes) {
          this.free.push(buf);
        }
        this.wake?.();
      },
    };
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      if (w.timer) clearTimeout(w.timer);
      w.resolve(block);
    } else {
      this.ready.push(block);
    }
  }

  /** Appends whole scans (in our layout) to the block being filled. */
  protected appendOurs(src: Buffer): void {
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

  protected completeFill(): void {
    if (this.fill && this.fill.used === this.blockBytes) {
      const f = this.fill;
      this.fill = undefined;
      this.deliver(f.buf, this.blockBytes);
    }
  }

  /** Converts scans of the server's layout into ours. */
  protected convert(src: Buffer, scans: number): Buffer {
    const out = Buffer.allocUnsafe(scans * this.layout.scanBytes);
    const from = this.serverLayout;
    const slots = this.layout.slots.map((s) => ({
      to: s.offset,
      from: from.slots.find((x) => x.key === s.key)?.offset ?? -1,
      bytes: s.bytes,
    }));
    if (slots.some((s) => s.from < 0)) {
      throw new ProtocolError('iiod sent a channel mask without channels this buffer asked for');
    }
    for (let i = 0; i < scans; i++) {
      const so = i * from.scanBytes;
      const oo = i * this.layout.scanBytes;
      for (const s of slots) src.copy(out, oo + s.to, so + s.from, so + s.from + s.bytes);
    }
    return out;
  }

  protected setServerMask(hex: string): void {
    let m: ChannelMask;
    try {
      m = ChannelMask.fromHex(this.device.channels.length, hex);
    } catch (err) {
      throw new ProtocolError(`bad channel mask line: ${(err as Error).message}`);
    }
    if (m.equals(this.serverMask)) return;
    if (!m.contains(this.mask)) {
      throw new ProtocolError(`iiod's channel mask ${hex} lacks channels of ${this.mask.toHex()}`);
    }
    this.serverMask = m;
    this.serverLayout = m.equals(this.mask) ? this.layout : layoutOf(this.device, m);
  }

  /** Reads one READBUF reply of at most `asked` bytes. */
  protected async readReply(c: Connection, asked: number): Promise<void> {
    let got = 0;
    let first = true;
    let carry: Buffer | undefined;
    while (got < asked) {
      const n = await c.readInteger();
      if (n < 0) throw IioError.fromErrno(n, this.ctx('refill'));
      if (n === 0) break; // iiod ends early (the mask changed): ask again
      if (n > asked - got) {
        throw new ProtocolError(`a READBUF chunk of ${n} bytes exceeds the ${asked - got} left`);
      }
      if (first) {
        const hex = await c.reader.readLine(1024);
        this.setServerMask(hex);
        first = false;
      }
      got += n;
      if (this.serverLayout === this.layout) {
        // Straight into the block: one copy from the socket.
        let left = n;
        while (left > 0) {
          if (!this.fill) this.fill = { buf: this.takeBuffer(), used: 0 };
          const k = Math.min(left, this.blockBytes - this.fill.used);
          await c.reader.readInto(this.fill.buf, this.fill.used, k);
          this.fill.used += k;
          left -= k;
          this.received += Math.floor(k / this.layout.scanBytes);
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

  private async pump(gen: number): Promise<void> {
    let inflight: number[] = [];
    const c = this.conn;
    if (!c) return;
    // a connection that dies while we wait for the reader must still be noticed
    c.onDeath(() => this.wake?.());
    try {
      while (!this.closed && gen === this.generation) {
        if (!c.alive) throw c.error ?? new IioError('ECONNRESET', 'the connection was lost');
        const per = Math.max(
          1,
          Math.min(MAX_BLOCKS_PER_REQUEST, Math.floor(REQUEST_BYTES / this.blockBytes)),
        );
        // at most MAX_READY + PIPELINE * per blocks wait for a slow reader
        while (inflight.length < PIPELINE && this.ready.length < MAX_READY) {
          const asked = per * this.options.samples * this.serverLayout.scanBytes;
          c.send(`READBUF ${this.device.id} ${asked}\r\n`);
          inflight.push(asked);
        }
        if (!inflight.length) {
          await new Promise<void>((r) => (this.wake = r));
          this.wake = undefined;
          continue;
        }
        await this.readReply(c, inflight[0]);
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
    // Scans of a half-filled block are dropped: a block is whole or not at all.
    this.dropFill();
    if (isConnectionLoss(e) && this.host.reconnects) {
      this.host.lost(e);
      void this.resume(Date.now());
      return;
    }
    this.failure = e;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      if (w.timer) clearTimeout(w.timer);
      w.reject(e);
      this.failure = undefined; // delivered: the next read() reopens
    }
  }

  /** Waits for the context to reconnect, then reopens and counts what the outage cost. */
  private async resume(outageStart: number): Promise<void> {
    const gen = ++this.generation;
    this.running = false;
    this.resuming = true;
    this.disarm();
    try {
      await this.resumeLoop(gen, outageStart);
    } finally {
      if (gen === this.generation) this.resuming = false;
    }
    if (this.waiter && this.conn) this.arm(this.waiter);
  }

  private async resumeLoop(gen: number, outageStart: number): Promise<void> {
    for (;;) {
      try {
        await this.host.whenConnected();
        if (this.closed || gen !== this.generation) return;
        const c = await this.openConnection();
        if (this.closed || gen !== this.generation) {
          c.kill(new IioError('EBADF', 'the buffer is closed'));
          return;
        }
        this.conn = c;
        const elapsed = (Date.now() - outageStart) / 1000;
        const rate = this.since
          ? this.received / Math.max(0.001, (outageStart - this.since) / 1000)
          : 0;
        this.pendingLost += Math.round(rate * elapsed);
        this.resuming = false;
        this.launch();
        return;
      } catch (err) {
        const e = IioError.wrap(err, this.ctx('reopen buffer'));
        if (this.closed || gen !== this.generation) return;
        if (isConnectionLoss(e) && this.host.reconnects) {
          this.host.lost(e);
          continue;
        }
        this.failure = e;
        const w = this.waiter;
        if (w) {
          this.waiter = undefined;
          if (w.timer) clearTimeout(w.timer);
          w.reject(e);
          this.failure = undefined;
        }
        return;
      }
    }
  }

  read(): Promise<RawBlock> {
    if (this.closed) {
      return Promise.reject(new IioError('EBADF', 'the buffer is closed', this.ctx('refill')));
    }
    const b = this.ready.shift();
    if (b) {
      this.wake?.();
      return Promise.resolve(b);
    }
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
      const w: Waiter = { resolve, reject };
      this.waiter = w;
      this.arm(w);
      if (!this.conn && !this.running && !this.resuming) void this.reopen();
      else this.wake?.();
    });
  }

  /**
   * Starts the refill deadline. Not while the context reconnects: the stream then waits
   * for the server (the context reports `disconnected`/`reconnected`), ended by close().
   */
  private arm(w: Waiter): void {
    const t = this.host.timeoutMs();
    if (!(t > 0) || this.resuming || w.timer) return;
    w.timer = setTimeout(() => {
      if (this.waiter !== w) return;
      this.waiter = undefined;
      const e = new IioError('ETIMEDOUT', `no data from iiod within ${t} ms`, this.ctx('refill'));
      // The reply may still come: this connection is dropped, the next read reopens.
      const c = this.conn;
      this.generation++;
      this.running = false;
      this.conn = undefined;
      if (c?.alive) c.kill(e);
      this.dropFill();
      w.reject(e);
    }, t);
  }

  private disarm(): void {
    const w = this.waiter;
    if (w?.timer) {
      clearTimeout(w.timer);
      w.timer = undefined;
    }
  }

  protected dropFill(): void {
    if (this.fill) {
      this.pendingLost += Math.floor(this.fill.used / this.layout.scanBytes);
      this.free.push(this.fill.buf);
      this.fill = undefined;
    }
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
      const e = IioError.wrap(err, this.ctx('reopen buffer'));
      if (isConnectionLoss(e) && this.host.reconnects) {
        this.host.lost(e);
        void this.resume(Date.now());
        return;
      }
      const w = this.waiter;
      if (w) {
        this.waiter = undefined;
        if (w.timer) clearTimeout(w.timer);
        w.reject(e);
      } else this.failure = e;
    }
  }

  async write(): Promise<void> {
    throw new IioError('EPERM', 'write() on an input buffer', this.ctx('push'));
  }

  cancel(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    if (w.timer) clearTimeout(w.timer);
    w.reject(new IioError('ECANCELED', 'the refill was cancelled', this.ctx('refill')));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    this.cancel();
    this.wake?.();
    for (const b of this.ready.splice(0)) b.release();
    // A READBUF may be in flight: iiod would answer CLOSE only after it, so just hang up.
    await this.hangUp(false);
  }
}

/** An output buffer: WRITEBUF. */
export class IiodOutputStream extends IiodStream {
  protected queue: Promise<void> = Promise.resolve();
  protected busy = 0;
  protected cancelled?: IioError;

  async start(): Promise<void> {
    this.conn = await this.openConnection();
  }

  read(): Promise<RawBlock> {
    return Promise.reject(new IioError('EPERM', 'read() on an output buffer', this.ctx('refill')));
  }

  write(data: Buffer): Promise<void> {
    if (this.closed)
      return Promise.reject(new IioError('EBADF', 'the buffer is closed', this.ctx('push')));
    this.busy++;
    const p = this.queue.then(() => this.push(data));
    this.queue = p.catch(() => undefined);
    return p.finally(() => this.busy--);
  }

  private async push(data: Buffer): Promise<void> {
    if (this.closed) throw new IioError('EBADF', 'the buffer is closed', this.ctx('push'));
    this.cancelled = undefined;
    // One kernel buffer per WRITEBUF, as libiio pushes.
    const max = this.options.samples * this.layout.scanBytes;
    for (let off = 0; off < data.length; off += max) {
      await this.pushOne(data.subarray(off, Math.min(data.length, off + max)));
    }
  }

  /** One WRITEBUF: the command, iiod's go-ahead, the samples, the count it took. */
  protected async exchange(c: Connection, chunk: Buffer): Promise<void> {
    c.send(`WRITEBUF ${this.device.id} ${chunk.length}\r\n`);
    // Wait for iiod's go-ahead: had it refused, our samples would be parsed as commands.
    const go = await c.readInteger();
    if (go < 0) throw IioError.fromErrno(go, this.ctx('push'));
    if (go !== 0) throw new ProtocolError(`WRITEBUF go-ahead was ${go}, not 0`);
    c.send(chunk);
    const done = await c.readInteger();
    if (done < 0) throw IioError.fromErrno(done, this.ctx('push'));
    if (done !== chunk.length) {
      throw new IioError('EIO', `iiod took ${done} of ${chunk.length} bytes`, this.ctx('push'));
    }
  }

  protected async pushOne(chunk: Buffer): Promise<void> {
    if (!this.conn?.alive) {
      try {
        this.conn = await this.openConnection();
      } catch (err) {
        const e = IioError.wrap(err, this.ctx('push'));
        if (isConnectionLoss(e)) this.host.lost(e);
        throw e;
      }
    }
    const c = this.conn;
    try {
      await withDeadline(c, this.host.timeoutMs(), this.host.uri, this.exchange(c, chunk));
    } catch (err) {
      // The exchange is in doubt: never reuse the connection.
      const e = this.cancelled ?? IioError.wrap(err, this.ctx('push'));
      if (c.alive) c.kill(e);
      if (this.conn === c) this.conn = undefined;
      if (isConnectionLoss(e)) this.host.lost(e);
      throw e;
    }
  }

  async drain(): Promise<void> {
    await this.queue;
  }

  cancel(): void {
    if (!this.busy || !this.conn) return;
    const e = new IioError('ECANCELED', 'the push was cancelled', this.ctx('push'));
    this.cancelled = e;
    this.conn.kill(e);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    await this.hangUp(true);
  }
}
