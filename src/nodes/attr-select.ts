import { IioError } from '../errors';
import { isAvailableList, parseAvailable, type Attr, type AvailableValues } from '../model/attr';
import type { Context } from '../model/context';
import { str } from './common';
import type { NodeConfig } from './red';

/** Which attribute an attr node reads or writes, as configured in the editor. */
export interface AttrSelector {
  /** Device id/name/label; '' for a context attribute. */
  readonly device: string;
  /** Channel id/name/label; '' for a device attribute. */
  readonly channel: string;
  readonly isOutput: boolean;
  /** '' (device or channel attribute), `buffer` or `debug`. */
  readonly kind: '' | 'buffer' | 'debug';
  readonly attr: string;
}

export function readSelector(config: NodeConfig): AttrSelector | string {
  const attr = str(config, 'attr');
  if (!attr) return 'no attribute selected';
  const kind = str(config, 'kind');
  if (kind !== '' && kind !== 'buffer' && kind !== 'debug')
    return `unknown attribute kind "${kind}"`;
  const device = str(config, 'device');
  const channel = str(config, 'channel');
  if (channel && !device) return 'a channel needs a device';
  if (!device && kind) return `${kind} attributes need a device`;
  return { device, channel, isOutput: str(config, 'direction') === 'out', kind, attr };
}

/** The attribute a selector names (throws ENODEV/ENOENT naming what is missing). */
export function resolveAttr(ctx: Context, sel: AttrSelector): Attr {
  const dev = ctx.device(sel.device);
  if (sel.channel) return dev.channel(sel.channel, sel.isOutput).attr(sel.attr);
  if (sel.kind === 'buffer') return dev.bufferAttr(sel.attr);
  if (sel.kind === 'debug') return dev.debugAttr(sel.attr);
  return dev.attr(sel.attr);
}

/** A `device/channel/attr` topic for messages. */
export function topicOf(sel: AttrSelector): string {
  return [sel.device, sel.channel, sel.attr].filter(Boolean).join('/');
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
    const v = Number(value);
    if (!Number.isFinite(v)) return `"${value}" is not a number (allowed: ${a.min} to ${a.max})`;
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
