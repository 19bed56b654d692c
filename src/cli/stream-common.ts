/**
 * What `iiokit readdev` and `iiokit writedev` share: the whole tool around the transfer
 * (options, context, device, trigger, channels, buffer, clean-up: iio_readdev.c and
 * iio_writedev.c are the same program but for the direction), with libiio's messages.
 */
import { ERRNO, errnoOrEio, strerror } from '../errors';
import type { IioBuffer } from '../model/buffer';
import type { Channel } from '../model/channel';
import type { TransferMode } from '../model/backend';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import {
  clampNumber,
  openContextFirst,
  parseCommon,
  printUsage,
  refuseOption,
  runTool,
  type ToolSpec,
} from './common';
import type { CliIo, Out } from './io';

/** libiio's tools set the trigger to this rate (DEFAULT_FREQ_HZ). */
export const TOOL_TRIGGER_HZ = 100;
/** SIZE_MAX as far as JavaScript numbers are exact. */
export const SIZE_MAX = Number.MAX_SAFE_INTEGER;

/**
 * `-t trigger`: finds it, sets it to 100 Hz (`sampling_frequency`, else `frequency`) and
 * attaches it to the device. Returns an undo function (we put the device's trigger back
 * when done), or null after printing libiio's message when the tool must stop.
 */
export async function applyTrigger(
  ctx: Context,
  dev: Device,
  name: string,
  err: Out,
  setFailedText: string,
): Promise<(() => Promise<void>) | null> {
  const trig = ctx.findDevice(name);
  if (!trig) {
    err.line(`Trigger ${name} not found`);
    return null;
  }
  if (!trig.isTrigger) {
    err.line('Specified device is not a trigger');
    return null;
  }
  try {
    await trig.writeAttr('sampling_frequency', TOOL_TRIGGER_HZ);
  } catch {
    try {
      await trig.writeAttr('frequency', TOOL_TRIGGER_HZ);
    } catch (e) {
      err.line(`sample rate not set : ${strerror(errnoOrEio(e))}`);
    }
  }
  const before = await dev.getTrigger().catch(() => undefined);
  try {
    await dev.setTrigger(trig);
  } catch (e) {
    err.line(`${setFailedText} : ${strerror(errnoOrEio(e))}`);
  }
  return async () => {
    if (before !== undefined) await dev.setTrigger(before).catch(() => undefined);
  };
}

/**
 * The channels named on the command line (id or name, of one direction), or all of that
 * direction. Prints libiio's `Bad channel name` and returns null on a bad one.
 */
export function chooseChannels(
  dev: Device,
  names: readonly string[],
  isOutput: boolean,
  err: Out,
): Channel[] | null {
  if (!names.length) return dev.channels.filter((c) => c.isOutput === isOutput);
  const chosen: Channel[] = [];
  for (const n of names) {
    const c = dev.findChannel(n, isOutput);
    // libiio's iio_device_enable_channel: ENXIO when missing, EBUSY when named twice
    const errno = !c ? ERRNO.ENXIO : chosen.includes(c) ? ERRNO.EBUSY : 0;
    if (errno) {
      err.line(`Bad channel name "${n}" : ${strerror(errno)}`);
      return null;
    }
    chosen.push(c!);
  }
  return chosen;
}

/** libiio prints these when no device is named. */
export function printExamples(ctx: Context, out: Out, tool: string, isOutput: boolean): void {
  const uri = ctx.attrs.uri ?? ctx.uri;
  for (const dev of ctx.devices) {
    if (!dev.channels.length) continue;
    const name = dev.label ?? dev.name ?? dev.id;
    let hit = false;
    for (const ch of dev.channels) {
      if (!ch.isScanElement || ch.isOutput !== isOutput) continue;
      hit = true;
      out.line(`Example : ${tool} -u ${uri} -b 256 -s 1024 ${name} ${ch.id}`);
    }
    if (hit) out.line(`Example : ${tool} -u ${uri} -b 256 -s 1024 ${name}`);
  }
}

/** libiio's tools stop on these; the handler is removed by the returned function. */
export function onTerminate(handler: () => void): () => void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.removeListener(s, handler);
  };
}

/**
 * The benchmark's `-B` line: every 100 ms, the rate since the last line, on stderr
 * (libiio writes it there too, whatever its help says). Returns the per-block counter.
 */
export function throughputMeter(): (bytes: number) => void {
  let bytes = 0;
  let since = process.hrtime.bigint();
  return (n) => {
    bytes += n;
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
  };
}

/** Where iio_readdev and iio_writedev differ, apart from the transfer itself. */
export interface StreamTool {
  readonly tool: ToolSpec;
  /** The direction of the channels and of the buffer. */
  readonly isOutput: boolean;
  /** libiio's message when the trigger cannot be attached (iio_readdev spells it "triffer"). */
  readonly setTriggerFailed: string;
  /** libiio's message when the device has no channel of that direction. */
  readonly noChannels: string;
}

/** The tools' own options (`-c` only reaches here from iio_writedev's optstring). */
export interface StreamOptions {
  readonly bufferSize: number;
  readonly samples: number;
  readonly cyclic: boolean;
  readonly benchmark: boolean;
  /** readdev: resume after a lost server (counting the gap) instead of stopping. */
  readonly resume: boolean;
  readonly transfer: TransferMode;
}

/**
 * Runs iio_readdev or iio_writedev up to the open buffer, hands it to `run`, and
 * closes the buffer, puts the trigger back and closes the context however it ends.
 */
export function runStreamTool(
  argv: readonly string[],
  io: CliIo,
  spec: StreamTool,
  run: (buffer: IioBuffer, opts: StreamOptions, err: Out) => Promise<number>,
): Promise<number> {
  const tool = spec.tool;
  return runTool(io, async (out, err) => {
    const opts = parseCommon(argv, tool, err);
    if (opts.help) {
      printUsage(out, tool);
      return 0;
    }
    // As libiio's tools: the context first (its failure is said first), then their own
    // options, whose clamping messages and getopt errors follow.
    // readdev stops when the server goes away (libiio's iio_readdev: "Broken pipe")
    // unless -R asked to resume: only then may an ip:/usb:/serial: context reconnect.
    const resumes = opts.own.some((o) => o.opt === 'R');
    const ctx = await openContextFirst(
      opts,
      err,
      spec.isOutput || resumes ? {} : { reconnect: false },
    );
    let trigger: string | undefined;
    let bufferSize = 256;
    let samples = 0;
    let cyclic = false;
    let benchmark = false;
    let resume = false;
    let transfer: TransferMode = 'auto';
    for (const o of opts.own) {
      if (o.opt === 't') trigger = o.arg;
      else if (o.opt === 'b') bufferSize = clampNumber(err, 'buffer size', o.arg, 1, SIZE_MAX);
      else if (o.opt === 's') samples = clampNumber(err, 'number of samples', o.arg, 0, SIZE_MAX);
      else if (o.opt === 'c') cyclic = true;
      else if (o.opt === 'B') benchmark = true;
      else if (o.opt === 'R') resume = true;
      else if (o.opt === 'transfer') {
        if (o.arg !== 'auto' && o.arg !== 'dmabuf' && o.arg !== 'fileio') {
          err.line(`Invalid transfer mode "${o.arg ?? ''}": auto, dmabuf or fileio`);
          await ctx?.close();
          return 1;
        }
        transfer = o.arg;
      } else if (o.opt === '?') {
        await ctx?.close();
        return refuseOption(out, err, tool, opts.errors);
      }
    }
    if (!ctx) return 1;
    let restoreTrigger: (() => Promise<void>) | null = null;
    let buffer: IioBuffer | undefined;
    try {
      const [devName, ...chanNames] = opts.operands;
      if (devName === undefined) {
        printExamples(ctx, out, `iiokit ${tool.command}`, spec.isOutput);
        // libiio's usage() exits with status 0, even here.
        printUsage(out, tool);
        return 0;
      }
      if (benchmark && cyclic) {
        err.line('Cannot benchmark in cyclic mode.');
        return 1;
      }
      const dev = ctx.findDevice(devName);
      if (!dev) {
        err.line(`Device ${devName} not found`);
        return 1;
      }
      if (trigger !== undefined) {
        restoreTrigger = await applyTrigger(ctx, dev, trigger, err, spec.setTriggerFailed);
        if (!restoreTrigger) return 1;
      }
      const chosen = chooseChannels(dev, chanNames, spec.isOutput, err);
      if (!chosen) return 1;
      if (!chosen.length) {
        err.line(spec.noChannels);
        return 1;
      }
      const scanned = chosen.filter((c) => c.isScanElement);
      if (!scanned.length) {
        err.line('Unable to get sample size, returned 0');
        return 1;
      }
      try {
        buffer = await dev.createBuffer(bufferSize, {
          channels: scanned,
          cyclic,
          isOutput: spec.isOutput,
          transfer,
        });
      } catch (e) {
        err.line(`Unable to allocate buffer: ${strerror(errnoOrEio(e))}`);
        // libiio's line, then ours when it says more (a forced transfer mode refused)
        if (process.env.IIOKIT_DEBUG || transfer !== 'auto') err.line(String(e));
        return 1;
      }
      return await run(buffer, { bufferSize, samples, cyclic, benchmark, resume, transfer }, err);
    } finally {
      out.flush();
      if (buffer) await buffer.close().catch((e) => err.line(String(e)));
      if (restoreTrigger) await restoreTrigger();
      await ctx.close();
    }
  });
}
