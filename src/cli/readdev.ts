/**
 * `iiokit readdev`: libiio 0.24's iio_readdev. Captures raw scans from a device's buffer
 * and writes them to stdout exactly as the kernel lays them out.
 */
import { errnoOrEio, strerror } from '../errors';
import type { IioBuffer } from '../model/buffer';
import type { ToolSpec } from './common';
import type { CliIo } from './io';
import {
  onTerminate,
  runStreamTool,
  throughputMeter,
  type StreamOptions,
  type StreamTool,
} from './stream-common';

export const READDEV_TOOL: ToolSpec = {
  name: 'iio_readdev',
  command: 'readdev',
  optstring: '+t:b:s:BR',
  longs: [
    { name: 'trigger', arg: 'required', val: 't' },
    { name: 'buffer-size', arg: 'required', val: 'b' },
    { name: 'samples', arg: 'required', val: 's' },
    { name: 'auto', arg: 'none', val: 'a' },
    { name: 'benchmark', arg: 'none', val: 'B' },
    { name: 'resume', arg: 'none', val: 'R' },
    { name: 'transfer', arg: 'required', val: 'transfer' },
  ],
  usage: [
    '[-t <trigger>] [-b <buffer-size>][-s <samples>] <iio_device> [<channel> ...]',
    'Use the specified trigger.',
    'Size of the capture buffer. Default is 256.',
    'Number of samples to capture, 0 = infinite. Default is 0.',
    'Scan for available contexts and if only one is available use it.',
    'Benchmark throughput.\n\t\t\tStatistics will be printed on the standard input.',
    'When the server goes away, wait for it and go on (the scans\n\t\t\tlost are counted on stderr) instead of stopping.',
    "How local: buffers move data: 'dmabuf' (zero copy, Linux 6.11+\n\t\t\tDMA buffers), 'fileio' (read()/write()) or 'auto' (default).",
  ],
};

/** The ways a server (or the link to it) goes away, as the tools say them. */
const CONNECTION_LOSS = new Set(['EPIPE', 'ECONNRESET', 'ENOTCONN', 'ECONNABORTED', 'ENODEV']);

const READDEV: StreamTool = {
  tool: READDEV_TOOL,
  isOutput: false,
  setTriggerFailed: 'set triffer failed',
  noChannels: 'No input channels found.',
};

/**
 * stdout as the capture's sink. Blocks are written one after another without waiting for
 * each write to finish: the next block is read while the last one is still being written
 * (a pipe to a slower reader), and each block goes back to the pool in its own write's
 * callback, once the stream has its bytes. write()'s answer is the backpressure: when the
 * stream's queue is full the capture waits for 'drain'. An error of the stream (EPIPE: the
 * reader went away) is caught here and ends the capture, instead of an unhandled 'error'.
 */
class StdoutSink {
  private pending = 0;
  private drains = 0;
  /** Closed, or the capture was stopped (SIGINT): nothing is waited for any more. */
  private over = false;
  private failure: (Error & { code?: string }) | undefined;
  private wake: (() => void) | undefined;
  private readonly onError = (e: Error): void => {
    this.failure ??= e;
    this.notify();
  };
  private readonly onDrain = (): void => {
    this.drains++;
    this.notify();
  };
  private readonly onClose = (): void => this.abort();

  constructor(private readonly out: NodeJS.WritableStream) {
    out.on('error', this.onError);
    out.on('drain', this.onDrain);
    out.on('close', this.onClose);
  }

  get error(): (Error & { code?: string }) | undefined {
    return this.failure;
  }

  /** Stops waiting: for room, for callbacks (a stopped capture does not wait for a stalled reader). */
  abort(): void {
    this.over = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private until(done: () => boolean): Promise<void> {
    const ready = (): boolean => done() || this.failure !== undefined || this.over;
    if (ready()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if (ready()) resolve();
        else this.wake = check;
      };
      this.wake = check;
    });
  }

  /**
   * Queues `data`; `written` runs once the stream is done with it. Resolves at once, or
   * once the stream has room again.
   */
  write(data: Uint8Array, written: () => void): Promise<void> {
    this.pending++;
    const ok = this.out.write(data, (e?: Error | null) => {
      this.pending--;
      if (e) this.failure ??= e;
      written();
      this.notify();
    });
    if (ok) return Promise.resolve();
    const seen = this.drains;
    return this.until(() => this.drains !== seen);
  }

  /** Waits for every write's callback (unless stopped or failed), then lets go of the stream. */
  async close(): Promise<void> {
    await this.until(() => this.pending === 0);
    this.out.off('error', this.onError);
    this.out.off('drain', this.onDrain);
    this.out.off('close', this.onClose);
  }
}

export function readdevMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runStreamTool(argv, io, READDEV, (buffer, opts, err) =>
    capture(buffer, io.stdout, opts, err),
  );
}

/**
 * The capture loop, with iio_readdev's exit statuses: 0 when the samples asked for are
 * written, on a signal, when stdout closes or fails, and — as libiio, which says "Unable
 * to refill buffer" and stops — when a refill fails. What libiio cannot see we say on
 * stderr: scans lost (an overrun, an outage) with their count, and, when the server went
 * away, how many scans were written before it (stop, the default) or that the capture
 * resumed (-R).
 */
async function capture(
  buffer: IioBuffer,
  stdout: NodeJS.WritableStream,
  opts: StreamOptions,
  err: { line(s: string): void; flush(): void },
): Promise<number> {
  const scanBytes = buffer.scanBytes;
  const fdBacked = typeof (stdout as { fd?: unknown }).fd === 'number';
  let left = opts.samples;
  let stopped = false;
  let written = 0;
  let lost = 0;
  const sink = new StdoutSink(stdout);
  const unhook = onTerminate(() => {
    stopped = true;
    buffer.cancel();
    sink.abort();
  });
  const meter = opts.benchmark ? throughputMeter() : undefined;
  try {
    for await (const block of buffer.stream()) {
      let data = block.data;
      if (block.lost > 0) {
        lost += block.lost;
        err.line(
          `iiokit readdev: ${block.lost} scans lost after scan ${written}${opts.resume ? ' (resumed after the outage)' : ''}`,
        );
        err.flush();
      }
      if (meter) {
        meter(data.length);
        block.release();
        continue;
      }
      if (left && data.length > left * scanBytes) data = data.subarray(0, left * scanBytes);
      if (fdBacked) {
        // An fd-backed stream (process.stdout) has handed the bytes to the kernel when its
        // callback runs: the block goes back to the pool then, never copied.
        await sink.write(data, () => block.release());
      } else {
        // Any other Writable may keep the Buffer (buffered, piped on): it gets a copy.
        const copy = Buffer.from(data);
        block.release();
        await sink.write(copy, () => undefined);
      }
      if (sink.error) break;
      written += data.length / scanBytes;
      if (left) {
        left -= data.length / scanBytes;
        if (left <= 0) break;
      }
      if (stopped) break;
    }
  } catch (e) {
    if (!stopped) {
      err.line(`Unable to refill buffer: ${strerror(errnoOrEio(e))}`);
      const code = (e as { code?: string }).code;
      if (code && CONNECTION_LOSS.has(code)) {
        err.line(
          `iiokit readdev: the connection to the server was lost after ${written} scans; stopped (-R resumes, counting the scans lost)`,
        );
      }
    }
  } finally {
    unhook();
    await sink.close();
  }
  // The reader of our stdout went away (`| head -c N`): done, as iio_readdev is. Another
  // write error (a full disk) is said, but ends with 0 too: iio_readdev stops there
  // without a word and with status 0.
  const e = sink.error;
  if (e && e.code !== 'EPIPE') err.line(`Unable to write to stdout: ${strerror(errnoOrEio(e))}`);
  if (lost > 0) err.line(`iiokit readdev: ${lost} scans lost in all, ${written} written`);
  // libiio's iio_readdev ends with status 0 after a failed refill too.
  return 0;
}
