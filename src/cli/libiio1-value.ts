/**
 * How libiio 1.0's tools read an attribute for printing (print_attr in iio_info,
 * print_attribute_value in iio_attr): a name ending in `available` is read as a list of
 * options (iio_attr_get_available) or, when the value starts with `[`, as a
 * `[min step max]` range (iio_attr_get_range); everything else as its plain value.
 * Buffer attributes are never lists (libiio: `data_available` is not one).
 */
import { ERRNO, errnoOrEio } from '../errors';
import type { Attr } from '../model/attr';

export type Libiio1Value =
  | { readonly kind: 'options'; readonly list: readonly string[] }
  | { readonly kind: 'range'; readonly min: number; readonly step: number; readonly max: number }
  | { readonly kind: 'value'; readonly text: string }
  /** A positive errno. */
  | { readonly kind: 'error'; readonly errno: number };

/** C's `%lf` in sscanf: optional whitespace, then what strtod reads (decimal, inf, nan). */
const C_DOUBLE = String.raw`\s*([+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan))`;
const RANGE = new RegExp(String.raw`^\s*\[${C_DOUBLE}${C_DOUBLE}${C_DOUBLE}\s*(\S)`, 'i');

function cDouble(s: string): number {
  const t = s.toLowerCase().replace(/^\+/, '');
  if (t.endsWith('inf') || t.endsWith('infinity')) return t.startsWith('-') ? -Infinity : Infinity;
  if (t.endsWith('nan')) return NaN;
  return Number(t);
}

/** sscanf(buf, " [ %lf %lf %lf %c") with the character being `]`. */
export function parseLibiioRange(text: string): { min: number; step: number; max: number } | null {
  const m = RANGE.exec(text);
  if (!m || m[4] !== ']') return null;
  return { min: cDouble(m[1]), step: cDouble(m[2]), max: cDouble(m[3]) };
}

async function readRaw(attr: Attr): Promise<Libiio1Value> {
  try {
    return { kind: 'value', text: await attr.read() };
  } catch (e) {
    return { kind: 'error', errno: errnoOrEio(e) };
  }
}

/** Reads an attribute the way libiio 1.0's iio_info and iio_attr do before printing it. */
export async function readLibiio1Value(attr: Attr): Promise<Libiio1Value> {
  if (attr.kind === 'buffer' || !attr.name.endsWith('available')) return readRaw(attr);
  const raw = await readRaw(attr);
  if (raw.kind !== 'value') return raw;
  if (raw.text.startsWith('[')) {
    const r = parseLibiioRange(raw.text);
    // iio_attr_get_range answers -EOPNOTSUPP (95, ENOTSUP on Linux) when it does not parse
    return r ? { kind: 'range', ...r } : { kind: 'error', errno: ERRNO.ENOTSUP };
  }
  // strtok_r(buf, " \n"): runs of separators give no empty tokens
  return { kind: 'options', list: raw.text.split(/[ \n]+/).filter((t) => t.length > 0) };
}
