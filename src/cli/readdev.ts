/**
 * `iiokit readdev`: libiio 0.24's iio_readdev. Captures raw scans from a device's buffer
 * and writes them to stdout exactly as the kernel lays them out.
 */
import { strerror } from '../errors';
import type { IioBuffer } from '../model/buffer';
import {
  openContext,
  parseCommon,
  printUsage,
  runTool,
  clampNumber,
  type ToolSpec,
} from './common';
import type { CliIo } from './io';
import {
  SIZE_MAX,
  applyTrigger,
  chooseChannels,
  errnoOf,
  onTerminate,
  printExamples,
} from './stream-common';

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
  ],
  usage: [
    '[-t <trigger>] [-b <buffer-size>][-s <samples>] <iio_device> [<channel> ...]',
    'Use the specified trigger.',
    'Size of the capture buffer. Default is 256.',
    'Number of samples to capture, 0 = infinite. Default is 0.',
    'Scan for available contexts and if only one is available use it.',
    'Benchmark throughput.\n\t\t\tStatistics will be printed on the standard input.',
  ],
};

/** Writes and waits until the stream took it (so the block may be released). */
function writeAll(stream: NodeJS.WritableStream, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(data, (e?: Error | null) => (e ? reject(e) : resolve()));
  });
}

export function readdevMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runTool(io, async (out, err) => {
    const opts = parseCommon(argv, READDEV_TOOL, err);
    if (opts.help) {
      printUsage(out, READDEV_TOOL);
      return 0;
    }
    let trigger: string | undefined;
    let bufferSize = 256;
    let samples = 0;
    let benchmark = false;
    for (const o of opts.own) {
      if (o.opt === 't') trigger = o.arg;
      else if (o.opt === 'b') bufferSize = clampNumber(err, 'buffer size', o.arg, 1, SIZE_MAX);
      else if (o.opt === 's') samples = clampNumber(err, 'number of samples', o.arg, 0, SIZE_MAX);
      else if (o.opt === 'B') benchmark = true;
      else if (o.opt === '?') {
        out.line(`Unknown argument '${o.arg ?? '?'}'`);
        return 1;
      }
    }
    const ctx = await openContext(opts, err);
    let restoreTrigger: (() => Promise<void>) | null = null;
    let buffer: IioBuffer | undefined;
    try {
      const [devName, ...chanNames] = opts.operands;
      if (devName === undefined) {
        printExamples(ctx, out, 'iiokit readdev', false);
        printUsage(out, READDEV_TOOL);
        return 1;
      }
      const dev = ctx.findDevice(devName);
      if (!dev) {
        err.line(`Device ${devName} not found`);
        return 1;
      }
      if (trigger !== undefined) {
        restoreTrigger = await applyTrigger(ctx, dev, trigger, err, 'set triffer failed');
        if (!restoreTrigger) return 1;
      }
      const chosen = chooseChannels(dev, chanNames, false, err);
      if (!chosen) return 1;
      if (!chosen.length) {
        err.line('No input channels found.');
        return 1;
      }
      const scanned = chosen.filter((c) => c.isScanElement);
      if (!scanned.length) {
        err.line('Unable to get sample size, returned 0');
        return 1;
      }
      try {
        buffer = await dev.createBuffer(bufferSize, { channels: scanned });
      } catch (e) {
        err.line(`Unable to allocate buffer: ${strerror(errnoOf(e))}`);
        if (process.env.IIOKIT_DEBUG) err.line(String(e));
        return 1;
      }
      return await capture(buffer, io.stdout, samples, benchmark, err);
    } finally {
      out.flush();
      if (buffer) await buffer.close().catch((e) => err.line(String(e)));
      if (restoreTrigger) await restoreTrigger();
      await ctx.close();
    }
  });
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
  let bytes = 0;
  let since = process.hrtime.bigint();
  try {
    for await (const block of buffer.stream()) {
      let data = block.data;
      try {
        if (benchmark) {
          bytes += data.length;
          const now = process.hrtime.bigint();
          const us = Number(now - since) / 1000;
          if (us >= 100000) {
            const rate = (bytes * 1e6) / us;
            const mib = rate > 1048576;
            process.stderr.write(
              `\x1b[2K\rThroughput: ${Math.floor(rate / (1024 * (mib ? 1024 : 1)))} ${mib ? 'M' : 'K'}iB/s`,
            );
            bytes = 0;
            since = now;
          }
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
      err.line(`Unable to refill buffer: ${strerror(errnoOf(e))}`);
      status = 1;
    }
  } finally {
    unhook();
  }
  return status;
}
