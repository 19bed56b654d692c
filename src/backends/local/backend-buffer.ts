/**
 * An open buffer of a local device: data through its native stream, and a close that
 * disables the buffer, closes the fds and restores sysfs — asynchronously for its owner,
 * synchronously for the exit/signal guard. openLocalBuffer (buffer.ts) builds it.
 */
import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { IioError } from '../../errors';
import type { BackendBuffer, TransferStats } from '../../model/backend';
import type { ChannelMask } from '../../model/channel-mask';
import type { NativeAddon } from '../../native';
import type { NativeBlock, NativeStream } from '../../native/stream';
import { tracer } from '../../util/trace';
import { release } from './exit-guard';
import { readTrim, type SysfsJournal } from './sysfs-journal';

const trace = tracer('local');

/** How a local buffer ended up moving data. */
export interface LocalTransport {
  /** `buffer-fd`: IIO_BUFFER_GET_FD_IOCTL; `dev-node`: the pre-5.11 /dev fd itself. */
  readonly fd: 'buffer-fd' | 'dev-node';
  /** Why GET_FD was not used (`ENOTTY`, ...), when the /dev fd serves. */
  readonly getFdError?: string;
  readonly dmabuf: {
    readonly tried: boolean;
    readonly ok: boolean;
    /** errno code of the failure (`EPERM` on 6.12 kfifo buffers). */
    readonly code?: string;
    readonly op?: string;
  };
}

/** Everything an open buffer holds, as openLocalBuffer assembled it. */
export interface LocalBufferParts {
  readonly native: NativeAddon;
  /** The channels the kernel actually enabled. */
  readonly mask: ChannelMask;
  readonly stream: NativeStream;
  readonly transport: LocalTransport;
  readonly scanBytes: number;
  /** The fds to close (the data fd). */
  readonly fds: number[];
  readonly enablePath: string;
  readonly dataAvailablePath: string;
  readonly journal: SysfsJournal;
  readonly where: { uri: string; device: string };
  readonly cyclic: boolean;
  readonly timeoutMs: number;
  /**
   * Output through write() on a DMA buffer: its data_available counts free space, and a
   * block is played only once full, so nothing tells when what was written has played.
   */
  readonly drainUnknown?: boolean;
}

/**
 * One line of what a stream did, for the trace at close (and the tests that read it),
 * taken once the thread has stopped and before the disable: `in flight` is what the
 * kernel still had (the disable aborts it), `held` what JS still holds.
 */
function summary(s: TransferStats, enqueued: number, lostScans: number): string {
  const parts = [
    `transfer ${s.mode}`,
    `${s.blocks} blocks`,
    `${s.bytes} bytes`,
    `${s.copies} copies`,
    `${s.written} written`,
  ];
  if (s.mode === 'dmabuf')
    parts.push(
      `${enqueued} enqueued`,
      `${s.inFlight} in flight`,
      `${s.waiting} waiting`,
      `${s.held} held`,
      `${s.transferErrors} transfer errors`,
      `${lostScans} scans lost`,
      `${s.stalls} stalls`,
    );
  return parts.join(', ');
}

/** An open buffer of a local device (a BackendBuffer with a few extras for tests and tools). */
export class LocalBackendBuffer implements BackendBuffer {
  readonly mask: ChannelMask;
  /** The stream moving the data. */
  readonly stream: NativeStream;
  readonly transport: LocalTransport;
  readonly scanBytes: number;
  private closed = false;
  private closing?: Promise<void>;

  /** @internal built by openLocalBuffer, which also guards it (exit-guard.ts). */
  constructor(private readonly parts: LocalBufferParts) {
    this.mask = parts.mask;
    this.stream = parts.stream;
    this.transport = parts.transport;
    this.scanBytes = parts.scanBytes;
  }

  read(): Promise<NativeBlock> {
    return this.stream.read();
  }

  write(data: Buffer): Promise<void> {
    return this.stream.write(data);
  }

  /**
   * Output: waits until the kernel's queue is empty (kfifo `data_available` counts the
   * scans still queued; over DMABUF the thread waits for every queued DMABUF's fence), so
   * that closing does not drop what was pushed. A cyclic buffer never drains.
   */
  async drain(): Promise<void> {
    const { cyclic, timeoutMs, dataAvailablePath, where } = this.parts;
    if (cyclic || this.closed) return;
    if (this.transport.dmabuf.ok) return this.stream.drain();
    if (this.parts.drainUnknown)
      throw new IioError(
        'ENOTSUP',
        'this device (a DMA buffer written with write()) cannot tell when it has played what ' +
          'was written: its data_available counts free space, and it plays only full blocks. ' +
          "Use transfer 'dmabuf' (Linux 6.11+)",
        { ...where, op: 'drain' },
      );
    let last = Number.NaN;
    let since = Date.now();
    for (;;) {
      let left: number;
      try {
        left = Number(await readTrim(dataAvailablePath));
      } catch {
        return; // no data_available (old kernel): nothing to wait on
      }
      if (!Number.isFinite(left) || left <= 0) return;
      if (left !== last) {
        last = left;
        since = Date.now();
      } else if (timeoutMs > 0 && Date.now() - since > timeoutMs) {
        throw new IioError(
          'ETIMEDOUT',
          `the device consumed nothing for ${timeoutMs} ms (${left} scans still queued)`,
          { ...where, op: 'drain' },
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  cancel(): void {
    this.stream.cancel();
  }

  stats(): TransferStats {
    const s = this.stream.stats();
    return {
      mode: s.mode,
      blocks: s.delivered,
      bytes: s.bytes,
      written: s.written,
      inFlight: s.inKernel,
      waiting: s.waiting,
      held: s.held,
      copies: s.copies,
      transferErrors: s.transferErrors,
      stalls: s.starved,
      timeouts: s.timeouts,
    };
  }

  /**
   * Stops the thread, disables the buffer, detaches the DMABUFs, closes the fds and
   * restores sysfs. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    release(this);
    // The thread stops first (nothing is enqueued any more), then the disable aborts what
    // the kernel still has, and only then are the DMABUFs detached.
    this.stream.close();
    if (trace.enabled) {
      const s = this.stream.stats();
      trace(
        `${this.parts.where.device}: closed: ${summary(this.stats(), s.enqueued, s.lostScans)}`,
      );
    }
    const { enablePath, where, journal } = this.parts;
    let disableError: IioError | undefined;
    try {
      // Disabled before the fds close and before anything is restored: length, watermark
      // and *_en are refused (EBUSY) while the buffer is enabled.
      await writeFile(enablePath, '0');
    } catch (err) {
      disableError = IioError.wrap(err, { ...where, file: enablePath, op: 'disable buffer' });
    }
    const detach = this.stream.detach();
    if (detach) trace(`close: DMABUF detach failed with ${detach}`);
    this.closeFds();
    for (const e of await journal.restore()) trace(`close: ${e.message}`);
    if (disableError) throw disableError;
  }

  private closeFds(): void {
    for (const fd of this.parts.fds.splice(0)) {
      try {
        this.parts.native.close(fd);
      } catch (err) {
        trace(`close fd ${fd}: ${String(err)}`);
      }
    }
  }

  /** @internal the exit/signal safety net: everything close() does, synchronously. */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    release(this);
    this.stream.close();
    try {
      writeFileSync(this.parts.enablePath, '0');
    } catch {
      // Best effort: the process is going away.
    }
    this.stream.detach();
    this.closeFds();
    this.parts.journal.restoreSync();
  }
}
