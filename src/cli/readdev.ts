/**
 * `iiokit readdev`: libiio 0.24's iio_readdev. Captures raw scans from a device's buffer
 * and writes them to stdout exactly as the kernel lays them out.
 */
import { errnoOrEio, strerror } from '../errors';
import type { IioBuffer } from '../model/buffer';
import type { ToolSpec } from './common';
import type { CliIo } from './io';
import { onTerminate, runStreamTool, throughputMeter, type StreamTool } from './stream-common';

export const READDEV_TOOL: ToolSpec = {
  name: 'iio_readdev',
  command: 'readdev',
  optstring: '+t:b:s:B',
  longs: [
    { name: 'trigger', arg: 'required', val: 't' },
    { name: 'buffer-size', arg: 'required', val: 'b' },
    { name: 'samples', arg: 'required', val: 's' },
    { name: 'auto', arg: 'none', val: 'a' },
    { name: 'benchmark', arg: 'none', val: 'B' },
    { name: 'transfer', arg: 'required', val: 'transfer' },
  ],
  usage: [
    '[-t <trigger>] [-b <buffer-size>][-s <samples>] <iio_device> [<channel> ...]',
    'Use the specified trigger.',
    'Size of the capture buffer. Default is 256.',
    'Number of samples to capture, 0 = infinite. Default is 0.',
    'Scan for available contexts and if only one is available use it.',
    'Benchmark throughput.\n\t\t\tStatistics will be printed on the standard input.',
    "How local: buffers move data: 'dmabuf' (zero copy, Linux 6.11+\n\t\t\tDMA buffers), 'fileio' (read()/write()) or 'auto' (default).",
  ],
};

const READDEV: StreamTool = {
  tool: READDEV_TOOL,
  isOutput: false,
  setTriggerFailed: 'set triffer failed',
  noChannels: 'No input channels found.',
};

/** Writes and waits until the stream took it (so the block may be released). */
function writeAll(stream: NodeJS.WritableStream, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(data, (e?: Error | null) => (e ? reject(e) : resolve()));
  });
}

export function readdevMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runStreamTool(argv, io, READDEV, (buffer, opts, err) =>
    capture(buffer, io.stdout, opts.samples, opts.benchmark, err),
  );
}

async function capture(
  buffer: IioBuffer,
  stdout: NodeJS.WritableStream,
  samples: number,
  benchmark: boolean,
  err: { line(s: string): void; flush(): void },
): Promise<number> {
  const scanBytes = buffer.scanBytes;
  const fdBacked = typeof (stdout as { fd?: unknown }).fd === 'number';
  let left = samples;
  let stopped = false;
  const unhook = onTerminate(() => {
    stopped = true;
    buffer.cancel();
  });
  let status = 0;
  const meter = benchmark ? throughputMeter() : undefined;
  try {
    for await (const block of buffer.stream()) {
      let data = block.data;
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
      if (left) {
        left -= data.length / scanBytes;
        if (left <= 0) break;
      }
      if (stopped) break;
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'EPIPE') return 0;
    if (!stopped) {
      err.line(`Unable to refill buffer: ${strerror(errnoOrEio(e))}`);
      status = 1;
    }
  } finally {
    unhook();
  }
  return status;
}
