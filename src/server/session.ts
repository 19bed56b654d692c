/**
 * One client connection speaking iiod's ASCII protocol (libiio 0.x): lines are read and
 * answered one at a time, exactly as iiod frames them. This file is the framing only:
 * what each command does is a protocol-neutral operation (device-ops.ts: attributes and
 * triggers; buffer-ops.ts: open, close, the data of a write) that answers a value or a
 * negative errno, and the replies are built by ascii-replies.ts.
 */
import type { Socket } from 'node:net';
import { codeOf, IioError } from '../errors';
import type { Channel } from '../model/channel';
import type { Device } from '../model/device';
import { atol, strtol, toUint32 } from '../util/cnumber';
import { tracer } from '../util/trace';
import {
  decodePackedValues,
  encodePackedValues,
  intReply,
  parseWireMask,
  payloadReply,
} from './ascii-replies';
import { OutputWriter, SessionBuffers, setBuffersCount, type SessionHost } from './buffer-ops';
import {
  attrList,
  findChannel,
  findDevice,
  getTrigger,
  NEG,
  negErrno,
  readAttr,
  readAttrs,
  setTrigger,
  writeAttr,
  writeAttrs,
  type AttrFamily,
} from './device-ops';
import { HELP_TEXT, parseLine, type Command, type Resolver } from './protocol';
import { SocketReader } from './reader';
import type { InputClient } from './streams';

export type { SessionHost } from './buffer-ops';

const trace = tracer('server');

/** The version this server answers VERSION with: the protocol it speaks (libiio 0.24's). */
export const SERVER_VERSION = '0.24.iiokit \n';
/** Longest command line taken; longer ones are answered -EINVAL and skipped. */
const MAX_LINE = 16 * 1024;
/** Largest attribute value accepted by WRITE (iiod answers -ENOMEM when malloc fails). */
const MAX_ATTR_WRITE = 1024 * 1024;

/**
 * One client connection speaking iiod's ASCII protocol: commands are read and answered
 * one at a time; a READBUF streams from the device's shared stream; a WRITEBUF feeds
 * the device's output buffer.
 */
export class Session {
  private readonly reader: SocketReader;
  private readonly resolver: Resolver<Device, Channel>;
  private readonly buffers: SessionBuffers;
  private timeoutMs = 0;
  private ended = false;

  constructor(
    private readonly host: SessionHost,
    private readonly socket: Socket,
    readonly peer: string,
  ) {
    this.reader = new SocketReader(socket);
    this.buffers = new SessionBuffers(host, this);
    this.resolver = {
      findDevice: (w) => findDevice(host.ctx, w),
      findChannel: (d, w, out) => findChannel(d, w, out),
    };
  }

  /** The timeout a client asked for with TIMEOUT (kept per session, not applied to the context). */
  get requestedTimeoutMs(): number {
    return this.timeoutMs;
  }

  /** Readers this session has open (for statistics). */
  get inputClients(): InputClient[] {
    return this.buffers.inputClients;
  }

  /** Serves the connection until the client leaves, sends EXIT, or the server closes it. */
  async run(): Promise<void> {
    trace(`${this.peer}: connected`);
    try {
      for (;;) {
        let r;
        try {
          r = await this.reader.readLine(MAX_LINE);
        } catch {
          break;
        }
        if ('tooLong' in r) {
          trace(`${this.peer}: line longer than ${MAX_LINE} bytes: -EINVAL`);
          await this.int(NEG.EINVAL);
          continue;
        }
        const cmd = parseLine(r.line, this.resolver);
        if (trace.enabled)
          trace(`${this.peer}: ${r.line.trimEnd()}${cmd.op === 'error' ? ' (syntax error)' : ''}`);
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
    await this.buffers.closeAll();
    this.socket.destroy();
    trace(`${this.peer}: closed`);
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
    if (value < 0) trace(`${this.peer}: answered ${value} (${codeOf(value)})`);
    return this.send(intReply(value));
  }

  private async execute(cmd: Command<Device, Channel>): Promise<void> {
    switch (cmd.op) {
      case 'empty':
      case 'exit':
        return;
      case 'error':
        return this.int(NEG.EINVAL);
      case 'help':
        return this.send(HELP_TEXT);
      case 'version':
        return this.send(SERVER_VERSION);
      case 'print':
        return this.send(payloadReply(Buffer.from(this.host.ctx.toXml(), 'utf8')));
      case 'zprint':
        // No zstd here (like Debian's iiod): clients fall back to PRINT on -EINVAL.
        return this.int(NEG.EINVAL);
      case 'timeout':
        // (unsigned int) atoi(word), as iiod reads it
        this.timeoutMs = toUint32(strtol(cmd.value, 10).value);
        return this.int(0);
      case 'open': {
        if (!cmd.dev) return this.int(NEG.ENODEV);
        const mask = parseWireMask(cmd.dev.channels.length, cmd.mask);
        if (!mask) return this.int(NEG.EINVAL);
        return this.int(await this.buffers.open(cmd.dev, atol(cmd.samples), mask, cmd.cyclic));
      }
      case 'close':
        return this.int(await this.buffers.close(cmd.dev));
      case 'read':
        return this.readAttr(cmd.dev, cmd.family, cmd.channel, cmd.attr);
      case 'write':
        return this.writeAttr(cmd.dev, cmd.family, cmd.channel, cmd.attr, cmd.length);
      case 'readbuf':
        // READBUF/WRITEBUF lengths are atol() stored into an unsigned int
        return this.readBuf(cmd.dev, toUint32(strtol(cmd.length, 10).value));
      case 'writebuf':
        return this.writeBuf(cmd.dev, toUint32(strtol(cmd.length, 10).value));
      case 'gettrig': {
        const trig = await getTrigger(cmd.dev);
        if (typeof trig === 'number') return this.int(trig);
        if (!trig) return this.int(0);
        return this.send(payloadReply(Buffer.from(trig.name ?? trig.id, 'utf8')));
      }
      case 'settrig':
        return this.int(await setTrigger(this.host.ctx, cmd.dev, cmd.trigger));
      case 'buffers_count':
        return this.int(setBuffersCount(this.host, cmd.dev, cmd.value));
    }
  }

  // ---- READ / WRITE -------------------------------------------------------------------

  /** READ: `<len>\n<value>\0\n`, or the packed values of a whole family, or `-errno\n`. */
  private async readAttr(
    dev: Device | null,
    family: AttrFamily,
    channel: Channel | null,
    name: string | null,
  ): Promise<void> {
    if (name === null) {
      const values = await readAttrs(dev, family, channel);
      if (typeof values === 'number') return this.int(values);
      return this.send(payloadReply(encodePackedValues(values)));
    }
    const value = await readAttr(dev, family, channel, name);
    if (typeof value === 'number') return this.int(value);
    return this.send(payloadReply(Buffer.from(`${value}\0`, 'utf8')));
  }

  /** WRITE: `<len>` bytes of value follow the command; answered with len or -errno. */
  private async writeAttr(
    dev: Device | null,
    family: AttrFamily,
    channel: Channel | null,
    name: string | null,
    lengthText: string,
  ): Promise<void> {
    const len = atol(lengthText);
    // iiod mallocs the length first: absurd ones fail before anything is read.
    if (len < 0 || len > MAX_ATTR_WRITE) return this.int(NEG.ENOMEM);
    // Device-level writes check the device before reading the value; channel writes after.
    if (family !== 'channel' && !dev) return this.int(NEG.ENODEV);
    const data = await this.reader.readBytes(len);
    if (name === null) {
      const list = attrList(dev, family, channel);
      if (typeof list === 'number') return this.int(list);
      const packed = decodePackedValues(data, list.length);
      if (!packed) return this.int(NEG.EINVAL);
      await writeAttrs(list, packed.values);
      return this.int(packed.consumed);
    }
    const nul = data.indexOf(0);
    const value = (nul >= 0 ? data.subarray(0, nul) : data).toString('utf8');
    const ret = await writeAttr(dev, family, channel, name, value);
    return this.int(ret < 0 ? ret : len);
  }

  // ---- READBUF / WRITEBUF -------------------------------------------------------------

  /**
   * READBUF: chunks of `<len>\n[<mask>\n]<data>` until `nb` bytes are sent (whole scans;
   * the mask only before the first chunk), then `0\n` if a partial scan was left over.
   */
  private async readBuf(dev: Device | null, nb: number): Promise<void> {
    const c = this.buffers.input(dev);
    if (typeof c === 'number') return this.int(c);
    if (c.error) return this.int(negErrno(c.error));
    if (nb < c.scanBytes) return this.int(0);
    let remaining = nb;
    let first = true;
    let gen = c.generation;
    while (remaining >= c.scanBytes) {
      await c.waitForData(this.reader.closed);
      if (this.reader.isClosed) throw new IioError('EPIPE', 'the client left during READBUF');
      if (c.hub.isClosed(c)) return this.int(NEG.EBADF);
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
    const w = this.buffers.output(dev);
    if (typeof w === 'number') return this.int(w);
    await this.int(0);
    const writer = new OutputWriter(w, nb);
    let remaining = nb;
    while (remaining > 0) {
      const data = await this.reader.readSome(Math.min(remaining, 1024 * 1024));
      remaining -= data.length;
      await writer.add(data);
    }
    return this.int(await writer.finish());
  }
}
