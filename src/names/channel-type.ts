import { CHANNEL_TYPES, HWMON_TYPES, MODIFIERS } from './tables';

export interface ChannelKind {
  /** Kernel type name (`voltage`, `accel`) or `unknown`. */
  readonly type: string;
  /** enum iio_chan_type value, -1 when unknown. */
  readonly typeValue: number;
  /** Modifier name (`x`, `i`, `from_north_magnetic_tilt_comp`) or `''` for none. */
  readonly modifier: string;
  /** enum iio_modifier value, 0 for none. */
  readonly modifierValue: number;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/**
 * The type a channel id names, by libiio's rule: the first type name (in enum order)
 * that starts the id and is followed by the end, `_` or a digit.
 */
function findType(id: string, table: readonly string[]): number {
  for (let i = 0; i < table.length; i++) {
    const t = table[i];
    if (!id.startsWith(t)) continue;
    const next = id[t.length];
    if (next === undefined || next === '_' || isDigit(next)) return i;
  }
  return -1;
}

/**
 * Finds the modifier that starts `s` and ends at `_` or the end of the string.
 * Unlike libiio 0.24 (first prefix in enum order), the longest name wins, so
 * `from_north_magnetic_tilt_comp` is not read as `from_north_magnetic`.
 */
export function findModifier(s: string): { value: number; length: number } {
  let best = { value: 0, length: 0 };
  for (let i = 1; i < MODIFIERS.length; i++) {
    const m = MODIFIERS[i];
    if (m.length <= best.length || !s.startsWith(m)) continue;
    const next = s[m.length];
    if (next === undefined || next === '_') best = { value: i, length: m.length };
  }
  return best;
}

/**
 * Type and modifier of a channel from its id (`accel_x`, `voltage1-voltage2`,
 * `temp_ambient`); hwmon devices use hwmon's prefixes (`in`, `fan`, `curr`, ...).
 */
export function channelKindOf(id: string, hwmon = false): ChannelKind {
  const table = hwmon ? HWMON_TYPES : CHANNEL_TYPES;
  const t = findType(id, table);
  let modifier = { value: 0, length: 0 };
  const us = id.indexOf('_');
  if (us >= 0) modifier = findModifier(id.slice(us + 1));
  return {
    type: t >= 0 ? table[t] : 'unknown',
    typeValue: t,
    modifier: MODIFIERS[modifier.value],
    modifierValue: modifier.value,
  };
}
