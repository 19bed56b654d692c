/**
 * Opening a buffer of a `local:` device: the seam between the sysfs backend (which knows
 * the files) and the native module (which streams). The IIO policy lives here, one named
 * step each: the data fd, the scan elements, the kernel buffer's size, the stream, the
 * transfer mode (read()/write() or DMABUF blocks), enabling. Whatever a step changed in
 * sysfs is journaled (sysfs-journal.ts) and put back on close or failure; an open buffer
 * (backend-buffer.ts) is guarded against exit and signals (exit-guard.ts).
 */
import { constants as fsc, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { IioError } from '../../errors';
import { computeScanLayout } from '../../format/layout';
import type { BufferOpenOptions, TransferMode } from '../../model/backend';
import { ChannelMask } from '../../model/channel-mask';
import { channelKindOf } from '../../names/channel-type';
import { loadNative, nativeError, type NativeAddon } from '../../native';
import { NativeStream } from '../../native/stream';
import { tracer } from '../../util/trace';
import { LocalBackendBuffer, type LocalTransport } from './backend-buffer';
import { guard } from './exit-guard';
import { busyError, openDevNode, whereOf, type LocalDeviceHandle } from './device-node';
import { SysfsJournal, readTrim } from './sysfs-journal';

export { LocalBackendBuffer, type LocalTransport } from './backend-buffer';
export type { LocalDeviceHandle } from './device-node';

const trace = tracer('local');

/** Kernel buffer length in blocks when the caller does not say (libiio's default). */
const DEFAULT_KERNEL_BLOCKS = 4;
/**
 * Attach errors that mean "this kernel or buffer has no DMABUF": 6.1 buffer fds answer
 * ENOTTY, 6.12 EINVAL for unknown ioctls and EPERM for kfifo buffers, /dev fds ENODEV,
 * and a missing heap ENOENT. They fall back to read()/write() silently.
 */
const DMABUF_UNSUPPORTED = new Set(['ENOTTY', 'EINVAL', 'ENODEV', 'EPERM', 'ENOENT']);

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

/** What one open asks for, checked and resolved to paths (step 0). */
interface BufferPlan {
  readonly where: { uri: string; device: string };
  readonly index: number;
  /** The buffer's control files (`enable`, `length`, `watermark`, `data_available`). */
  readonly bufferDir: string;
  /** Its scan elements (`*_en`). */
  readonly scanDir: string;
  readonly enablePath: string;
  readonly samples: number;
  /** Kernel buffer length in blocks of `samples`. */
  readonly kernelBlocks: number;
}

/** The fd data moves through, and how it was obtained. */
interface DataFd {
  readonly fd: number;
  readonly kind: Pick<LocalTransport, 'fd' | 'getFdError'>;
}

/** The channels the kernel enabled and the size of one scan of them. */
interface EnabledScan {
  readonly mask: ChannelMask;
  readonly scanBytes: number;
}

/** Step 0: checks the request and resolves the buffer's directories. */
function planBuffer(h: LocalDeviceHandle, options: BufferOpenOptions): BufferPlan {
  const where = whereOf(h);
  const index = options.bufferIndex ?? 0;
  const bufferDir = index === 0 ? h.bufferDir : `${h.sysfsDir}/buffer${index}`;
  const scanDir = index === 0 ? h.scanElementsDir : bufferDir;
  const samples = options.samples;
  const kernelBlocks = options.blocks ?? DEFAULT_KERNEL_BLOCKS;
  if (!Number.isInteger(samples) || samples <= 0)
    throw new IioError(
      'EINVAL',
      `a buffer needs a positive number of samples, not ${samples}`,
      where,
    );
  if (!Number.isInteger(kernelBlocks) || kernelBlocks < 1 || kernelBlocks > 1024)
    throw new IioError('EINVAL', `blocks must be 1..1024, not ${kernelBlocks}`, where);
  return {
    where,
    index,
    bufferDir,
    scanDir,
    enablePath: `${bufferDir}/enable`,
    samples,
    kernelBlocks,
  };
}

/**
 * Step 1: the data fd. The /dev node first: it is exclusive, so a device another process
 * streams from is reported busy before we touch any of its files. Then the buffer's own
 * fd (IIO_BUFFER_GET_FD_IOCTL), or on kernels before 5.11 the /dev fd itself.
 */
function openDataFd(native: NativeAddon, h: LocalDeviceHandle, plan: BufferPlan): DataFd {
  const devFd = openDevNode(native, h, fsc.O_RDWR | fsc.O_NONBLOCK, 'open buffer');
  try {
    const fd = native.getBufferFd(devFd, plan.index);
    // The buffer fd holds its own reference: releasing /dev lets another process (or
    // this one, for events) open the device.
    native.close(devFd);
    return { fd, kind: { fd: 'buffer-fd' } };
  } catch (err) {
    const e = nativeError(err, plan.where);
    if (e.code === 'EBUSY') {
      native.close(devFd);
      throw busyError(h, `buffer ${plan.index} of ${h.device.id}`);
    }
    if (plan.index !== 0 || !['ENOTTY', 'EINVAL', 'ENODEV'].includes(e.code)) {
      native.close(devFd);
      throw IioError.wrap(e, { op: 'open buffer' });
    }
    // Kernels before 5.11 (and FIFO-backed test devices): the /dev fd is the buffer.
    trace(`${h.device.id}: no IIO_BUFFER_GET_FD_IOCTL (${e.code}): reading ${h.devNode}`);
    return { fd: devFd, kind: { fd: 'dev-node', getFdError: e.code } };
  }
}

/**
 * Step 2: configure while disabled. A buffer left enabled (a crashed owner) is stopped,
 * and stays stopped after close: nothing is ever left enabled. Then the scan elements
 * the caller asked for are enabled, the others disabled, and read back: some devices
 * couple channels, so the kernel may enable more than asked.
 */
async function enableScanElements(
  h: LocalDeviceHandle,
  plan: BufferPlan,
  journal: SysfsJournal,
  options: BufferOpenOptions,
): Promise<EnabledScan> {
  if ((await journal.read(plan.enablePath)) !== '0') await journal.set(plan.enablePath, '0', false);
  const elems = h.device.channels
    .map((c, i) => ({ c, i, stem: h.scanElementStems[i] ?? '' }))
    .filter((e) => e.stem && e.c.isScanElement && e.c.isOutput === options.isOutput);
  for (const e of elems)
    await journal.set(`${plan.scanDir}/${e.stem}_en`, options.mask.has(e.i) ? '1' : '0');
  const mask = new ChannelMask(h.device.channels.length);
  for (const e of elems)
    if ((await journal.read(`${plan.scanDir}/${e.stem}_en`)) === '1') mask.set(e.i);
  if (mask.isEmpty()) {
    throw new IioError('EINVAL', 'no scan element of the buffer could be enabled', {
      ...plan.where,
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
  return { mask, scanBytes: layout.scanBytes };
}

/**
 * Step 3: the kernel buffer: room for `kernelBlocks` blocks, waking up once per block.
 * The watermark may be fixed or absent on some drivers (libiio ignores ENOENT/EACCES too).
 */
async function sizeKernelBuffer(
  h: LocalDeviceHandle,
  plan: BufferPlan,
  journal: SysfsJournal,
): Promise<void> {
  const length = `${plan.bufferDir}/length`;
  const watermark = `${plan.bufferDir}/watermark`;
  await journal.snapshot(length, watermark);
  await journal.set(length, String(plan.samples * plan.kernelBlocks));
  try {
    await journal.set(watermark, String(plan.samples));
  } catch (err) {
    const code = (err as IioError).code;
    if (code !== 'ENOENT' && code !== 'EACCES' && code !== 'EINVAL') throw err;
    trace(`${h.device.id}: watermark not set (${code})`);
  }
}

/** Step 4: the native stream over the data fd, blocks of `samples` scans (not started). */
function createStream(
  native: NativeAddon,
  h: LocalDeviceHandle,
  plan: BufferPlan,
  data: DataFd,
  scan: EnabledScan,
  options: BufferOpenOptions,
): NativeStream {
  const blockBytes = plan.samples * scan.scanBytes;
  return new NativeStream(
    native,
    {
      fd: data.fd,
      output: options.isOutput,
      blockBytes,
      unitBytes: scan.scanBytes,
      // Unset: the native layer's default queue (about 2 MiB of blocks).
      blocks: options.blocks,
      timeoutMs: h.timeoutMs,
      cyclic: options.cyclic,
    },
    plan.where,
  );
}

/**
 * Step 5: the transfer mode, negotiated before the buffer is enabled (option `transfer`):
 * DMABUF blocks from a heap, all attached to the buffer fd (docs/native.md "DMABUF"),
 * where the kernel and buffer take them, else read()/write() on the data fd. In `auto`,
 * failures that mean "no DMABUF here" fall back quietly (traced); a forced `dmabuf` fails
 * with the reason.
 */
function negotiateTransferMode(
  h: LocalDeviceHandle,
  plan: BufferPlan,
  data: DataFd,
  stream: NativeStream,
  options: BufferOpenOptions,
): LocalTransport {
  const mode = transferMode(options);
  const none = { ...data.kind, dmabuf: { tried: false, ok: false } };
  if (mode === 'fileio') return none;
  if (data.kind.fd !== 'buffer-fd') {
    if (mode === 'auto') return none;
    throw new IioError(
      data.kind.getFdError ?? 'ENOTTY',
      `DMABUF transfer was asked for, but ${h.devNode} has no buffer fd ` +
        `(IIO_BUFFER_GET_FD_IOCTL: ${data.kind.getFdError}; Linux 5.11+, and DMABUF 6.11+)`,
      { ...plan.where, op: 'open buffer' },
    );
  }
  const heap = heapPath();
  const r = stream.tryDmabuf(heap);
  if (r.ok) {
    trace(`${h.device.id}: DMABUF blocks from ${heap} attached`);
    return { ...data.kind, dmabuf: { tried: true, ok: true } };
  }
  if (mode === 'dmabuf')
    throw new IioError(
      r.code || 'EIO',
      `DMABUF transfer was asked for, but ${dmabufRefusal(r.code, r.op, heap)}`,
      { ...plan.where, op: 'open buffer' },
    );
  const fallback = options.isOutput ? 'write()' : 'read()';
  trace(
    `${h.device.id}: DMABUF ${r.op} failed ${DMABUF_UNSUPPORTED.has(r.code) ? '' : 'unexpectedly '}with ${r.code}: using ${fallback}`,
  );
  return { ...data.kind, dmabuf: { tried: true, ok: false, code: r.code, op: r.op } };
}

/**
 * Output through write() only: a kfifo buffer's data_available counts the scans still
 * queued (0 before anything is written), a DMA buffer's its free space (already > 0).
 * drain() cannot tell when the latter has played what was written.
 */
async function drainUnknown(
  plan: BufferPlan,
  transport: LocalTransport,
  options: BufferOpenOptions,
): Promise<boolean> {
  if (!options.isOutput || transport.dmabuf.ok) return false;
  const free = Number(await readTrim(`${plan.bufferDir}/data_available`).catch(() => '0'));
  return free > 0;
}

/** Step 6: enables the buffer; EINVAL here almost always means "no trigger". */
async function enableBuffer(plan: BufferPlan): Promise<void> {
  const ctx = { ...plan.where, file: plan.enablePath, op: 'enable buffer' };
  try {
    await writeFile(plan.enablePath, '1');
  } catch (err) {
    const e = IioError.wrap(err, ctx);
    if (e.code !== 'EINVAL') throw e;
    throw new IioError(
      'EINVAL',
      'the kernel refused to enable the buffer: a triggered device needs a trigger ' +
        '(createBuffer option `trigger`, or -t), or this channel combination is not allowed',
      ctx,
      { cause: err },
    );
  }
}

/**
 * A failed open: stops the stream, disables the buffer, closes the fd and restores
 * sysfs; returns the error to throw (EBUSY said as "another buffer took the device").
 */
async function undoOpen(
  err: unknown,
  native: NativeAddon,
  h: LocalDeviceHandle,
  plan: BufferPlan,
  data: DataFd,
  journal: SysfsJournal,
  stream: NativeStream | undefined,
): Promise<IioError> {
  stream?.close();
  try {
    writeFileSync(plan.enablePath, '0');
  } catch {
    // it was never enabled, or cannot be: the error below says what went wrong
  }
  // DMABUFs are detached once the buffer is disabled (docs/native.md "DMABUF").
  stream?.detach();
  try {
    native.close(data.fd);
  } catch {
    // already gone
  }
  await journal.restore();
  const e = IioError.wrap(err, { ...plan.where, op: 'open buffer' });
  // Configuration refused with EBUSY: someone else's buffer was enabled in between.
  if (e.code === 'EBUSY' && e.file?.startsWith(h.sysfsDir)) {
    const busy = busyError(h, h.device.id);
    return new IioError('EBUSY', `${busy.detail} (${e.file} refused a write)`, busy, { cause: e });
  }
  return e;
}

/**
 * Opens the device's buffer: the steps above in order, then streaming starts and the
 * buffer is guarded until it closes. A failure at any step undoes the ones before it.
 */
export async function openLocalBuffer(
  h: LocalDeviceHandle,
  options: BufferOpenOptions,
): Promise<LocalBackendBuffer> {
  const plan = planBuffer(h, options);
  const native = loadNative();
  const data = openDataFd(native, h, plan);
  const journal = new SysfsJournal(plan.where);
  let stream: NativeStream | undefined;
  try {
    const scan = await enableScanElements(h, plan, journal, options);
    await sizeKernelBuffer(h, plan, journal);
    stream = createStream(native, h, plan, data, scan, options);
    const transport = negotiateTransferMode(h, plan, data, stream, options);
    await enableBuffer(plan);
    stream.start();
    const unknownDrain = await drainUnknown(plan, transport, options);
    const buf = new LocalBackendBuffer({
      native,
      mask: scan.mask,
      stream,
      transport,
      scanBytes: scan.scanBytes,
      fds: [data.fd],
      enablePath: plan.enablePath,
      dataAvailablePath: `${plan.bufferDir}/data_available`,
      journal,
      where: plan.where,
      cyclic: options.cyclic,
      timeoutMs: h.timeoutMs,
      drainUnknown: unknownDrain,
    });
    guard(buf);
    return buf;
  } catch (err) {
    throw await undoOpen(err, native, h, plan, data, journal, stream);
  }
}
