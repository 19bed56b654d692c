/**
 * Buffers and events of `local:` devices: the seam between the sysfs backend (which
 * knows the files) and the native module (which streams). The IIO policy lives here:
 * which scan elements to enable, length and watermark, enabling and disabling, and
 * restoring on close everything that was changed. The addon only moves bytes.
 */
import { constants as fsc, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { debuglog } from 'node:util';
import { IioError } from '../../errors';
import { computeScanLayout } from '../../format/layout';
import { ChannelMask } from '../../model/channel-mask';
import { channelKindOf } from '../../names/channel-type';
import type { DeviceInfo } from '../../model/info';
import {
  errnoOfNative,
  loadNative,
  nativeError,
  type NativeAddon,
  type NativeStreamStats,
} from '../../native';
import { NativeStream, type NativeBlock } from '../../native/stream';
import type {
  BackendBuffer,
  BackendEventStream,
  BufferOpenOptions,
  RawEvent,
  TransferMode,
} from '../../model/backend';

/** What the buffer layer needs to know about one local device. */
export interface LocalDeviceHandle {
  readonly uri: string;
  readonly device: DeviceInfo;
  /** `<sysfsRoot>/bus/iio/devices/iio:deviceN` */
  readonly sysfsDir: string;
  /** `<devDir>/iio:deviceN` */
  readonly devNode: string;
  /** Directory of buffer 0's control files (`buffer0/` on 5.11+, else `buffer/`). */
  readonly bufferDir: string;
  /** Directory of buffer 0's scan elements (`buffer0/` on 5.11+, else `scan_elements/`). */
  readonly scanElementsDir: string;
  /** Per channel number: the scan element's file stem (`in_voltage0`), '' when not a scan element. */
  readonly scanElementStems: readonly string[];
  /** Context timeout in ms (0 = forever). */
  readonly timeoutMs: number;
}

const nodeDebug = debuglog('iiokit');
const debugOn = (): boolean => !!process.env.IIOKIT_DEBUG || nodeDebug.enabled;

/** One line of what a stream did, for the debug log at close (and the tests that read it). */
function summary(s: NativeStreamStats): string {
  const parts = [
    `transfer ${s.mode}`,
    `${s.delivered} blocks`,
    `${s.bytes} bytes`,
    `${s.copies} copies`,
    `${s.written} written`,
  ];
  if (s.mode === 'dmabuf')
    parts.push(
      `${s.enqueued} enqueued`,
      `${s.completed} completed`,
      `${s.transferErrors} transfer errors`,
      `${s.lostScans} scans lost`,
      `${s.starved} starved`,
    );
  return parts.join(', ');
}
/** Debug log: `NODE_DEBUG=iiokit` (Node's convention) or `IIOKIT_DEBUG=1`. */
function debug(msg: string): void {
  if (process.env.IIOKIT_DEBUG) process.stderr.write(`iiokit: ${msg}\n`);
  else nodeDebug(msg);
}

/** Kernel buffer length in blocks when the caller does not say (libiio's default). */
const DEFAULT_KERNEL_BLOCKS = 4;
/**
 * Blocks JS may have queued when the caller does not say: about 2 MiB, at least 4, at
 * most 64. A deep queue lets the streaming thread hand fast streams over in large batches
 * (up to half the queue per wake-up of the JS thread): on a 2-core machine every wake-up
 * of a third runnable thread preempts the producer or the reader, and measured at 64 KiB
 * blocks, batches up to 32 brought a FIFO capture from ~0.6x to ~0.94x of `cat`.
 */
function defaultQueue(blockBytes: number): number {
  return Math.min(64, Math.max(4, Math.ceil((2 * 1024 * 1024) / blockBytes)));
}
/** Event records per read (the kernel queues at most 16). */
const EVENTS_PER_READ = 16;
const EVENT_BYTES = 16;
/**
 * Attach errors that mean "this kernel or buffer has no DMABUF": 6.1 buffer fds answer
 * ENOTTY, 6.12 EINVAL for unknown ioctls and EPERM for kfifo buffers, /dev fds ENODEV,
 * and a missing heap ENOENT. They fall back to read()/write() silently.
 */
const DMABUF_UNSUPPORTED = new Set(['ENOTTY', 'EINVAL', 'ENODEV', 'EPERM', 'ENOENT']);

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

/** The DMA heap DMABUFs come from (`IIOKIT_DMA_HEAP` names another). */
function heapPath(): string {
  return process.env.IIOKIT_DMA_HEAP ?? '/dev/dma_heap/system';
}

/** The transfer mode asked for: the option, else `IIOKIT_DMABUF=0` (read()/write()), else auto. */
function transferMode(options: BufferOpenOptions): TransferMode {
  if (options.transfer && options.transfer !== 'auto') return options.transfer;
  return process.env.IIOKIT_DMABUF === '0' ? 'fileio' : 'auto';
}

/** Why DMABUF is not possible, in words, for the error of a forced `transfer: 'dmabuf'`. */
function dmabufRefusal(code: string, op: string, heap: string): string {
  if (op === 'open heap')
    return `the DMA heap ${heap} cannot be opened (${code}); IIOKIT_DMA_HEAP names another`;
  if (code === 'ENOTTY' || code === 'EINVAL' || code === 'ENODEV')
    return `this kernel has no IIO DMABUF interface (${op}: ${code}; Linux 6.11+ has it)`;
  if (code === 'EPERM')
    return `the device's buffer does not take DMABUFs (${op}: EPERM: kfifo buffers, i.e. triggered devices, only do read()/write())`;
  return `${op} failed with ${code}`;
}

async function readTrim(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

/**
 * The sysfs files a buffer touched, to be put back on close, in the order they were
 * changed: length before watermark, since the kernel refuses a watermark above the length
 * and clamps the watermark when the length shrinks (which is also why originals are read
 * before anything is written).
 */
class SysfsJournal {
  private readonly saved: Array<[path: string, value: string]> = [];
  private readonly originals = new Map<string, string>();

  constructor(private readonly where: { uri: string; device: string }) {}

  private ctx(path: string, op: string): { uri: string; device: string; file: string; op: string } {
    return { ...this.where, file: path, op };
  }

  async read(path: string): Promise<string> {
    try {
      return await readTrim(path);
    } catch (err) {
      throw IioError.wrap(err, this.ctx(path, 'read'));
    }
  }

  /** Reads the values to restore before anything changes them. */
  async snapshot(...paths: string[]): Promise<void> {
    for (const p of paths) {
      try {
        this.originals.set(p, await readTrim(p));
      } catch {
        // absent (no watermark on old kernels): set() reports it if it is needed
      }
    }
  }

  /** Writes when the value differs, remembering the old one. */
  async set(path: string, value: string, restore = true): Promise<void> {
    const original = this.originals.get(path) ?? (await this.read(path));
    // The kernel may have changed it since the snapshot (a clamped watermark).
    const current = this.originals.has(path) ? await this.read(path) : original;
    if (current !== value) {
      try {
        await writeFile(path, value);
      } catch (err) {
        throw IioError.wrap(err, this.ctx(path, 'write'));
      }
    }
    if (restore && original !== value) this.saved.push([path, original]);
  }

  /** Puts back every value, in the order they were changed; returns what failed. */
  async restore(): Promise<IioError[]> {
    const failed: IioError[] = [];
    for (const [path, value] of this.saved.splice(0)) {
      try {
        await writeFile(path, value);
      } catch (err) {
        failed.push(IioError.wrap(err, this.ctx(path, 'restore')));
      }
    }
    return failed;
  }

  /** The same, synchronously (process exit and signals). */
  restoreSync(): void {
    for (const [path, value] of this.saved.splice(0)) {
      try {
        writeFileSync(path, value);
      } catch {
        // Best effort: the process is going away.
      }
    }
  }
}

/** Buffers still open: disabled by the exit/signal safety net if their owner could not. */
const openBuffers = new Set<LocalBackendBuffer>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let exitHooked = false;

function onSignal(sig: NodeJS.Signals): void {
  // Someone else handles this signal (Node-RED, the CLI): they close their buffers and
  // the exit hook catches the rest. Alone, we restore the devices and re-raise it so the
  // process still dies of the signal as it would have without us.
  if (process.listenerCount(sig) > 1) return;
  for (const b of [...openBuffers]) b.closeSync();
  unhookSignals();
  process.kill(process.pid, sig);
}

function hookSignals(): void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => {
      for (const b of [...openBuffers]) b.closeSync();
    });
  }
  if (openBuffers.size === 1) for (const s of SIGNALS) process.on(s, onSignal);
}

function unhookSignals(): void {
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

function track(b: LocalBackendBuffer): void {
  openBuffers.add(b);
  hookSignals();
}

function untrack(b: LocalBackendBuffer): void {
  if (openBuffers.delete(b) && openBuffers.size === 0) unhookSignals();
}

/** An open buffer of a local device (a BackendBuffer with a few extras for tests and tools). */
export class LocalBackendBuffer implements BackendBuffer {
  private closed = false;
  private closing?: Promise<void>;

  /** @internal built by openLocalBuffer. */
  constructor(
    private readonly native: NativeAddon,
    readonly mask: ChannelMask,
    /** The stream moving the data. */
    readonly stream: NativeStream,
    readonly transport: LocalTransport,
    readonly scanBytes: number,
    private readonly fds: number[],
    private readonly enablePath: string,
    private readonly dataAvailablePath: string,
    private readonly journal: SysfsJournal,
    private readonly where: { uri: string; device: string },
    private readonly cyclic: boolean,
    private readonly timeoutMs: number,
    /**
     * Output through write() on a DMA buffer: its data_available counts free space, and a
     * block is played only once full, so nothing tells when what was written has played.
     */
    private readonly drainUnknown = false,
  ) {}

  read(): Promise<NativeBlock> {
    return this.stream.read();
  }

  write(data: Buffer): Promise<void> {
    return this.stream.write(data);
  }

  /**
   * Output: waits until the kernel's queue is empty (kfifo `data_available` counts the
   * scans still queued), so that closing does not drop what was pushed. A cyclic buffer
   * never drains.
   */
  async drain(): Promise<void> {
    if (this.cyclic || this.closed) return;
    // DMABUF: data_available stays 0; the thread waits for every queued DMABUF's fence.
    if (this.transport.dmabuf.ok) return this.stream.drain();
    if (this.drainUnknown)
      throw new IioError(
        'ENOTSUP',
        'this device (a DMA buffer written with write()) cannot tell when it has played what ' +
          'was written: its data_available counts free space, and it plays only full blocks. ' +
          "Use transfer 'dmabuf' (Linux 6.11+)",
        { ...this.where, op: 'drain' },
      );
    let last = Number.NaN;
    let since = Date.now();
    for (;;) {
      let left: number;
      try {
        left = Number(await readTrim(this.dataAvailablePath));
      } catch {
        return; // no data_available (old kernel): nothing to wait on
      }
      if (!Number.isFinite(left) || left <= 0) return;
      if (left !== last) {
        last = left;
        since = Date.now();
      } else if (this.timeoutMs > 0 && Date.now() - since > this.timeoutMs) {
        throw new IioError(
          'ETIMEDOUT',
          `the device consumed nothing for ${this.timeoutMs} ms (${left} scans still queued)`,
          { ...this.where, op: 'drain' },
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  cancel(): void {
    this.stream.cancel();
  }

  /** Stops the thread, disables the buffer, closes the fds and restores sysfs. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    untrack(this);
    // The thread stops first (nothing is enqueued any more), then the disable aborts what
    // the kernel still has, and only then are the DMABUFs detached.
    this.stream.close();
    if (debugOn()) debug(`${this.where.device}: closed: ${summary(this.stream.stats())}`);
    let disableError: IioError | undefined;
    try {
      // Disabled before the fds close and before anything is restored: length, watermark
      // and *_en are refused (EBUSY) while the buffer is enabled.
      await writeFile(this.enablePath, '0');
    } catch (err) {
      disableError = IioError.wrap(err, {
        ...this.where,
        file: this.enablePath,
        op: 'disable buffer',
      });
    }
    const detach = this.stream.detach();
    if (detach) debug(`close: DMABUF detach failed with ${detach}`);
    this.closeFds();
    for (const e of await this.journal.restore()) debug(`close: ${e.message}`);
    if (disableError) throw disableError;
  }

  private closeFds(): void {
    for (const fd of this.fds.splice(0)) {
      try {
        this.native.close(fd);
      } catch (err) {
        debug(`close fd ${fd}: ${String(err)}`);
      }
    }
  }

  /** @internal the exit/signal safety net: everything close() does, synchronously. */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    untrack(this);
    this.stream.close();
    try {
      writeFileSync(this.enablePath, '0');
    } catch {
      // Best effort: the process is going away.
    }
    this.stream.detach();
    this.closeFds();
    this.journal.restoreSync();
  }
}

function busyError(h: LocalDeviceHandle, what: string): IioError {
  return new IioError(
    'EBUSY',
    `${what} is busy: another process (or another buffer of this one) is using ${h.devNode}; ` +
      'only one reader or writer can stream from a device at a time',
    { uri: h.uri, device: h.device.id, file: h.devNode, op: 'open buffer' },
  );
}

/**
 * Opens the device's buffer: configures sysfs, gets the data fd (the buffer fd through
 * IIO_BUFFER_GET_FD_IOCTL, or the /dev fd on kernels without it), tries DMABUF blocks,
 * enables the buffer and starts streaming.
 */
export async function openLocalBuffer(
  h: LocalDeviceHandle,
  options: BufferOpenOptions,
): Promise<LocalBackendBuffer> {
  const where = { uri: h.uri, device: h.device.id };
  const native = loadNative();
  const index = options.bufferIndex ?? 0;
  const bufferDir = index === 0 ? h.bufferDir : `${h.sysfsDir}/buffer${index}`;
  const scanDir = index === 0 ? h.scanElementsDir : bufferDir;
  const samples = options.samples;
  const blocks = options.blocks ?? DEFAULT_KERNEL_BLOCKS;
  if (!Number.isInteger(samples) || samples <= 0)
    throw new IioError(
      'EINVAL',
      `a buffer needs a positive number of samples, not ${samples}`,
      where,
    );
  if (!Number.isInteger(blocks) || blocks < 1 || blocks > 1024)
    throw new IioError('EINVAL', `blocks must be 1..1024, not ${blocks}`, where);

  // 1. The /dev node first: it is exclusive, so a device another process streams from is
  //    reported busy before we touch any of its files.
  let devFd: number;
  try {
    devFd = native.open(h.devNode, fsc.O_RDWR | fsc.O_NONBLOCK);
  } catch (err) {
    if (errnoOfNative(err) === 16) throw busyError(h, h.device.id);
    throw nativeError(err, { ...where, file: h.devNode, op: 'open buffer' });
  }
  const fds: number[] = [];
  let dataFd = devFd;
  let transport: { fd: LocalTransport['fd']; getFdError?: string };
  try {
    dataFd = native.getBufferFd(devFd, index);
    transport = { fd: 'buffer-fd' };
    // The buffer fd holds its own reference: releasing /dev lets another process (or
    // this one, for events) open the device.
    native.close(devFd);
  } catch (err) {
    const e = nativeError(err, where);
    if (e.code === 'EBUSY') {
      native.close(devFd);
      throw busyError(h, `buffer ${index} of ${h.device.id}`);
    }
    if (index !== 0 || !['ENOTTY', 'EINVAL', 'ENODEV'].includes(e.code)) {
      native.close(devFd);
      throw IioError.wrap(e, { op: 'open buffer' });
    }
    // Kernels before 5.11 (and FIFO-backed test devices): the /dev fd is the buffer.
    transport = { fd: 'dev-node', getFdError: e.code };
    debug(`${h.device.id}: no IIO_BUFFER_GET_FD_IOCTL (${e.code}): reading ${h.devNode}`);
  }
  fds.push(dataFd);

  const journal = new SysfsJournal(where);
  let stream: NativeStream | undefined;
  try {
    // 2. Configure while disabled. A buffer left enabled (a crashed owner) is stopped, and
    //    stays stopped after close: nothing is ever left enabled.
    const enablePath = `${bufferDir}/enable`;
    if ((await journal.read(enablePath)) !== '0') await journal.set(enablePath, '0', false);

    const elems = h.device.channels
      .map((c, i) => ({ c, i, stem: h.scanElementStems[i] ?? '' }))
      .filter((e) => e.stem && e.c.isScanElement && e.c.isOutput === options.isOutput);
    for (const e of elems)
      await journal.set(`${scanDir}/${e.stem}_en`, options.mask.has(e.i) ? '1' : '0');
    // Read back: some devices couple channels, so the kernel may enable more than asked.
    const mask = new ChannelMask(h.device.channels.length);
    for (const e of elems)
      if ((await journal.read(`${scanDir}/${e.stem}_en`)) === '1') mask.set(e.i);
    if (mask.isEmpty()) {
      throw new IioError('EINVAL', 'no scan element of the buffer could be enabled', {
        ...where,
        op: 'open buffer',
      });
    }
    // The same layout IioBuffer computes: the block size must agree with the model's.
    const layout = computeScanLayout(
      mask.indices().map((i) => {
        const c = h.device.channels[i];
        const isTimestamp = channelKindOf(c.id).type === 'timestamp';
        return { key: i, index: c.index, format: c.format!, isTimestamp };
      }),
    );
    const scanBytes = layout.scanBytes;

    // 3. Kernel buffer: room for `blocks` blocks; wake up once per block. The watermark
    //    may be fixed or absent on some drivers (libiio ignores ENOENT/EACCES too).
    await journal.snapshot(`${bufferDir}/length`, `${bufferDir}/watermark`);
    await journal.set(`${bufferDir}/length`, String(samples * blocks));
    try {
      await journal.set(`${bufferDir}/watermark`, String(samples));
    } catch (err) {
      const code = (err as IioError).code;
      if (code !== 'ENOENT' && code !== 'EACCES' && code !== 'EINVAL') throw err;
      debug(`${h.device.id}: watermark not set (${code})`);
    }

    // 4. The stream, and DMABUF blocks attached before the buffer is enabled.
    stream = new NativeStream(
      native,
      {
        fd: dataFd,
        output: options.isOutput,
        blockBytes: samples * scanBytes,
        unitBytes: scanBytes,
        blocks: options.blocks ?? defaultQueue(samples * scanBytes),
        timeoutMs: h.timeoutMs,
        cyclic: options.cyclic,
      },
      where,
    );
    let dmabuf: LocalTransport['dmabuf'] = { tried: false, ok: false };
    const mode = transferMode(options);
    const heap = heapPath();
    const fallback = options.isOutput ? 'write()' : 'read()';
    if (mode === 'dmabuf' && transport.fd !== 'buffer-fd') {
      throw new IioError(
        transport.getFdError ?? 'ENOTTY',
        `DMABUF transfer was asked for, but ${h.devNode} has no buffer fd (IIO_BUFFER_GET_FD_IOCTL: ${transport.getFdError}; Linux 5.11+, and DMABUF 6.11+)`,
        { ...where, op: 'open buffer' },
      );
    }
    if (mode !== 'fileio' && transport.fd === 'buffer-fd') {
      const r = stream.tryDmabuf(heap);
      dmabuf = r.ok
        ? { tried: true, ok: true }
        : { tried: true, ok: false, code: r.code, op: r.op };
      if (r.ok) debug(`${h.device.id}: DMABUF blocks from ${heap} attached`);
      else if (mode === 'dmabuf')
        throw new IioError(
          r.code || 'EIO',
          `DMABUF transfer was asked for, but ${dmabufRefusal(r.code, r.op, heap)}`,
          { ...where, op: 'open buffer' },
        );
      else if (DMABUF_UNSUPPORTED.has(r.code))
        debug(`${h.device.id}: DMABUF ${r.op} failed with ${r.code}: using ${fallback}`);
      else
        debug(
          `${h.device.id}: DMABUF ${r.op} failed unexpectedly with ${r.code}: using ${fallback}`,
        );
    }

    // 5. Enable, then stream.
    try {
      await writeFile(enablePath, '1');
    } catch (err) {
      const e = IioError.wrap(err, { ...where, file: enablePath, op: 'enable buffer' });
      if (e.code === 'EINVAL') {
        throw new IioError(
          'EINVAL',
          'the kernel refused to enable the buffer: a triggered device needs a trigger ' +
            '(createBuffer option `trigger`, or -t), or this channel combination is not allowed',
          { ...where, file: enablePath, op: 'enable buffer' },
          { cause: err },
        );
      }
      throw e;
    }
    stream.start();
    // A kfifo output buffer reports the scans still queued (0 now); a DMA buffer's reports
    // its free space, already > 0 before anything was written.
    let drainUnknown = false;
    if (options.isOutput && !dmabuf.ok) {
      const free = Number(await readTrim(`${bufferDir}/data_available`).catch(() => '0'));
      drainUnknown = free > 0;
    }
    const buf = new LocalBackendBuffer(
      native,
      mask,
      stream,
      { ...transport, dmabuf },
      scanBytes,
      fds,
      enablePath,
      `${bufferDir}/data_available`,
      journal,
      where,
      options.cyclic,
      h.timeoutMs,
      drainUnknown,
    );
    track(buf);
    return buf;
  } catch (err) {
    stream?.close();
    try {
      writeFileSync(`${bufferDir}/enable`, '0');
    } catch {
      // it was never enabled, or cannot be: the error below says what went wrong
    }
    stream?.detach();
    for (const fd of fds) {
      try {
        native.close(fd);
      } catch {
        // already gone
      }
    }
    await journal.restore();
    const e = IioError.wrap(err, { ...where, op: 'open buffer' });
    // Configuration refused with EBUSY: someone else's buffer was enabled in between.
    if (e.code === 'EBUSY' && e.file?.startsWith(h.sysfsDir)) {
      const busy = busyError(h, h.device.id);
      throw new IioError('EBUSY', `${busy.detail} (${e.file} refused a write)`, busy, { cause: e });
    }
    throw e;
  }
}

/** Kernel events of a local device, read from its event fd by a native stream. */
class LocalEventStream implements BackendEventStream {
  private pending: RawEvent[] = [];
  private closed = false;

  constructor(
    private readonly native: NativeAddon,
    private readonly stream: NativeStream,
    private readonly fd: number,
  ) {}

  async read(): Promise<RawEvent> {
    while (!this.pending.length) {
      const block = await this.stream.read();
      const d = block.data;
      for (let off = 0; off + EVENT_BYTES <= d.length; off += EVENT_BYTES)
        this.pending.push({ id: d.readBigUInt64LE(off), timestamp: d.readBigInt64LE(off + 8) });
      block.release();
    }
    return this.pending.shift()!;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stream.close();
    try {
      this.native.close(this.fd);
    } catch {
      // already gone
    }
  }
}

/** Opens the device's event fd (IIO_GET_EVENT_FD_IOCTL) and streams its records. */
export async function openLocalEvents(h: LocalDeviceHandle): Promise<BackendEventStream> {
  const where = { uri: h.uri, device: h.device.id, op: 'open events' };
  const native = loadNative();
  let devFd: number;
  try {
    devFd = native.open(h.devNode, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch (err) {
    if (errnoOfNative(err) === 16) throw busyError(h, h.device.id);
    throw nativeError(err, { ...where, file: h.devNode });
  }
  let evFd: number;
  try {
    evFd = native.getEventFd(devFd);
  } catch (err) {
    const e = nativeError(err, where);
    if (e.code === 'ENODEV')
      throw new IioError('ENODEV', 'device has no events (its driver registers none)', where);
    if (e.code === 'EBUSY')
      throw new IioError(
        'EBUSY',
        'the events of this device are already being read (one reader at a time)',
        where,
      );
    if (e.code === 'ENOTTY' || e.code === 'EINVAL')
      throw new IioError(
        e.code,
        `device has no events (${h.devNode} does not support IIO_GET_EVENT_FD_IOCTL)`,
        where,
      );
    throw e;
  } finally {
    native.close(devFd);
  }
  try {
    const stream = new NativeStream(
      native,
      {
        fd: evFd,
        output: false,
        blockBytes: EVENTS_PER_READ * EVENT_BYTES,
        unitBytes: EVENT_BYTES,
        blocks: 4,
        timeoutMs: 0,
        partial: true,
      },
      { uri: h.uri, device: h.device.id },
    );
    stream.start();
    return new LocalEventStream(native, stream, evFd);
  } catch (err) {
    native.close(evFd);
    throw err;
  }
}
