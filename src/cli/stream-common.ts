/**
 * What `iiokit readdev` and `iiokit writedev` share: libiio's trigger handling and
 * channel selection (iio_readdev.c / iio_writedev.c), with libiio's messages.
 */
import { IioError, strerror } from '../errors';
import type { Channel } from '../model/channel';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import type { Out } from './io';

/** libiio's tools set the trigger to this rate (DEFAULT_FREQ_HZ). */
export const TOOL_TRIGGER_HZ = 100;
/** SIZE_MAX as far as JavaScript numbers are exact. */
export const SIZE_MAX = Number.MAX_SAFE_INTEGER;

const errnoOf = (e: unknown): number => IioError.wrap(e).errno || 5;

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
      err.line(`sample rate not set : ${strerror(errnoOf(e))}`);
    }
  }
  const before = await dev.getTrigger().catch(() => undefined);
  try {
    await dev.setTrigger(trig);
  } catch (e) {
    err.line(`${setFailedText} : ${strerror(errnoOf(e))}`);
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
    const errno = !c ? 6 : chosen.includes(c) ? 16 : 0;
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

export { errnoOf };
