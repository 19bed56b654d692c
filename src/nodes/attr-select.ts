import { IioError } from '../errors';
import { isAvailableList, parseAvailable, type Attr, type AvailableValues } from '../model/attr';
import type { Channel } from '../model/channel';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import { str } from './common';
import { resolveDevice, topicName } from './device-ref';
import type { NodeConfig, NodeMessage } from './red';

/**
 * The kinds of attribute a selector can name, one entry each: where the attribute lives
 * on a device, and (for kinds that channels have too) on a channel. A new kind — event
 * attributes (`events/` in sysfs) once the model lists them — is one more entry here and
 * one more option in the dialogs.
 */
export const ATTR_KINDS = {
  /** Device attributes, or channel attributes when a channel is named. */
  '': {
    device: (d: Device, name: string): Attr => d.attr(name),
    channel: (c: Channel, name: string): Attr => c.attr(name),
  },
  buffer: { device: (d: Device, name: string): Attr => d.bufferAttr(name), channel: undefined },
  debug: { device: (d: Device, name: string): Attr => d.debugAttr(name), channel: undefined },
} as const;

export type AttrKind = keyof typeof ATTR_KINDS;

function isKind(k: string): k is AttrKind {
  return Object.prototype.hasOwnProperty.call(ATTR_KINDS, k);
}

/** Which attribute an attr node reads or writes, as configured in the editor. */
export interface AttrSelector {
  /** Device label/name/id; '' for a context attribute. */
  readonly device: string;
  /** The id the device had when the flow was saved (explains a missing device). */
  readonly deviceHint?: string;
  /** Channel id/name/label; '' for a device attribute. */
  readonly channel: string;
  /** Output channel; undefined (a channel from a message without a direction): input first. */
  readonly isOutput?: boolean;
  readonly kind: AttrKind;
  readonly attr: string;
}

/** The selector of a node's dialog; fields left blank may come from each message. */
export interface ConfiguredSelector {
  readonly device: string;
  readonly deviceHint: string;
  readonly channel: string;
  readonly isOutput: boolean;
  readonly kind: AttrKind;
  readonly attr: string;
}

export function readSelector(config: NodeConfig): ConfiguredSelector | string {
  const kind = str(config, 'kind');
  if (!isKind(kind)) return `unknown attribute kind "${kind}"`;
  const device = str(config, 'device');
  const channel = str(config, 'channel');
  if (channel && !device) return 'a channel needs a device';
  if (!device && kind && str(config, 'attr'))
    return `${kind} attributes need a device (or msg.device)`;
  return {
    device,
    deviceHint: str(config, 'deviceId'),
    channel,
    isOutput: str(config, 'direction') === 'out',
    kind,
    attr: str(config, 'attr'),
  };
}

/** True when the dialog names the attribute completely (nothing comes from messages). */
export function isStatic(c: ConfiguredSelector): boolean {
  return c.attr !== '';
}

const msgText = (msg: NodeMessage | undefined, key: string): string => {
  const v = msg?.[key];
  return typeof v === 'string' || typeof v === 'number' ? String(v).trim() : '';
};

/**
 * The selector for one message: the dialog's fields, and where one is blank the message's
 * `msg.device`, `msg.channel` (with `msg.direction` `in`/`out`), `msg.kind` and
 * `msg.attribute` — so one node can serve many attributes, as core MQTT's blank topic does.
 */
export function selectorFor(c: ConfiguredSelector, msg?: NodeMessage): AttrSelector {
  const device = c.device || msgText(msg, 'device');
  const fromMsgChannel = !c.channel && !!msgText(msg, 'channel');
  const channel = c.channel || msgText(msg, 'channel');
  const attr = c.attr || msgText(msg, 'attribute');
  let kind: AttrKind = c.kind;
  if (!c.attr && !c.kind && msgText(msg, 'kind')) {
    const k = msgText(msg, 'kind');
    if (!isKind(k))
      throw new IioError('EINVAL', `msg.kind "${k}" is not one of: device, buffer, debug`);
    kind = k;
  }
  if (!attr) {
    throw new IioError(
      'EINVAL',
      'no attribute: set one in the node or send msg.attribute (and msg.device, msg.channel)',
    );
  }
  if (channel && !device) {
    throw new IioError('EINVAL', `channel "${channel}" needs a device (msg.device)`, { attr });
  }
  const dir = msgText(msg, 'direction');
  const isOutput = fromMsgChannel ? (dir ? dir === 'out' : undefined) : c.isOutput;
  return {
    device,
    ...(device === c.device && c.deviceHint ? { deviceHint: c.deviceHint } : {}),
    channel,
    ...(isOutput !== undefined ? { isOutput } : {}),
    kind,
    attr,
  };
}

function findChannel(dev: Device, sel: AttrSelector): Channel {
  if (sel.isOutput !== undefined) return dev.channel(sel.channel, sel.isOutput);
  // No direction given (a message's msg.channel): an input of that id first, then an output.
  return dev.findChannel(sel.channel, false) ?? dev.channel(sel.channel, true);
}

/** The device a selector names (throws ENODEV/ENOTUNIQ naming what is wrong). */
export function selectedDevice(ctx: Context, sel: AttrSelector): Device {
  return resolveDevice(ctx, { ref: sel.device, hint: sel.deviceHint });
}

/** The attribute a selector names (throws ENODEV/ENOENT naming what is missing). */
export function resolveAttr(ctx: Context, sel: AttrSelector): Attr {
  const dev = selectedDevice(ctx, sel);
  const kind = ATTR_KINDS[sel.kind];
  if (sel.channel) {
    if (!kind.channel) {
      throw new IioError('EINVAL', `channels have no ${sel.kind} attributes`, {
        device: sel.device,
        channel: sel.channel,
        attr: sel.attr,
        uri: ctx.uri,
      });
    }
    return kind.channel(findChannel(dev, sel), sel.attr);
  }
  return kind.device(dev, sel.attr);
}

/** A `device/channel/attr` topic, with the device's stable name (never `iio:deviceN`). */
export function topicOf(ctx: Context | undefined, sel: AttrSelector): string {
  let device = sel.device;
  if (ctx && device) {
    try {
      device = topicName(ctx, selectedDevice(ctx, sel));
    } catch {
      // unresolvable: the error goes elsewhere; keep what the flow says
    }
  }
  return [device, sel.channel, sel.attr].filter(Boolean).join('/');
}

/** Checks that what a selector names exists (at deploy and reconnect: a red status early). */
export function checkSelected(ctx: Context, sel: AttrSelector): void {
  if (!sel.device) {
    if (ctx.attrs[sel.attr] === undefined) {
      throw new IioError('ENOENT', `no context attribute "${sel.attr}"`, {
        attr: sel.attr,
        uri: ctx.uri,
      });
    }
    return;
  }
  resolveAttr(ctx, sel);
}

/** Reads the selected attribute (context attributes come from the context's description). */
export async function readSelected(ctx: Context, sel: AttrSelector): Promise<string> {
  if (!sel.device) {
    const v = ctx.attrs[sel.attr];
    if (v === undefined) {
      throw new IioError('ENOENT', `no context attribute "${sel.attr}"`, {
        attr: sel.attr,
        uri: ctx.uri,
      });
    }
    return v;
  }
  return resolveAttr(ctx, sel).read();
}

/** The `<attr>_available` sibling of an attribute, if the same list has one. */
export function availableOf(ctx: Context, sel: AttrSelector): Attr | undefined {
  if (!sel.device || isAvailableList(sel.attr)) return undefined;
  const name = `${sel.attr}_available`;
  try {
    return resolveAttr(ctx, { ...sel, attr: name });
  } catch {
    // Drivers often list a channel attribute's choices once, on the device
    // (in_accel_sampling_frequency + sampling_frequency_available).
    if (!sel.channel) return undefined;
    try {
      return resolveAttr(ctx, { ...sel, channel: '', kind: '', attr: name });
    } catch {
      return undefined;
    }
  }
}

const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^0x[0-9a-fA-F]+$/;
const INTEGER = /^[-+]?\d+$/;

/** A number when the text is exactly one number, else the text. */
export function autoValue(text: string): number | string {
  const t = text.trim();
  return NUMBER.test(t) ? Number(t) : t;
}

/** What an `_available` value becomes in a message: a range object or a list. */
export function availableValue(
  a: AvailableValues,
): { min: number; step: number; max: number } | Array<number | string> {
  if (a.kind === 'range') return { min: a.min, step: a.step, max: a.max };
  return a.values.map(autoValue);
}

export { parseAvailable };

/**
 * Checks a value against an `_available` description; returns the reason it is not
 * allowed, or undefined when it is.
 */
export function checkAvailable(value: string, a: AvailableValues): string | undefined {
  if (a.kind === 'range') {
    const t = value.trim();
    const v = Number(t);
    if (t === '' || !NUMBER.test(t) || !Number.isFinite(v))
      return `"${value}" is not a number (allowed: ${a.min} to ${a.max})`;
    if (v < a.min || v > a.max) return `${value} is outside [${a.min} ${a.step} ${a.max}]`;
    if (a.step > 0) {
      const k = (v - a.min) / a.step;
      if (Math.abs(k - Math.round(k)) > 1e-6)
        return `${value} is not on the step ${a.step} from ${a.min}`;
    }
    return undefined;
  }
  if (a.values.length === 0) return undefined;
  const num = Number(value);
  const ok = a.values.some(
    (x) => x === value || (Number.isFinite(num) && value.trim() !== '' && Number(x) === num),
  );
  return ok ? undefined : `"${value}" is not one of: ${a.values.join(' ')}`;
}

/**
 * Checks a value against the kind of value the attribute holds now: a numeric attribute
 * takes only numbers (drivers parse them with kstrtoint/kstrtoull or the IIO fixed-point
 * parser and answer EINVAL to anything else), and one that holds an integer takes only
 * integers (the kernel's integer parsers refuse a decimal point). Undefined when fine.
 */
export function checkNumeric(value: string, current: string): string | undefined {
  const cur = current.trim();
  if (!NUMBER.test(cur)) return undefined;
  const t = value.trim();
  if (t === '' || !NUMBER.test(t) || !Number.isFinite(Number(t))) {
    return `"${value}" is not a number (the attribute holds ${cur})`;
  }
  if (INTEGER.test(cur) && !INTEGER.test(t) && !/^0x/i.test(t)) {
    const n = Number(t);
    if (!Number.isInteger(n) || /[.eE]/.test(t))
      return `${value} is not an integer (the attribute holds ${cur})`;
  }
  if (!Number.isSafeInteger(Math.trunc(Number(t))) && !/^0x/i.test(t)) {
    return `${value} is too large to be written exactly`;
  }
  return undefined;
}
