import type { Socket } from 'node:net';
import { ERRNO, errnoOf, IioError } from '../errors';
import type { Attr } from '../model/attr';
import type { Channel } from '../model/channel';
import { ChannelMask } from '../model/channel-mask';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import { atol, strtol, toUint32 } from '../util/cnumber';
import { HELP_TEXT, parseLine, type AttrFamily, type Command, type Resolver } from './protocol';
import { SocketReader } from './reader';
import { InputClient, OutputClient, type InputHub, type StreamSettings } from './streams';

/** What a session needs from its server. */
export interface SessionHost {
  readonly ctx: Context;
  readonly settings: StreamSettings;
  hubFor(device: Device): InputHub;
  /** The session writing to each output device (one at a time). */
  readonly writers: Map<Device, Session>;
  /** SET BUFFERS_COUNT values. */
  readonly bufferCounts: Map<Device, number>;
  log(message: string): void;
}

/** The version this server answers VERSION with: the protocol it speaks (libiio 0.24's). */
export const SERVER_VERSION = '0.24.iiokit \n';
/** Longest command line taken; longer ones are answered -EINVAL and skipped. */
const MAX_LINE = 16 * 1024;
/** Largest attribute value accepted by WRITE (iiod answers -ENOMEM when malloc fails). */
const MAX_ATTR_WRITE = 1024 * 1024;
/** Largest buffer accepted by OPEN, in bytes. */
const MAX_BUFFER_BYTES = 256 * 1024 * 1024;
/** Largest cyclic block gathered from one WRITEBUF. */
const MAX_CYCLIC_BYTES = 64 * 1024 * 1024;

/** The negative errno iiod answers with: `-ERRNO.ENODEV`, ... (never a bare number). */
const { ENODEV, EINVAL, ENOENT, ENXIO, EBADF, ENOMEM, EBUSY, EPERM } = Object.fromEntries(
  (['ENODEV', 'EINVAL', 'ENOENT', 'ENXIO', 'EBADF', 'ENOMEM', 'EBUSY', 'EPERM'] as const).map(
    (c) => [c, -ERRNO[c]],
  ),
) as Record<
  'ENODEV' | 'EINVAL' | 'ENOENT' | 'ENXIO' | 'EBADF' | 'ENOMEM' | 'EBUSY' | 'EPERM',
  number
>;

/** The negative errno an error is answered with (-EIO when it has none). */
function negErrno(err: unknown): number {
  const e = IioError.wrap(err);
  return -(e.errno || errnoOf(e.code) || ERRNO.EIO);
}

/** libiio's iio_context_find_device: the first device whose id, label or name matches. */
function findDevice(ctx: Context, word: string): Device | null {
  return ctx.devices.find((d) => d.id === word || d.label === word || d.name === word) ?? null;
}

type Entry =
  | { readonly kind: 'in'; readonly client: InputClient }
  | { readonly kind: 'out'; readonly client: OutputClient };

/**
 * One client connection speaking iiod's ASCII protocol: commands are read and answered
 * one at a time, exactly as iiod frames them; a READBUF streams from the device's shared
 * stream; a WRITEBUF feeds the device's output buffer.
 */
export class Session {
  private readonly reader: SocketReader;
  private readonly resolver: Resolver<Device, Channel>;
  /** Per device, what this session opened (most recent last, as iiod's list head). */
  private readonly opens = new Map<Device, Entry[]>();
  private timeoutMs = 0;
  private ended = false;

  constructor(
    private readonly host: SessionHost,
    private readonly socket: Socket,
    readonly peer: string,
  ) {
    this.reader = new SocketReader(socket);
    this.resolver = {
      findDevice: (w) => findDevice(host.ctx, w),
      findChannel: (d, w, out) =>
        d.channels.find((c) => c.isOutput === out && (c.id === w || c.name === w)) ?? null,
    };
  }

  /** The timeout a client asked for with TIMEOUT (kept per session, not applied to the context). */
  get requestedTimeoutMs(): number {
    return this.timeoutMs;
  }

  /** Readers this session has open (for statistics). */
  get inputClients(): InputClient[] {
    return [...this.opens.values()].flat().flatMap((e) => (e.kind === 'in' ? [e.client] : []));
  }

  /** Serves the connection until the client leaves, sends EXIT, or the server closes it. */
  async run(): Promise<void> {
    try {
      for (;;) {
        let r;
        try {
          r = await this.reader.readLine(MAX_LINE);
        } catch {
          break;
        }
        if ('tooLong' in r) {
          await this.int(EINVAL);
          continue;
        }
        const cmd = parseLine(r.line, this.resolver);
        if (cmd.op === 'exit') break;
        try {
          await this.execute(cmd);
        } catch (err) {
          if (this.reader.isClosed || this.socket.destroyed) break;
          // A failure outside the protocol's own error paths: answer it, keep serving.
          this.host.log(`${this.peer}: ${(err as Error).message}`);
          await this.int(negErrno(err)).catch(() => undefined);
        }
      }
    } finally {
      await this.end();
    }
  }

  /** Releases everything the session opened and closes the connection. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const all = [...this.opens.entries()];
    this.opens.clear();
    for (const [dev, entries] of all) for (const e of entries) await this.release(dev, e);
    this.socket.destroy();
  }

  private async send(data: string | Buffer): Promise<void> {
    if (this.socket.destroyed) throw new IioError('EPIPE', 'the connection is closed');
    if (!this.socket.write(data)) {
      await Promise.race([
        new Promise<void>((r) => this.socket.once('drain', () => r())),
        this.reader.closed,
      ]);
      if (this.socket.destroyed) throw new IioError('EPIPE', 'the connection is closed');
    }
  }

  private int(value: number): Promise<void> {
    return this.send(`${value}\n`);
  }

  private async execute(cmd: Command<Device, Channel>): Promise<void> {
    switch (cmd.op) {
      case 'empty':
        return;
      case 'error':
        return this.int(EINVAL);
      case 'exit':
        return;
      case 'help':
        return this.send(HELP_TEXT);
      case 'version':
        return this.send(SERVER_VERSION);
      case 'print': {
        const xml = Buffer.from(this.host.ctx.toXml(), 'utf8');
        return this.send(Buffer.concat([Buffer.from(`${xml.length}\n`), xml, Buffer.from('\n')]));
      }
      case 'zprint':
        // No zstd here (like Debian's iiod): clients fall back to PRINT on -EINVAL.
        return this.int(EINVAL);
      case 'timeout':
        this.timeoutMs = toUint32(strtol(cmd.value, 10).value);
        return this.int(0);
      case 'open':
        return this.int(await this.open(cmd.dev, cmd.samples, cmd.mask, cmd.cyclic));
      case 'close':
        return this.int(await this.close(cmd.dev));
      case 'read':
        return this.readAttr(cmd.dev, cmd.family, cmd.channel, cmd.attr);
      case 'write':
        return this.writeAttr(cmd.dev, cmd.family, cmd.channel, cmd.attr, cmd.length);
      case 'readbuf':
        return this.readBuf(cmd.dev, toUint32(strtol(cmd.length, 10).value));
      case 'writebuf':
        return this.writeBuf(cmd.dev, toUint32(strtol(cmd.length, 10).value));
      case 'gettrig':
        return this.getTrigger(cmd.dev);
      case 'settrig':
        return this.int(await this.setTrigger(cmd.dev, cmd.trigger));
      case 'buffers_count':
        if (!cmd.dev) return this.int(ENODEV);
        if (cmd.value < 1) return this.int(EINVAL);
        this.host.bufferCounts.set(cmd.dev, cmd.value);
        return this.int(0);
    }
  }

  // ---- OPEN / CLOSE -------------------------------------------------------------------

  private async open(
    dev: Device | null,
    samplesText: string,
    maskText: string,
    cyclic: boolean,
  ): Promise<number> {
    if (!dev) return ENODEV;
    const nch = dev.channels.length;
    const words = Math.ceil(nch / 32);
    if (maskText.length !== words * 8 || !/^[0-9a-fA-F]*$/.test(maskText)) return EINVAL;
    // Bits of channels that do not exist or cannot stream are ignored, as iiod does.
    const wire = new ChannelMask(nch);
    for (let w = 0; w < words; w++) {
      const word = parseInt(
        maskText.slice(maskText.length - (w + 1) * 8, maskText.length - w * 8),
        16,
      );
      for (let b = 0; b < 32; b++) {
        const i = w * 32 + b;
        if (i < nch && word & (1 << b) && dev.channels[i].isScanElement) wire.set(i);
      }
    }
    const channels = wire.indices().map((i) => dev.channels[i]);
    if (!channels.length) return EINVAL;
    const samples = atol(samplesText);
    if (samples <= 0) return EINVAL;
    const isOutput = channels[0].isOutput;
    if (channels.some((c) => c.isOutput !== isOutput)) return EINVAL;
    const scanEstimate = channels.reduce(
      (n, c) => n + ((c.format?.length ?? 8) / 8) * (c.format?.repeat ?? 1),
      0,
    );
    if (samples * Math.max(1, scanEstimate) > MAX_BUFFER_BYTES) return ENOMEM;
    const list = this.opens.get(dev) ?? [];
    if (isOutput) {
      const owner = this.host.writers.get(dev);
      if (owner) return EBUSY;
      this.host.writers.set(dev, this);
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
      if (cyclic) return EPERM;
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

  private async release(dev: Device, e: Entry): Promise<void> {
    if (e.kind === 'in') await e.client.hub.remove(e.client).catch(() => undefined);
    else {
      await e.client.buffer.close().catch(() => undefined);
      if (this.host.writers.get(dev) === this) this.host.writers.delete(dev);
    }
  }

  private async close(dev: Device | null): Promise<number> {
    if (!dev) return ENODEV;
    const list = this.opens.get(dev);
    const e = list?.pop();
    if (!e) return ENXIO;
    if (!list!.length) this.opens.delete(dev);
    await this.release(dev, e);
    return 0;
  }

  private latest(dev: Device, kind: 'in' | 'out'): Entry | undefined {
    const list = this.opens.get(dev) ?? [];
    for (let i = list.length - 1; i >= 0; i--) if (list[i].kind === kind) return list[i];
    return undefined;
  }

  // ---- READBUF / WRITEBUF -------------------------------------------------------------

  /**
   * READBUF: chunks of `<len>\n[<mask>\n]<data>` until `nb` bytes are sent (whole scans;
   * the mask only before the first chunk), then `0\n` if a partial scan was left over.
   */
  private async readBuf(dev: Device | null, nb: number): Promise<void> {
    if (!dev) return this.int(ENODEV);
    const e = this.latest(dev, 'in');
    if (!e || e.kind !== 'in') return this.int(EBADF);
    const c = e.client;
    if (c.error) return this.int(negErrno(c.error));
    if (nb < c.scanBytes) return this.int(0);
    let remaining = nb;
    let first = true;
    let gen = c.generation;
    while (remaining >= c.scanBytes) {
      await c.waitForData(this.reader.closed);
      if (this.reader.isClosed) throw new IioError('EPIPE', 'the client left during READBUF');
      if (c.hub.isClosed(c)) return this.int(EBADF);
      if (c.error) return this.int(negErrno(c.error));
      if (c.generation !== gen) {
        // Whole-scan mode and the stream's channels changed: this READBUF ends here.
        if (!first) return this.int(0);
        gen = c.generation;
        continue;
      }
      const items = c.take(remaining);
      if (!items.length) continue;
      const len = items.reduce((n, it) => n + it.data.length, 0);
      const head = first ? `${len}\n${c.wireMask.toHex()}\n` : `${len}\n`;
      first = false;
      this.socket.cork();
      this.socket.write(head);
      let ok = true;
      // A block goes back to its pool only once the socket has flushed it.
      for (const it of items) ok = this.socket.write(it.data, () => it.done());
      this.socket.uncork();
      c.sentBytes += len;
      remaining -= len;
      if (!ok) {
        await Promise.race([
          new Promise<void>((r) => this.socket.once('drain', () => r())),
          this.reader.closed,
        ]);
      }
    }
    if (remaining > 0) await this.int(0);
  }

  /**
   * WRITEBUF: `0\n` (go ahead), the client's bytes (streamed to the buffer in blocks,
   * never held whole), then the count accepted or -errno.
   */
  private async writeBuf(dev: Device | null, nb: number): Promise<void> {
    if (!dev) return this.int(ENODEV);
    const e = this.latest(dev, 'out');
    if (!e || e.kind !== 'out') return this.int(EBADF);
    const w = e.client;
    await this.int(0);
    const scan = w.scanBytes;
    const chunk = w.cyclic ? Math.min(nb, MAX_CYCLIC_BYTES) : Math.max(scan, w.samples * scan);
    let remaining = nb;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let accepted = 0;
    let error: unknown = null;
    const flush = async (all: boolean): Promise<void> => {
      while (pendingBytes >= (all ? scan : chunk) && pendingBytes >= scan) {
        const joined = Buffer.concat(pending);
        const take = Math.floor(Math.min(joined.length, chunk) / scan) * scan;
        const rest = joined.subarray(take);
        pending = rest.length ? [rest] : [];
        pendingBytes = rest.length;
        if (error) continue;
        try {
          await w.buffer.push(joined.subarray(0, take));
          accepted += take;
        } catch (err) {
          error = err;
        }
      }
    };
    while (remaining > 0) {
      const data = await this.reader.readSome(Math.min(remaining, 1024 * 1024));
      remaining -= data.length;
      if (w.cyclic && pendingBytes + data.length > chunk) {
        // Beyond what one cyclic block holds: discard the rest, report it not taken.
        const room = Math.max(0, chunk - pendingBytes);
        if (room) pending.push(data.subarray(0, room));
        pendingBytes += room;
      } else {
        pending.push(data);
        pendingBytes += data.length;
      }
      if (!w.cyclic) await flush(false);
    }
    await flush(true);
    if (error) return this.int(negErrno(error));
    return this.int(accepted);
  }

  // ---- attributes ---------------------------------------------------------------------

  private attrList(dev: Device, family: AttrFamily, channel: Channel | null): readonly Attr[] {
    if (family === 'channel') return channel!.attrs;
    if (family === 'debug') return dev.debugAttrs;
    if (family === 'buffer') return dev.bufferAttrs;
    return dev.attrs;
  }

  private findAttr(list: readonly Attr[], name: string): Attr | undefined {
    return list.find((a) => a.name === name) ?? list.find((a) => a.filename === name);
  }

  private async readAttr(
    dev: Device | null,
    family: AttrFamily,
    channel: Channel | null,
    name: string | null,
  ): Promise<void> {
    if (!dev) return this.int(ENODEV);
    if (family === 'channel' && !channel) return this.int(ENXIO);
    const list = this.attrList(dev, family, channel);
    let payload: Buffer;
    if (name === null) {
      // All attributes: [be32 length][value + NUL, padded to 4] each, length -errno on error.
      const parts: Buffer[] = [];
      for (const a of list) {
        const len = Buffer.alloc(4);
        try {
          const v = Buffer.from(`${await a.read()}\0`, 'utf8');
          len.writeInt32BE(v.length);
          const pad = (4 - (v.length % 4)) % 4;
          parts.push(len, v, Buffer.alloc(pad));
        } catch (err) {
          len.writeInt32BE(negErrno(err));
          parts.push(len);
        }
      }
      payload = Buffer.concat(parts);
      return this.send(
        Buffer.concat([Buffer.from(`${payload.length}\n`), payload, Buffer.from('\n')]),
      );
    }
    const attr = this.findAttr(list, name);
    if (!attr) return this.int(ENOENT);
    try {
      payload = Buffer.from(`${await attr.read()}\0`, 'utf8');
    } catch (err) {
      return this.int(negErrno(err));
    }
    return this.send(
      Buffer.concat([Buffer.from(`${payload.length}\n`), payload, Buffer.from('\n')]),
    );
  }

  private async writeAttr(
    dev: Device | null,
    family: AttrFamily,
    channel: Channel | null,
    name: string | null,
    lengthText: string,
  ): Promise<void> {
    const len = atol(lengthText);
    // iiod mallocs the length first: absurd ones fail before anything is read.
    if (len < 0 || len > MAX_ATTR_WRITE) return this.int(ENOMEM);
    // Device-level writes check the device before reading the value; channel writes after.
    if (family !== 'channel' && !dev) return this.int(ENODEV);
    const data = await this.reader.readBytes(len);
    if (!dev) return this.int(ENODEV);
    if (family === 'channel' && !channel) return this.int(ENXIO);
    const list = this.attrList(dev, family, channel);
    if (name === null) return this.int(await this.writeAll(list, data));
    const attr = this.findAttr(list, name);
    if (!attr) return this.int(ENOENT);
    const nul = data.indexOf(0);
    const value = (nul >= 0 ? data.subarray(0, nul) : data).toString('utf8');
    try {
      await attr.write(value);
    } catch (err) {
      return this.int(negErrno(err));
    }
    return this.int(len);
  }

  /** WRITE without an attribute: the packed form of READ-all, one entry per attribute. */
  private async writeAll(list: readonly Attr[], data: Buffer): Promise<number> {
    const values: Array<Buffer | null> = [];
    let off = 0;
    for (let i = 0; i < list.length; i++) {
      if (off + 4 > data.length) return EINVAL;
      const len = data.readInt32BE(off);
      off += 4;
      if (len > 0) {
        if (off + len > data.length) return EINVAL;
        values.push(data.subarray(off, off + len));
        off += len + ((4 - (len % 4)) % 4);
      } else values.push(null);
    }
    for (let i = 0; i < list.length; i++) {
      const v = values[i];
      if (!v) continue;
      const nul = v.indexOf(0);
      await list[i]
        .write((nul >= 0 ? v.subarray(0, nul) : v).toString('utf8'))
        .catch(() => undefined);
    }
    return Math.min(off, data.length);
  }

  // ---- triggers -----------------------------------------------------------------------

  private async getTrigger(dev: Device | null): Promise<void> {
    if (!dev) return this.int(ENODEV);
    let trig: Device | null;
    try {
      trig = await dev.getTrigger();
    } catch (err) {
      return this.int(negErrno(err));
    }
    if (!trig) return this.int(0);
    const name = Buffer.from(trig.name ?? trig.id, 'utf8');
    return this.send(Buffer.concat([Buffer.from(`${name.length}\n`), name, Buffer.from('\n')]));
  }

  private async setTrigger(dev: Device | null, name: string | null): Promise<number> {
    if (!dev) return ENODEV;
    let trig: Device | null = null;
    if (name !== null) {
      trig = findDevice(this.host.ctx, name);
      if (!trig) return ENOENT;
      if (!trig.isTrigger) return EINVAL;
    }
    try {
      await dev.setTrigger(trig);
    } catch (err) {
      return negErrno(err);
    }
    return 0;
  }
}
