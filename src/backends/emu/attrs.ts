import { IioError, type IioErrorContext } from '../../errors';
import { parseAvailable } from '../../model/attr';

/** How one emulated attribute is read and written. */
export interface AttrSlot {
  read(): string;
  /** Absent: the attribute is read-only (EACCES, like a sysfs file without store). */
  write?(value: string): void;
  /** The value must be a number (EINVAL otherwise). */
  readonly numeric?: boolean;
  /** Inclusive bounds for numeric values. */
  readonly min?: number;
  readonly max?: number;
  /** Integers only. */
  readonly integer?: boolean;
  /** The sibling `<name>_available` attribute, when there is one (filled in by `linkAvailable`). */
  available?: AttrSlot;
}

/** A stored value, optionally with a hook run after each accepted write. */
export function stored(
  initial: string,
  options: Omit<AttrSlot, 'read' | 'write'> & { onWrite?: (value: string) => void } = {},
): AttrSlot {
  let value = initial;
  const { onWrite, ...rest } = options;
  return {
    ...rest,
    read: () => value,
    write: (v) => {
      value = v;
      onWrite?.(v);
    },
  };
}

/** A read-only value computed at each read. */
export function live(read: () => string): AttrSlot {
  return { read };
}

const isNumber = (s: string): boolean => s.trim() !== '' && Number.isFinite(Number(s));

/** Matches a numeric text against an entry of an `_available` list (1000 = 1000.000000). */
function sameValue(a: string, b: string): boolean {
  if (a === b) return true;
  if (!isNumber(a) || !isNumber(b)) return false;
  const x = Number(a);
  const y = Number(b);
  return Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(x), Math.abs(y));
}

/**
 * Cleans a written value the way sysfs stores see it: stops at a NUL (libiio's clients
 * send the terminator) and drops the trailing newline and spaces.
 */
export function cleanValue(raw: string): string {
  const nul = raw.indexOf('\0');
  return (nul >= 0 ? raw.slice(0, nul) : raw).replace(/[\s]+$/, '');
}

/**
 * Checks a value against the slot's rules and its `_available` list; returns the text
 * to store (the list's own spelling for a list entry). Errors are EINVAL naming the
 * attribute and what it accepts.
 */
export function validate(
  slot: AttrSlot,
  value: string,
  name: string,
  ctx: IioErrorContext,
): string {
  const where = { ...ctx, attr: name };
  if (!slot.write) throw new IioError('EACCES', 'the attribute is read-only', where);
  let v = value;
  if (slot.available) {
    const avail = parseAvailable(slot.available.read());
    if (avail.kind === 'list' && avail.values.length) {
      const hit = avail.values.find((x) => sameValue(x, v));
      if (hit === undefined) {
        throw new IioError(
          'EINVAL',
          `invalid value "${v}": ${name} accepts ${avail.values.join(', ')}`,
          where,
        );
      }
      v = hit;
    } else if (avail.kind === 'range') {
      const x = Number(v);
      const steps = avail.step > 0 ? (x - avail.min) / avail.step : 0;
      if (
        !isNumber(v) ||
        x < avail.min ||
        x > avail.max ||
        Math.abs(steps - Math.round(steps)) > 1e-6
      ) {
        throw new IioError(
          'EINVAL',
          `invalid value "${v}": ${name} accepts ${avail.min} to ${avail.max} in steps of ${avail.step}`,
          where,
        );
      }
    }
  }
  if (slot.numeric || slot.integer || slot.min !== undefined || slot.max !== undefined) {
    if (!isNumber(v))
      throw new IioError('EINVAL', `invalid value "${v}": ${name} takes a number`, where);
    const x = Number(v);
    if (slot.integer && !Number.isInteger(x)) {
      throw new IioError('EINVAL', `invalid value "${v}": ${name} takes an integer`, where);
    }
    if ((slot.min !== undefined && x < slot.min) || (slot.max !== undefined && x > slot.max)) {
      throw new IioError(
        'EINVAL',
        `invalid value "${v}": ${name} accepts ${slot.min ?? '-inf'} to ${slot.max ?? 'inf'}`,
        where,
      );
    }
    if (slot.integer) v = String(x);
  }
  return v;
}

/** kstrtobool's spellings, as sysfs boolean attributes (`*_en`) accept them. */
export function parseBool(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (['1', 'y', 'yes', 'on', 'true'].includes(v)) return true;
  if (['0', 'n', 'no', 'off', 'false'].includes(v)) return false;
  return undefined;
}

/** A boolean attribute stored as 0/1. */
export function boolSlot(
  initial: boolean,
  onWrite?: (v: boolean) => void,
): AttrSlot & {
  value(): boolean;
} {
  let value = initial;
  return {
    read: () => (value ? '1' : '0'),
    write: (v) => {
      const b = parseBool(v);
      if (b === undefined) throw new IioError('EINVAL', `invalid value "${v}": takes 0 or 1`);
      value = b;
      onWrite?.(b);
    },
    value: () => value,
  };
}
