/**
 * `iiokit writedev`: libiio 0.24's iio_writedev. Reads raw scans from stdin and pushes
 * them to a device's output buffer (`-c`: the first buffer repeats until interrupted).
 *
 * Two deliberate differences from iio_writedev, both so that nothing is lost: a last,
 * shorter buffer of whole scans is pushed too (libiio drops it), and before closing we
 * wait for the kernel to play what is queued (libiio disables the buffer at once).
 */
import { errnoOrEio, strerror } from '../errors';
import type { IioBuffer } from '../model/buffer';
import type { ToolSpec } from './common';
import type { CliIo } from './io';
import { onTerminate, runStreamTool, throughputMeter, type StreamTool } from './stream-common';

export const WRITEDEV_TOOL: ToolSpec = {
  name: 'iio_writedev',
  command: 'writedev',
  optstring: '+t:b:s:cB',
  longs: [
    { name: 'trigger', arg: 'required', val: 't' },
    { name: 'buffer-size', arg: 'required', val: 'b' },
    { name: 'samples', arg: 'required', val: 's' },
    { name: 'auto', arg: 'none', val: 'a' },
    { name: 'cyclic', arg: 'none', val: 'c' },
    { name: 'benchmark', arg: 'none', val: 'B' },
    { name: 'transfer', arg: 'required', val: 'transfer' },
  ],
  usage: [
    '[-t <trigger>] [-b <buffer-size>] [-s <samples>] <iio_device> [<channel> ...]',
    'Use the specified trigger.',
    'Size of the transmit buffer. Default is 256.',
    'Number of samples to write, 0 = infinite. Default is 0.',
    'Scan for available contexts and if only one is available use it.',
    'Use cyclic buffer mode.',
    'Benchmark throughput.\n\t\t\tStatistics will be printed on the standard input.',
    "How local: buffers move data: 'dmabuf' (zero copy, Linux 6.11+\n\t\t\tDMA buffers), 'fileio' (read()/write()) or 'auto' (default).",
  ],
};

const WRITEDEV: StreamTool = {
  tool: WRITEDEV_TOOL,
  isOutput: true,
  setTriggerFailed: 'set trigger failed',
  noChannels: 'No output channels found',
};

/** Reads exactly n bytes from a stream (fewer only at its end). */
class ExactReader {
  private readonly it: AsyncIterator<Buffer | string>;
  private pending: Buffer[] = [];
  private have = 0;
  private ended = false;

  constructor(stream: NodeJS.ReadableStream) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  }

  async read(n: number): Promise<Buffer> {
    while (this.have < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        break;
      }
      const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      this.pending.push(chunk);
      this.have += chunk.length;
    }
    const all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    const outLen = Math.min(n, all.length);
    const rest = all.subarray(outLen);
    this.pending = rest.length ? [rest] : [];
    this.have = rest.length;
    // A copy when it shares memory with the rest: push() may still be writing it.
    return rest.length ? Buffer.from(all.subarray(0, outLen)) : all.subarray(0, outLen);
  }
}

export function writedevMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runStreamTool(argv, io, WRITEDEV, (buffer, opts, err) =>
    play(buffer, io.stdin ?? process.stdin, opts.samples, opts.cyclic, opts.benchmark, err),
  );
}

async function play(
  buffer: IioBuffer,
  stdin: NodeJS.ReadableStream,
  samples: number,
  cyclic: boolean,
  benchmark: boolean,
  err: { line(s: string): void },
): Promise<number> {
  const scanBytes = buffer.scanBytes;
  const blockBytes = buffer.samples * scanBytes;
  const reader = new ExactReader(stdin);
  let left = samples;
  let stopped = false;
  let wake: (() => void) | undefined;
  const unhook = onTerminate(() => {
    stopped = true;
    wake?.();
    buffer.cancel();
  });
  const meter = benchmark ? throughputMeter() : undefined;
  const benchData = benchmark ? Buffer.alloc(blockBytes) : undefined;
  try {
    while (!stopped) {
      const want = left ? Math.min(blockBytes, left * scanBytes) : blockBytes;
      const data = benchData ?? (await reader.read(want));
      const whole = data.length - (data.length % scanBytes);
      if (!whole) break;
      try {
        await buffer.push(whole === data.length ? data : data.subarray(0, whole));
      } catch (e) {
        if (stopped) break;
        err.line(`Unable to push buffer: ${strerror(errnoOrEio(e))}`);
        return 1;
      }
      meter?.(whole);
      if (cyclic) {
        // The kernel (or our thread) repeats it until we are interrupted.
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (stopped) resolve();
        });
        break;
      }
      if (left) {
        left -= whole / scanBytes;
        if (left <= 0) break;
      }
      if (data.length < want) break; // end of stdin
    }
    if (!cyclic && !stopped) await buffer.drain();
  } catch (e) {
    if (!stopped) {
      err.line(`Unable to push buffer: ${strerror(errnoOrEio(e))}`);
      return 1;
    }
  } finally {
    unhook();
  }
  return 0;
}
