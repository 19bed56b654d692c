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
  /** An upper bound that follows other attributes (e.g. half the sampling frequency). */
  readonly maxOf?: () => number;
  /** Integers only. */
  readonly integer?: boolean;
  /** The sibling `<name>_available` attribute, when there is one (filled in by `linkAvailable`). */
  available?: AttrSlot;
  /**
   * True while the value is unknown: the board's driver failed to read it when the board
   * was captured (`value="ERROR"` in the XML). An unknown `_available` list validates
   * nothing, since the driver's real list is not known.
   */
  unknown?(): boolean;
}

/** What capture tools store in an XML for a read that failed on the board. */
export const CAPTURED_ERROR = 'ERROR';

/**
 * The error a read of an unknown value gives. iiod hands a client the errno of the
 * failed sysfs read unchanged, but a capture keeps only the word ERROR; EIO is what the
 * driver core answers for a device attribute it cannot show (dev_attr_show without a
 * show method) and what a failed bus transfer gives, the generic "the driver could not
 * produce a value".
 */
export function capturedReadError(): IioError {
  return new IioError(
    'EIO',
    'the driver failed this read when the board was captured (value ERROR in the XML); write a value first',
  );
}

/**
 * A stored value, optionally with a hook run after each accepted write. An `undefined`
 * initial value is unknown (a read the capture saw fail): reads fail with EIO until a
 * write stores one.
 */
export function stored(
  initial: string | undefined,
  options: Omit<AttrSlot, 'read' | 'write'> & { onWrite?: (value: string) => void } = {},
): AttrSlot {
  let value = initial;
  const { onWrite, ...rest } = options;
  return {
    ...rest,
    read: () => {
      if (value === undefined) throw capturedReadError();
      return value;
    },
    write: (v) => {
      value = v;
      onWrite?.(v);
    },
    unknown: () => value === undefined,
  };
}

/** A read-only value computed at each read. */
export function live(read: () => string): AttrSlot {
  return { read };
}

/** A read-only value the capture failed to read: every read fails (EIO), it validates nothing. */
export function unknownReadOnly(): AttrSlot {
  return {
    read: () => {
      throw capturedReadError();
    },
    unknown: () => true,
  };
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
  // An `_available` list the capture could not read says nothing: the driver decides.
  if (slot.available && !slot.available.unknown?.()) {
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
  const max = slot.maxOf ? slot.maxOf() : slot.max;
  if (slot.numeric || slot.integer || slot.min !== undefined || max !== undefined) {
    if (!isNumber(v))
      throw new IioError('EINVAL', `invalid value "${v}": ${name} takes a number`, where);
    const x = Number(v);
    if (slot.integer && !Number.isInteger(x)) {
      throw new IioError('EINVAL', `invalid value "${v}": ${name} takes an integer`, where);
    }
    if ((slot.min !== undefined && x < slot.min) || (max !== undefined && x > max)) {
      throw new IioError(
        'EINVAL',
        `invalid value "${v}": ${name} accepts ${slot.min ?? '-inf'} to ${max ?? 'inf'}`,
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
