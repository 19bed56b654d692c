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
import { decodePackedValues, encodePackedValues } from '../iiod-protocol/ascii';
import { intReply, parseWireMask, payloadReply } from './ascii-replies';
import { OutputWriter, SessionBuffers, setBuffersCount, type SessionHost } from './buffer-ops';
import {
  attrList,
  findChannel,
  findDevice,
  getTrigger,
  MAX_ATTR_WRITE,
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
import type { InputClient, OutputClient } from './streams';
import { BinarySession } from './binary-session';

export type { SessionHost } from './buffer-ops';

const trace = tracer('server');

/** The version this server answers VERSION with: the protocol it speaks (libiio 0.24's). */
export const SERVER_VERSION = '0.24.iiokit \n';
/** Longest command line taken; longer ones are answered -EINVAL and skipped. */
const MAX_LINE = 16 * 1024;
/**
 * How far a WRITEBUF reads ahead of a slow device: more than a client's socket buffers
 * hold (Linux's default maximum is 4 MiB to send plus 6 MiB to receive).
 */
const WRITE_READ_AHEAD = 32 * 1024 * 1024;
/** How long the last replies of a client that is done may take to reach it. */
const FLUSH_MS = 5000;

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
  /** Set once the client switched to the binary protocol (`BINARY`). */
  private binary: BinarySession | null = null;
  /** A command is being carried out (its reply may still be streaming). */
  private executing = false;
  /** Date.now() of the last reply sent. */
  private lastReplyAt = Date.now();
  /** The timer of drained() (one per connection, re-armed per wait) and whether a wait is on. */
  private drainTimer: NodeJS.Timeout | undefined;
  private drainWaiting = false;
  /** The last READBUF line and what it parsed to (a stream sends the same line per block). */
  private lastReadBuf:
    { readonly line: string; readonly cmd: Command<Device, Channel> } | undefined;
  /** The WRITEBUF under way: its output and the bytes still due. */
  private writing: { readonly output: OutputClient; remaining: number } | undefined;
  /** Why the server ended this connection (eviction, a timeout), for statistics. */
  endedBy: 'evicted' | 'idle' | 'stalled' | undefined;

  constructor(
    private readonly host: SessionHost,
    private readonly socket: Socket,
    readonly peer: string,
  ) {
    this.reader = new SocketReader(socket, host.limits.commandTimeoutMs);
    // a push waiting for a slow DAC learns at once that its client left
    void this.reader.closed.then(() => {
      try {
        this.checkWriterLeft();
      } catch {
        // the WRITEBUF loop says it
      }
    });
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
    return this.binary ? this.binary.inputClients : this.buffers.inputClients;
  }

  /** The protocol the connection speaks now. */
  get protocol(): 'ascii' | 'binary' {
    return this.binary ? 'binary' : 'ascii';
  }

  /** Whether the connection has buffer `index` of `dev` open (binary protocol). */
  hasBinaryBuffer(dev: Device, index: number): boolean {
    return this.binary?.hasBuffer(dev, index) ?? false;
  }

  /** Scans this connection's readers lost to falling behind, closed readers included. */
  get droppedScans(): number {
    return this.buffers.droppedScans + (this.binary?.droppedScans ?? 0);
  }

  /** What this connection's buffers have reserved (bytes). */
  get reservedBytes(): number {
    return this.buffers.budget.reserved + (this.binary?.reservedBytes ?? 0);
  }

  /**
   * Waiting for a command with nothing of it received and no command running: the
   * server may close it to make room (`evictable`) or after `idleTimeoutMs` (`idle`).
   * A connection with an output buffer is never taken for idle: a cyclic DAC plays on
   * while its client is quiet.
   */
  get evictable(): boolean {
    const hasOutput = this.buffers.hasOutput || (this.binary?.hasOutput ?? false);
    return !this.ended && !this.executing && this.reader.awaitingCommand && !hasOutput;
  }

  /**
   * Whether the client ever sent a whole command line. A connection that never did is what
   * a flood of idle sockets looks like: the server makes room with those first, so a real
   * client pausing between its commands is not taken for the longest idle.
   */
  spoken = false;

  /** Evictable and with nothing open at all. */
  get idle(): boolean {
    return this.evictable && !this.buffers.hasOpen && !(this.binary?.hasOpen ?? false);
  }

  /** When this connection last received or sent anything (Date.now()). */
  get lastActivity(): number {
    return Math.max(this.reader.lastDataAt, this.lastReplyAt);
  }

  /** Closes the connection for the server (to make room, or idle too long). */
  evict(why: 'evicted' | 'idle'): Promise<void> {
    this.endedBy ??= why;
    trace(`${this.peer}: closed (${why})`);
    return this.end();
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
        this.spoken = true;
        const cmd = this.parse(r.line);
        if (trace.enabled)
          trace(`${this.peer}: ${r.line.trimEnd()}${cmd.op === 'error' ? ' (syntax error)' : ''}`);
        if (cmd.op === 'exit') break;
        if (cmd.op === 'binary') {
          await this.switchToBinary();
          break;
        }
        this.executing = true;
        try {
          await this.execute(cmd);
        } catch (err) {
          if (this.reader.isClosed || this.socket.destroyed) break;
          // A failure outside the protocol's own error paths: answer it, keep serving.
          this.host.log(`${this.peer}: ${(err as Error).message}`);
          await this.int(negErrno(err)).catch(() => undefined);
        } finally {
          this.executing = false;
        }
      }
    } finally {
      if (this.reader.stalled) this.endedBy ??= 'stalled';
      await this.end(true);
    }
  }

  /**
   * parseLine(), except that a READBUF line equal to the last one reuses its command: a
   * client reading a stream sends the same line for every block, and the lexer and
   * grammar ran for each (the device it names is looked up in the context's device list,
   * which does not change).
   */
  private parse(line: string): Command<Device, Channel> {
    const last = this.lastReadBuf;
    if (last && last.line === line) return last.cmd;
    const cmd = parseLine(line, this.resolver);
    if (cmd.op === 'readbuf') this.lastReadBuf = { line, cmd };
    return cmd;
  }

  /**
   * `BINARY`: answered `0` in ASCII, then frames (libiio 1.0). Buffers opened in ASCII
   * are closed first, as iiod closes them when its ASCII interpreter ends.
   */
  private async switchToBinary(): Promise<void> {
    await this.int(0);
    await this.buffers.closeAll();
    this.binary = new BinarySession(this.host, this.socket, this.reader, this.peer, this);
    this.host.switchedToBinary(this);
    trace(`${this.peer}: switched to the binary protocol`);
    await this.binary.run();
  }

  /**
   * Closes the connection and releases everything the session opened: the socket first,
   * so a device slow to let go never keeps the connection (and its descriptor) open.
   * `flush`: the client is done (EXIT, or it half-closed after its last command): what
   * was written still reaches it — for a while, if it does not read it.
   */
  async end(flush = false): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.drainTimer) clearTimeout(this.drainTimer);
    if (flush && !this.socket.destroyed && this.socket.writable) {
      const timer = setTimeout(() => this.socket.destroy(), FLUSH_MS);
      this.socket.once('close', () => clearTimeout(timer));
      this.socket.end();
    } else this.socket.destroy();
    await this.binary?.end();
    await this.buffers.closeAll();
    trace(`${this.peer}: closed`);
  }

  /**
   * Waits until the socket has taken what was written. A peer that reads nothing for
   * the command timeout is dropped: a client that stopped reading must not hold its
   * connection (a slot, a reader of the device) forever.
   *
   * A READBUF waits here once per block: one timer per connection is re-armed
   * (refresh()) for each wait rather than a timer and a race of promises made per block.
   */
  private drained(): Promise<void> {
    const stallMs = this.host.limits.commandTimeoutMs;
    if (stallMs > 0) {
      this.drainWaiting = true;
      if (this.drainTimer) this.drainTimer.refresh();
      else {
        this.drainTimer = setTimeout(() => this.drainStalled(stallMs), stallMs);
        // the socket keeps the process alive while it is open; this timer must not
        this.drainTimer.unref();
      }
    }
    return new Promise<void>((resolve, reject) =>
      this.reader.onDrainOrEnd(() => {
        this.drainWaiting = false;
        this.lastReplyAt = Date.now();
        if (this.socket.destroyed) reject(new IioError('EPIPE', 'the connection is closed'));
        else resolve();
      }),
    );
  }

  /** The drain timer fired: re-armed when each wait began, so this wait took stallMs. */
  private drainStalled(stallMs: number): void {
    if (!this.drainWaiting || this.socket.destroyed) return;
    this.endedBy ??= 'stalled';
    trace(`${this.peer}: read nothing for ${stallMs} ms: closed`);
    this.socket.destroy();
  }

  private async send(data: string | Buffer): Promise<void> {
    if (this.socket.destroyed) throw new IioError('EPIPE', 'the connection is closed');
    this.lastReplyAt = Date.now();
    if (!this.socket.write(data)) await this.drained();
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
      let packed;
      try {
        packed = decodePackedValues(data, list.length, 'WRITE from the client');
      } catch {
        return this.int(NEG.EINVAL); // shorter than its lengths say
      }
      // A length ≤ 0 leaves that attribute alone.
      await writeAttrs(
        list,
        packed.values.map((v) => (typeof v === 'string' ? v : null)),
      );
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
      // (no await when a block is queued: one hop less per block)
      if (!c.hasData) await c.waitForData(this.reader);
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
      let len = 0;
      for (const it of items) len += it.data.length;
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
      this.lastReplyAt = Date.now();
      // write() says false for any block larger than the socket's high-water mark, even
      // when the kernel took all of it at once: wait only for what is still queued.
      if (!ok && this.socket.writableLength > 0) await this.drained();
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
    const writing = { output: w, remaining: nb };
    this.writing = writing;
    // Read ahead of the device (from this connection's budget): a client that leaves
    // mid-write has little in flight once its process is gone (its socket buffers), and
    // its FIN is seen as soon as that is read, not when it has played.
    const ahead = this.buffers.budget.reserve(Math.min(nb, WRITE_READ_AHEAD));
    if (ahead) this.reader.setReadAhead(ahead.bytes);
    try {
      while (writing.remaining > 0) {
        const data = await this.reader.readSome(Math.min(writing.remaining, 1024 * 1024));
        writing.remaining -= data.length;
        this.checkWriterLeft();
        await writer.add(data);
        this.checkWriterLeft();
      }
    } finally {
      this.writing = undefined;
      this.reader.setReadAhead(0);
      ahead?.release();
    }
    return this.int(await writer.finish());
  }

  /**
   * The client has stopped sending (FIN or gone) before the WRITEBUF's bytes are all
   * here: they never will be. What it sent is not played for nobody — the push under way
   * is cancelled, the rest dropped — and the session ends, releasing the device. A client
   * that half-closes after sending every byte still has its write carried out.
   */
  private checkWriterLeft(): void {
    const w = this.writing;
    if (!w || !this.reader.isClosed || w.remaining <= this.reader.buffered) return;
    w.output.buffer.cancel();
    throw new IioError('EPIPE', 'the client left during WRITEBUF', { op: 'WRITEBUF' });
  }
}
