/**
 * The native module (native/, node-addon-api), loaded on first use through
 * node-gyp-build: a local build (build/Release) or a prebuilt binary (prebuilds/).
 * Only `local:` needs it; when it cannot load, `local:` says why and how to fix it
 * while every other backend keeps working.
 */
import { join } from 'node:path';
import { IioError, codeOf, strerror, type IioErrorContext } from '../errors';
import { attemptLoad, type NativeStatus } from './diagnose';

export type { NativeStatus } from './diagnose';

/** The addon's interface version this TypeScript expects (native/addon.cc abiVersion). */
export const NATIVE_ABI = 4;

/** Options of a native stream (see native/stream.h StreamConfig). */
export interface NativeStreamOptions {
  /** The data fd: an IIO buffer fd, the /dev node itself, or an event fd. */
  readonly fd: number;
  readonly output: boolean;
  /** Bytes per block: a delivery when full (input), the DMABUF block size (output). */
  readonly blockBytes: number;
  /** Reads and writes move whole units (scan bytes, or 16 for events). */
  readonly unitBytes: number;
  /**
   * Deliveries JS may have queued (the pool holds two more blocks). Default: about
   * 2 MiB worth, 4..64 ({@link STREAM_DEFAULTS}).
   */
  readonly blocks?: number;
  /** Per block (input) or per push (output); 0 waits forever. */
  readonly timeoutMs: number;
  /** Input: blocks finishing less than this apart (µs) are handed over together. */
  readonly batchHoldUs?: number;
  /** Input: the most blocks handed over in one wake-up of the JS thread. */
  readonly batchMaxBlocks?: number;
  /** Input: while data flows, one readv() fills consecutive blocks up to this many bytes. */
  readonly readBurstBytes?: number;
  /** Input: hand over after every read() instead of only full blocks (events). */
  readonly partial?: boolean;
  /** Output: repeat the first push until the stream stops. */
  readonly cyclic?: boolean;
}

/**
 * What the streaming thread is told when a stream's options do not say: hand blocks that
 * finish less than 2 ms apart over up to 32 per wake-up of the JS thread, with a JS queue
 * of about 2 MiB of blocks (at least 4, at most 64), and while data flows read up to
 * 64 KiB of consecutive blocks per readv() (blocks of 32 KiB or less). Why these:
 * docs/native.md, "Hand-over batching" and "Where the time goes".
 */
export const STREAM_DEFAULTS = {
  batchHoldUs: 2000,
  batchMaxBlocks: 32,
  readBurstBytes: 64 * 1024,
  queueBytes: 2 * 1024 * 1024,
  minQueueBlocks: 4,
  maxQueueBlocks: 64,
} as const;

/** The default JS queue, in blocks, for blocks of `blockBytes`. */
export function defaultQueueBlocks(blockBytes: number): number {
  const d = STREAM_DEFAULTS;
  return Math.min(
    d.maxQueueBlocks,
    Math.max(d.minQueueBlocks, Math.ceil(d.queueBytes / blockBytes)),
  );
}

/** Stream options with every default filled in: what the addon is given. */
export type ResolvedStreamOptions = NativeStreamOptions &
  Required<
    Pick<NativeStreamOptions, 'blocks' | 'batchHoldUs' | 'batchMaxBlocks' | 'readBurstBytes'>
  >;

/** Fills in the defaults (see {@link STREAM_DEFAULTS}). */
export function resolveStreamOptions(o: NativeStreamOptions): ResolvedStreamOptions {
  return {
    ...o,
    blocks: o.blocks ?? defaultQueueBlocks(o.blockBytes),
    batchHoldUs: o.batchHoldUs ?? STREAM_DEFAULTS.batchHoldUs,
    batchMaxBlocks: o.batchMaxBlocks ?? STREAM_DEFAULTS.batchMaxBlocks,
    readBurstBytes: o.readBurstBytes ?? STREAM_DEFAULTS.readBurstBytes,
  };
}

export interface NativeStreamStats {
  readonly delivered: number;
  /** Deliveries in fresh memory because every pooled block was held by JS. */
  readonly copies: number;
  readonly bytes: number;
  readonly timeouts: number;
  readonly written: number;
  readonly cyclicRepeats: number;
  /** Wake-ups of the JS thread: several blocks may come in one. */
  readonly handovers: number;
  /** CPU time of the streaming thread (µs), once it has ended. */
  readonly threadCpuUs: number;
  /** read()/readv() calls that brought data: fewer than blocks when reads burst. */
  readonly reads: number;
  readonly poolBlocks: number;
  readonly poolFree: number;
  /** Blocks JS holds now. */
  readonly lent: number;
  readonly lentTotal: number;
  /** Blocks given back by release(). */
  readonly released: number;
  /** Blocks given back by a Buffer finalizer (the safety net). */
  readonly finalized: number;
  readonly mode: 'fileio' | 'dmabuf';
  /** DMABUF: blocks with the kernel now (queued or being transferred). */
  readonly inKernel: number;
  /** DMABUF: ENQUEUEs and completions so far. */
  readonly enqueued: number;
  readonly completed: number;
  /** DMABUF: completions whose fence carried an error (aborted transfers), not delivered. */
  readonly transferErrors: number;
  /** DMABUF: scans in those blocks, reported to JS as `lost`. */
  readonly lostScans: number;
  /** DMABUF input: times the kernel was left with no block queued (JS held or had not taken them). */
  readonly starved: number;
  /** DMABUF: errno of the last fence error (4 = EINTR: the buffer was disabled under it), 0 if none. */
  readonly lastTransferError: number;
}

/**
 * What the streaming thread hands over: 0 block, 1 error (of a push when it has its id;
 * `done`: bytes of that push the kernel took before the error), 2 push written, 3 thread
 * ended.
 */
export type NativeDelivery =
  | [kind: 0, data: Buffer, block: number, gen: number, lost: number]
  | [kind: 1, errno: number, op: string, pushId: number | undefined, done: number]
  | [kind: 2, pushId: number]
  | [kind: 3, errno: number, op: string];

export interface NativeStreamHandle {
  tryDmabuf(heapPath: string): { ok: boolean; errno: number; op: string };
  /**
   * The callback returns true when it took a block or error at once (credit goes back);
   * when it throws, the credit goes back too and the error reaches 'uncaughtException'.
   */
  start(callback: (...delivery: NativeDelivery) => boolean | void): void;
  credit(n: number): void;
  release(block: number, gen: number): boolean;
  write(data: Buffer, pushId: number): void;
  cancel(): void;
  /** Joins the thread; returns the ids of pushes never written. DMABUFs stay attached. */
  close(): number[];
  /** After close() and the disable: DETACHes the DMABUFs, closes their fds; 0 or an errno. */
  detach(): number;
  /** Output over DMABUF: delivers kind 2 (or 1) with this id once what was queued has played. */
  drain(pushId: number): void;
  stats(): NativeStreamStats;
}

export interface NativeAddon {
  readonly abiVersion: number;
  open(path: string, flags: number): number;
  close(fd: number): void;
  getBufferFd(devFd: number, index: number): number;
  getEventFd(devFd: number): number;
  ioctls(): Record<string, number>;
  heapCheck(
    heapPath: string,
    bytes: number,
  ): { ok: boolean; steps: { op: string; errno: number }[] };
  selfTest(): { ok: boolean; checks: { name: string; ok: boolean; detail: string }[] };
  readonly Stream: new (options: NativeStreamOptions) => NativeStreamHandle;
}

let state: { status: NativeStatus; addon?: unknown } | undefined;

/** The package root (dist/src/native → three levels up), where build/ and prebuilds/ are. */
function packageRoot(): string {
  return process.env.IIOKIT_NATIVE_DIR ?? join(__dirname, '..', '..', '..');
}

/**
 * Loads the addon once. Throws an IioError that names the reason and the fix when it
 * cannot be loaded (see {@link NativeStatus} for the codes).
 */
export function loadNative(): NativeAddon {
  const { status, addon } = (state ??= attemptLoad(packageRoot(), NATIVE_ABI));
  if (status.loaded) return addon as NativeAddon;
  throw new IioError(
    status.code,
    `local: needs the native module iiokit.node: ${status.reason}. ${status.fix}`,
    { uri: 'local:' },
  );
}

/** Whether the native module loads, from which file, or why not and how to fix it. */
export function nativeModuleStatus(): NativeStatus {
  return (state ??= attemptLoad(packageRoot(), NATIVE_ABI)).status;
}

/** True when the addon loads (without throwing). */
export function nativeAvailable(): boolean {
  return nativeModuleStatus().loaded;
}

/** The errno a native call failed with (0 if it was not an errno error). */
export function errnoOfNative(err: unknown): number {
  const n = (err as { errno?: unknown } | undefined)?.errno;
  return typeof n === 'number' ? n : 0;
}

/** Turns an error thrown by the addon into an IioError with its errno code. */
export function nativeError(err: unknown, ctx: IioErrorContext, detail?: string): IioError {
  if (err instanceof IioError) return IioError.wrap(err, ctx);
  const errno = errnoOfNative(err);
  if (!errno) return IioError.wrap(err, ctx);
  return new IioError(codeOf(errno), detail ?? strerror(errno), ctx, { cause: err });
}
