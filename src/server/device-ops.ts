/**
 * What a client can ask of a device, answered the way iiod answers it — a value, or a
 * negative errno — with no wire format in sight: attribute reads and writes (one, or all
 * of a family), triggers, the kernel buffer count. The ASCII session (session.ts) frames
 * these answers for libiio 0.x; a binary framing can call the same functions.
 */
import { ERRNO, errnoOf, IioError } from '../errors';
import type { Attr } from '../model/attr';
import type { Channel } from '../model/channel';
import type { Context } from '../model/context';
import type { Device } from '../model/device';

/** A negative errno: how every operation here says it failed (-ENODEV, ...). */
export type NegErrno = number;

/** The negative errnos the operations answer with. */
export const NEG = {
  EPERM: -ERRNO.EPERM,
  ENOENT: -ERRNO.ENOENT,
  ENXIO: -ERRNO.ENXIO,
  EBADF: -ERRNO.EBADF,
  ENOMEM: -ERRNO.ENOMEM,
  EBUSY: -ERRNO.EBUSY,
  ENODEV: -ERRNO.ENODEV,
  EINVAL: -ERRNO.EINVAL,
} as const;

/** The negative errno an error is answered with (-EIO when it has none). */
export function negErrno(err: unknown): NegErrno {
  const e = IioError.wrap(err);
  return -(e.errno || errnoOf(e.code) || ERRNO.EIO);
}

/** Which attributes a request names: the device's, its debug or buffer ones, a channel's. */
export type AttrFamily = 'device' | 'debug' | 'buffer' | 'channel';

/** libiio's iio_context_find_device: the first device whose id, label or name matches. */
export function findDevice(ctx: Context, word: string): Device | null {
  return ctx.devices.find((d) => d.id === word || d.label === word || d.name === word) ?? null;
}

/** iiod's channel lookup: by id or name, in the given direction. */
export function findChannel(dev: Device, word: string, isOutput: boolean): Channel | null {
  return (
    dev.channels.find((c) => c.isOutput === isOutput && (c.id === word || c.name === word)) ?? null
  );
}

/** The attributes of a family; -ENODEV without a device, -ENXIO for a missing channel. */
export function attrList(
  dev: Device | null,
  family: AttrFamily,
  channel: Channel | null,
): readonly Attr[] | NegErrno {
  if (!dev) return NEG.ENODEV;
  if (family === 'channel') return channel ? channel.attrs : NEG.ENXIO;
  if (family === 'debug') return dev.debugAttrs;
  if (family === 'buffer') return dev.bufferAttrs;
  return dev.attrs;
}

/** An attribute by name, or by file name as iiod also accepts. */
function findAttr(list: readonly Attr[], name: string): Attr | undefined {
  return list.find((a) => a.name === name) ?? list.find((a) => a.filename === name);
}

/** Runs `op` on one attribute: -ENOENT when there is none of that name, -errno on failure. */
async function onAttr<T>(
  dev: Device | null,
  family: AttrFamily,
  channel: Channel | null,
  name: string,
  op: (attr: Attr) => Promise<T>,
): Promise<T | NegErrno> {
  const list = attrList(dev, family, channel);
  if (typeof list === 'number') return list;
  const attr = findAttr(list, name);
  if (!attr) return NEG.ENOENT;
  try {
    return await op(attr);
  } catch (err) {
    return negErrno(err);
  }
}

/** Reads one attribute: its value, or a negative errno. */
export function readAttr(
  dev: Device | null,
  family: AttrFamily,
  channel: Channel | null,
  name: string,
): Promise<string | NegErrno> {
  return onAttr(dev, family, channel, name, (a) => a.read());
}

/** Reads every attribute of a family, in order: a value or a negative errno each. */
export async function readAttrs(
  dev: Device | null,
  family: AttrFamily,
  channel: Channel | null,
): Promise<Array<string | NegErrno> | NegErrno> {
  const list = attrList(dev, family, channel);
  if (typeof list === 'number') return list;
  const values: Array<string | NegErrno> = [];
  for (const a of list) {
    try {
      values.push(await a.read());
    } catch (err) {
      values.push(negErrno(err));
    }
  }
  return values;
}

/** Writes one attribute: 0, or a negative errno. */
export function writeAttr(
  dev: Device | null,
  family: AttrFamily,
  channel: Channel | null,
  name: string,
  value: string,
): Promise<0 | NegErrno> {
  return onAttr(dev, family, channel, name, async (a) => {
    await a.write(value);
    return 0 as const;
  });
}

/**
 * Writes every attribute of a family, in order; `null` leaves one alone. As iiod, a
 * failed write does not stop the others and is not reported.
 */
export async function writeAttrs(
  list: readonly Attr[],
  values: ReadonlyArray<string | null>,
): Promise<void> {
  for (let i = 0; i < list.length; i++) {
    const v = values[i];
    if (v !== null && v !== undefined) await list[i].write(v).catch(() => undefined);
  }
}

/** The device's trigger (null when it has none), or a negative errno. */
export async function getTrigger(dev: Device | null): Promise<Device | null | NegErrno> {
  if (!dev) return NEG.ENODEV;
  try {
    return await dev.getTrigger();
  } catch (err) {
    return negErrno(err);
  }
}

/** Sets (or, with null, removes) the device's trigger, found by id, label or name. */
export async function setTrigger(
  ctx: Context,
  dev: Device | null,
  name: string | null,
): Promise<0 | NegErrno> {
  if (!dev) return NEG.ENODEV;
  let trig: Device | null = null;
  if (name !== null) {
    trig = findDevice(ctx, name);
    if (!trig) return NEG.ENOENT;
    if (!trig.isTrigger) return NEG.EINVAL;
  }
  try {
    await dev.setTrigger(trig);
  } catch (err) {
    return negErrno(err);
  }
  return 0;
}
