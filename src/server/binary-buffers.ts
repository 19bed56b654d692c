/**
 * Buffers and blocks of a binary-protocol connection (libiio 1.0's OPEN_BUFFER,
 * CREATE_BLOCK, TRANSFER_BLOCK, ENABLE_BUFFER...): the client creates blocks of a size it
 * picks and enqueues them; an input block is answered with its samples once the device
 * delivered them, an output block once its samples were pushed. Underneath are the same
 * buffers as in ASCII (buffer-ops.ts): a reader joins the device's shared stream with
 * its own bounded queue, an output device has one writer at a time.
 *
 * The model's buffer is opened once its block size is known: an input one at
 * ENABLE_BUFFER (libiio creates and enqueues its blocks first), an output one at the
 * first block, which also says whether it is cyclic.
 *
 * libiio's client sends FREE_BLOCK and CLOSE_BUFFER on its context's connection, not on
 * the buffer's (iiod keeps one list for all connections). A connection that does not have
 * the buffer answers 0 when another one does, and leaves it alone: which of several
 * clients' buffers it meant cannot be told, and the buffer's own connection, which
 * libiio closes right after, releases it.
 */
import {
  decodeMaskWords,
  DEFAULT_CLIENT_ID,
  encodeEnqueueFailure,
  encodeMaskWords,
  maskBytes,
  OP,
  parseBlockCode,
  type FrameHeader,
} from '../iiod-protocol/binary';
import type { Channel } from '../model/channel';
import { ChannelMask } from '../model/channel-mask';
import type { Device } from '../model/device';
import { tracer } from '../util/trace';
import { MAX_SKIP, type Chunk, type FrameIo } from './binary-frames';
import { scanBytesOf, SessionBuffers, streamChannels, type SessionHost } from './buffer-ops';
import { NEG, negErrno } from './device-ops';
import type { InputClient, OutputClient } from './streams';

const trace = tracer('server');

/** Bytes of blocks one connection may have created at once (they bound what it can hold). */
export const MAX_CONNECTION_BLOCK_BYTES = 256 * 1024 * 1024;

interface Block {
  readonly index: number;
  readonly size: number;
  /** The client id its transfers are answered on (libiio: block index + 1). */
  clientId: number;
  /** Enqueued and not answered yet. */
  queued: boolean;
  /** bytes_used of its last transfer (RETRY_DEQUEUE_BLOCK asks for the same). */
  lastBytes: number;
}

/** One open buffer of this connection. */
class BufferEntry {
  readonly blocks = new Map<number, Block>();
  enabled = false;
  /** Input: the reader while enabled, and the blocks waiting for samples, in order. */
  input: InputClient | null = null;
  readonly pending: Block[] = [];
  wake: (() => void) | null = null;
  /** Output: the writer once the first block came, and its pushes, one at a time. */
  output: OutputClient | null = null;
  pushes: Promise<void> = Promise.resolve();
  /** Counts stops: a push queued before one does not reopen the writer after it. */
  generation = 0;

  constructor(
    readonly dev: Device,
    readonly index: number,
    readonly wire: ChannelMask,
    readonly channels: readonly Channel[],
    readonly isOutput: boolean,
    readonly scanBytes: number,
  ) {}

  notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

export class BinaryBuffers {
  private readonly entries = new Map<string, BufferEntry>();
  private readonly ops: SessionBuffers;
  private blockBytes = 0;

  constructor(
    private readonly host: SessionHost,
    private readonly owner: object,
    private readonly io: FrameIo,
    private readonly devices: () => readonly Device[],
    private readonly peer: string,
  ) {
    // A binary reader's layout is fixed at OPEN_BUFFER: always its own channels.
    this.ops = new SessionBuffers(host, owner, true);
  }

  get inputClients(): InputClient[] {
    return this.ops.inputClients;
  }

  /** Scans this connection's readers lost to falling behind, closed readers included. */
  get droppedScans(): number {
    return this.ops.droppedScans;
  }

  /** Bytes this connection's buffers have reserved from the server's budget. */
  get reservedBytes(): number {
    return this.ops.budget.reserved;
  }

  /** Whether any buffer is open. */
  get hasOpen(): boolean {
    return this.entries.size > 0;
  }

  /** Whether an output buffer is open (a DAC playing: never evicted for being quiet). */
  get hasOutput(): boolean {
    return [...this.entries.values()].some((e) => e.isOutput);
  }

  has(dev: Device, index: number): boolean {
    const i = this.devices().indexOf(dev);
    return i >= 0 && this.entries.has(`${i}/${index}`);
  }

  /** Handles a buffer or block command; false ends the connection. */
  async dispatch(h: FrameHeader): Promise<boolean> {
    switch (h.op) {
      case OP.OPEN_BUFFER:
        return this.open(h);
      case OP.CLOSE_BUFFER:
        await this.answer(DEFAULT_CLIENT_ID, await this.close(h));
        return true;
      case OP.ENABLE_BUFFER:
        await this.answer(DEFAULT_CLIENT_ID, await this.enable(h));
        return true;
      case OP.DISABLE_BUFFER:
        await this.answer(DEFAULT_CLIENT_ID, await this.disable(h));
        return true;
      case OP.CREATE_BLOCK: {
        const size = await this.io.readU64();
        await this.answer(h.clientId, this.createBlock(h, size));
        return true;
      }
      case OP.FREE_BLOCK:
        await this.answer(h.clientId, this.freeBlock(h));
        return true;
      case OP.TRANSFER_BLOCK:
      case OP.ENQUEUE_BLOCK_CYCLIC:
        return this.transfer(h, h.op === OP.ENQUEUE_BLOCK_CYCLIC);
      case OP.RETRY_DEQUEUE_BLOCK:
        await this.retry(h);
        return true;
      default:
        await this.answer(h.clientId, NEG.ENOSYS);
        return true;
    }
  }

  private answer(clientId: number, code: number, payload?: Buffer): Promise<void> {
    if (code < 0) trace(`${this.peer}: answered ${code} (client ${clientId})`);
    return this.io.respond(clientId, code, payload);
  }

  private entry(h: FrameHeader): BufferEntry | undefined {
    return this.entries.get(`${h.dev}/${h.code & 0xffff}`);
  }

  /** OPEN_BUFFER: the mask words follow; answered with them as the buffer enables them. */
  private async open(h: FrameHeader): Promise<boolean> {
    const dev = this.devices()[h.dev];
    if (!dev) {
      // The mask's size depends on the device: what follows cannot be read.
      await this.answer(DEFAULT_CLIENT_ID, NEG.EINVAL);
      return false;
    }
    const n = dev.channels.length;
    const words = await this.io.readBytes(maskBytes(n));
    const index = h.code & 0xffff;
    const key = `${h.dev}/${index}`;
    if (this.entries.has(key)) return this.done(this.answer(DEFAULT_CLIENT_ID, NEG.EEXIST));
    // Our devices have one buffer, index 0 (iiod: -ENODEV for a buffer it does not have).
    if (index !== 0 || !dev.isBufferCapable) {
      return this.done(this.answer(DEFAULT_CLIENT_ID, NEG.ENODEV));
    }
    const picked = streamChannels(dev, ChannelMask.of(n, decodeMaskWords(words, n)));
    if (typeof picked === 'number') return this.done(this.answer(DEFAULT_CLIENT_ID, picked));
    if (picked.isOutput && this.ops.writerIsOther(dev)) {
      return this.done(this.answer(DEFAULT_CLIENT_ID, NEG.EBUSY));
    }
    const e = new BufferEntry(
      dev,
      index,
      picked.wire,
      picked.channels,
      picked.isOutput,
      scanBytesOf(picked.channels),
    );
    this.entries.set(key, e);
    const enabled = encodeMaskWords(n, (i) => picked.wire.has(i));
    return this.done(this.answer(DEFAULT_CLIENT_ID, enabled.length, enabled));
  }

  private async done(p: Promise<void>): Promise<boolean> {
    await p;
    return true;
  }

  /** Another connection's buffer, when this one does not have it (see the file's note). */
  private elsewhere(h: FrameHeader): boolean {
    const dev = this.devices()[h.dev];
    return dev !== undefined && this.host.bufferOpenElsewhere(dev, h.code & 0xffff, this.owner);
  }

  private async close(h: FrameHeader): Promise<number> {
    const e = this.entry(h);
    if (!e) return this.elsewhere(h) ? 0 : this.devices()[h.dev] ? NEG.EBADF : NEG.EINVAL;
    await this.release(e);
    return 0;
  }

  private async enable(h: FrameHeader): Promise<number> {
    const e = this.entry(h);
    if (!e) return this.devices()[h.dev] ? NEG.EBADF : NEG.EINVAL;
    if (e.enabled) return 0;
    if (!e.isOutput) {
      // The stream's blocks hold as many scans as the client's largest block.
      const largest = Math.max(0, ...[...e.blocks.values()].map((b) => b.size));
      const samples = Math.max(1, Math.floor((largest || 65536) / e.scanBytes));
      const r = await this.ops.open(e.dev, samples, e.wire, false);
      if (r < 0) return r;
      const c = this.ops.input(e.dev);
      if (typeof c === 'number') return c;
      e.input = c;
      void this.pump(e, c);
    }
    e.enabled = true;
    return 0;
  }

  private async disable(h: FrameHeader): Promise<number> {
    const e = this.entry(h);
    if (!e) return this.devices()[h.dev] ? NEG.EBADF : NEG.EINVAL;
    await this.stop(e);
    return 0;
  }

  /**
   * Stops the device stream (input) or the writer (output); blocks stay. The writer is
   * closed at once, not after its pushes: a client that went away must not keep the
   * device busy while a DAC that takes nothing holds a push (libiio's client has its
   * blocks back before it disables or closes a buffer, so nothing it waits for is lost).
   */
  private async stop(e: BufferEntry): Promise<void> {
    e.enabled = false;
    e.generation++;
    if (e.input) {
      e.input = null;
      e.notify();
      await this.ops.close(e.dev);
    }
    if (e.output) {
      // Pushes still queued see the generation change and do not reopen it.
      e.output = null;
      await this.ops.close(e.dev);
    }
  }

  private async release(e: BufferEntry): Promise<void> {
    this.entries.delete(`${this.devices().indexOf(e.dev)}/${e.index}`);
    for (const b of e.blocks.values()) this.blockBytes -= b.size;
    e.blocks.clear();
    e.pending.length = 0;
    await this.stop(e);
  }

  /** Everything this connection opened (it is going away). */
  async closeAll(): Promise<void> {
    for (const e of [...this.entries.values()]) await this.release(e).catch(() => undefined);
    await this.ops.closeAll();
  }

  private createBlock(h: FrameHeader, size: number): number {
    const e = this.entry(h);
    if (!e) return this.devices()[h.dev] ? NEG.EBADF : NEG.EINVAL;
    const { block } = parseBlockCode(h.code);
    if (e.blocks.has(block)) return NEG.EEXIST;
    if (size < e.scanBytes) return NEG.EINVAL;
    if (
      size > this.host.limits.maxBufferBytes ||
      this.blockBytes + size > MAX_CONNECTION_BLOCK_BYTES
    ) {
      trace(`${this.peer}: a block of ${size} bytes refused (${this.blockBytes} held)`);
      return NEG.ENOMEM;
    }
    e.blocks.set(block, { index: block, size, clientId: h.clientId, queued: false, lastBytes: 0 });
    this.blockBytes += size;
    return 0;
  }

  private freeBlock(h: FrameHeader): number {
    const e = this.entry(h);
    if (!e) return this.elsewhere(h) ? 0 : NEG.EBADF;
    const b = e.blocks.get(parseBlockCode(h.code).block);
    if (!b) return NEG.EBADF;
    // A transfer in flight is dropped unanswered, as iiod cancels it.
    const i = e.pending.indexOf(b);
    if (i >= 0) e.pending.splice(i, 1);
    e.blocks.delete(b.index);
    this.blockBytes -= b.size;
    e.notify();
    return 0;
  }

  /**
   * TRANSFER_BLOCK / ENQUEUE_BLOCK_CYCLIC: a u64 bytes_used, then, for an output buffer,
   * that many bytes of samples. Answered later, on the block's client id.
   */
  private async transfer(h: FrameHeader, cyclic: boolean): Promise<boolean> {
    const bytes = await this.io.readU64();
    const e = this.entry(h);
    if (!e) {
      await this.answer(h.clientId, encodeEnqueueFailure(NEG.EBADF));
      // Without the buffer we cannot tell whether samples follow: only an input-only
      // device says none do.
      const dev = this.devices()[h.dev];
      return dev !== undefined && !dev.channels.some((c) => c.isOutput && c.isScanElement);
    }
    const fail = async (code: number): Promise<boolean> => {
      if (e.isOutput) {
        if (bytes > MAX_SKIP) {
          await this.answer(h.clientId, encodeEnqueueFailure(code));
          return false;
        }
        await this.io.skip(bytes);
      }
      await this.answer(h.clientId, encodeEnqueueFailure(code));
      return true;
    };
    const b = e.blocks.get(parseBlockCode(h.code).block);
    if (!b) return fail(NEG.EBADF);
    if (bytes < e.scanBytes || bytes > b.size) return fail(NEG.EINVAL);
    if (b.queued) return fail(NEG.EBUSY);
    if (cyclic && !e.isOutput) return fail(NEG.EPERM);
    b.clientId = h.clientId;
    b.lastBytes = bytes;
    b.queued = true;
    if (!e.isOutput) {
      e.pending.push(b);
      e.notify();
      return true;
    }
    const data = await this.io.readBytes(bytes);
    const gen = e.generation;
    e.pushes = e.pushes.then(() => this.push(e, b, data, cyclic, gen));
    return true;
  }

  /** RETRY_DEQUEUE_BLOCK: an input block whose dequeue failed waits for samples again. */
  private async retry(h: FrameHeader): Promise<void> {
    const e = this.entry(h);
    const b = e?.blocks.get(parseBlockCode(h.code).block);
    if (!e || !b) return this.answer(h.clientId, NEG.EBADF);
    b.clientId = h.clientId;
    if (e.isOutput || b.queued || !b.lastBytes) return this.answer(h.clientId, 0);
    b.queued = true;
    e.pending.push(b);
    e.notify();
  }

  /** One output block: the writer opens with the first; answered once pushed. */
  private async push(
    e: BufferEntry,
    b: Block,
    data: Buffer,
    cyclic: boolean,
    gen: number,
  ): Promise<void> {
    let code = 0;
    try {
      if (gen !== e.generation) {
        // Stopped (disabled, closed, or the client left) after this block came.
        code = encodeEnqueueFailure(NEG.EBADF);
      } else if (!e.output) {
        const samples = Math.max(1, Math.floor(b.size / e.scanBytes));
        const r = await this.ops.open(e.dev, samples, e.wire, cyclic);
        if (r < 0) code = encodeEnqueueFailure(r);
        else {
          const w = this.ops.output(e.dev);
          if (typeof w === 'number') code = encodeEnqueueFailure(w);
          else e.output = w;
        }
      }
      if (code === 0 && e.output) {
        const whole = Math.floor(data.length / e.scanBytes) * e.scanBytes;
        await e.output.buffer.push(data.subarray(0, whole));
      }
    } catch (err) {
      code = encodeEnqueueFailure(negErrno(err));
    }
    b.queued = false;
    // A block freed or a buffer closed meanwhile is not answered (iiod cancels it).
    if (e.blocks.get(b.index) === b) await this.answer(b.clientId, code).catch(() => undefined);
  }

  /**
   * Answers an enabled input buffer's blocks, in the order they were enqueued, each with
   * `bytes_used` of samples (whole scans) from its reader's queue — without a copy when
   * the device's blocks are the client's.
   */
  private async pump(e: BufferEntry, c: InputClient): Promise<void> {
    const conn = this.io.end;
    while (e.input === c && !this.io.isClosed) {
      const b = e.pending[0];
      if (!b) {
        await new Promise<void>((r) => (e.wake = r));
        continue;
      }
      if (c.error) {
        // A failed dequeue: the block stays enqueued (RETRY_DEQUEUE_BLOCK).
        e.pending.shift();
        b.queued = false;
        await this.answer(b.clientId, negErrno(c.error)).catch(() => undefined);
        continue;
      }
      const scan = c.scanBytes;
      const want = scan ? Math.floor(b.lastBytes / scan) * scan : 0;
      const items: Chunk[] = [];
      let got = 0;
      while (got < want) {
        if (!c.hasData) await c.waitForData(conn);
        if (e.input !== c || e.pending[0] !== b || c.error || this.io.isClosed) break;
        for (const it of c.take(want - got)) {
          items.push(it);
          got += it.data.length;
        }
      }
      if (got < want || !want) {
        for (const it of items) it.done?.();
        if (!want && e.pending[0] === b) {
          e.pending.shift();
          b.queued = false;
          await this.answer(b.clientId, NEG.EINVAL).catch(() => undefined);
        }
        continue;
      }
      e.pending.shift();
      b.queued = false;
      c.sentBytes += got;
      await this.io.respond(b.clientId, got, items).catch(() => undefined);
    }
  }
}
