/**
 * `iiokit readdev`: libiio 0.24's iio_readdev. Captures raw scans from a device's buffer
 * and writes them to stdout exactly as the kernel lays them out.
 */
import { errnoOrEio, IioError, strerror } from '../errors';
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
  ],
  usage: [
    '[-t <trigger>] [-b <buffer-size>][-s <samples>] <iio_device> [<channel> ...]',
    'Use the specified trigger.',
    'Size of the capture buffer. Default is 256.',
    'Number of samples to capture, 0 = infinite. Default is 0.',
    'Scan for available contexts and if only one is available use it.',
    'Benchmark throughput.\n\t\t\tStatistics will be printed on the standard input.',
    'When the server goes away, wait for it and go on (the scans\n\t\t\tlost are counted on stderr) instead of stopping.',
  ],
};

const READDEV: StreamTool = {
  tool: READDEV_TOOL,
  isOutput: false,
  setTriggerFailed: 'set triffer failed',
  noChannels: 'No input channels found.',
};

/** The ways a server (or the link to it) goes away, as the tools say them. */
const CONNECTION_LOSS = new Set(['EPIPE', 'ECONNRESET', 'ENOTCONN', 'ECONNABORTED', 'ENODEV']);

/** Writes and waits until the stream took it (so the block may be released). */
function writeAll(stream: NodeJS.WritableStream, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(data, (e?: Error | null) => (e ? reject(e) : resolve()));
  });
}

export function readdevMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runStreamTool(argv, io, READDEV, (buffer, opts, err) =>
    capture(buffer, io.stdout, opts, err),
  );
}

/**
 * The capture loop, with iio_readdev's exit statuses: 0 when the samples asked for are
 * written, on a signal, when stdout closes, and — as libiio, which says "Unable to refill
 * buffer" and stops — when a refill fails. What libiio cannot see we say on stderr: scans
 * lost (an overrun, an outage) with their count, and, when the server went away, how many
 * scans were written before it (stop, the default) or that the capture resumed (-R).
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
  const unhook = onTerminate(() => {
    stopped = true;
    buffer.cancel();
  });
  // A reader that went away (EPIPE) fails the write, never the process.
  const onStdoutError = (): void => undefined;
  stdout.on('error', onStdoutError);
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
      try {
        if (meter) {
          meter(data.length);
          continue;
        }
        if (left && data.length > left * scanBytes) data = data.subarray(0, left * scanBytes);
        // An fd-backed stream (process.stdout) has handed the bytes to the kernel when its
        // callback runs, so the block can go back to the pool; any other Writable may still
        // hold the Buffer (buffered, piped on), so it gets a copy.
        await writeAll(stdout, fdBacked ? data : Buffer.from(data));
      } finally {
        // Released only once stdout has the bytes: the block was never copied.
        block.release();
      }
      written += data.length / scanBytes;
      if (left) {
        left -= data.length / scanBytes;
        if (left <= 0) break;
      }
      if (stopped) break;
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    // stdout closed (iio_readdev: SIGPIPE, then status 0)
    if (code === 'EPIPE' && !(e instanceof IioError)) return 0;
    if (!stopped) {
      err.line(`Unable to refill buffer: ${strerror(errnoOrEio(e))}`);
      if (code && CONNECTION_LOSS.has(code)) {
        err.line(
          `iiokit readdev: the connection to the server was lost after ${written} scans; stopped (-R resumes, counting the scans lost)`,
        );
      }
    }
  } finally {
    unhook();
    stdout.off('error', onStdoutError);
  }
  if (lost > 0) err.line(`iiokit readdev: ${lost} scans lost in all, ${written} written`);
  // libiio's iio_readdev ends with status 0 after a failed refill too.
  return 0;
}
