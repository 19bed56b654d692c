/**
 * What a command metric (NCMD/DCMD) carries, checked against the metric it addresses. The
 * attribute write it turns into is iio-attr-write's own (`writeChecked`): the attribute's
 * `_available` list or range first, then the driver, read back after.
 */
import { IioError } from '../../errors';
import { DATATYPE, type CommandMetric, type SpType } from './payload';
import type { Translate } from './messages';

const NUMERIC = new Set<number>([
  DATATYPE.Int8,
  DATATYPE.Int16,
  DATATYPE.Int32,
  DATATYPE.Int64,
  DATATYPE.UInt8,
  DATATYPE.UInt16,
  DATATYPE.UInt32,
  DATATYPE.UInt64,
  DATATYPE.Float,
  DATATYPE.Double,
]);
const STRINGS = new Set<number>([DATATYPE.String, DATATYPE.Text]);
const NUMERIC_FIELDS = new Set(['intValue', 'longValue', 'floatValue', 'doubleValue']);

const TYPE_NAMES = new Map<number, string>(Object.entries(DATATYPE).map(([k, v]) => [v, k]));

/** What a command metric carries, for messages: its datatype, else the protobuf field. */
export function carried(m: CommandMetric): string {
  if (m.datatype !== undefined) return TYPE_NAMES.get(m.datatype) ?? `datatype ${m.datatype}`;
  if (m.field) return m.field;
  return 'no value';
}

/**
 * The value of a command metric for a metric of type `want`, or an EINVAL naming both types:
 * numbers take any integer or floating field (a signed datatype reinterprets the uint32 on
 * the wire), strings only String/Text, booleans only Boolean.
 */
export function commandValue(
  want: SpType,
  name: string,
  m: CommandMetric,
  t: Translate,
): number | string | boolean {
  const wrong = (): IioError =>
    new IioError('EINVAL', t('refuse.wrongType', { metric: name, want, got: carried(m) }));
  if (m.isNull || m.field === undefined || m.value === undefined) {
    throw new IioError('EINVAL', t('refuse.noValue', { metric: name }));
  }
  const dt = m.datatype;
  if (want === 'Double' || want === 'Int64' || want === 'UInt64') {
    if (!NUMERIC_FIELDS.has(m.field) || typeof m.value !== 'number') throw wrong();
    if (dt !== undefined && !NUMERIC.has(dt)) throw wrong();
    let v = m.value;
    if (
      m.field === 'intValue' &&
      (dt === DATATYPE.Int8 || dt === DATATYPE.Int16 || dt === DATATYPE.Int32)
    ) {
      v = v | 0;
    }
    if (!Number.isFinite(v)) throw wrong();
    return v;
  }
  if (want === 'String') {
    if (m.field !== 'stringValue' || typeof m.value !== 'string') throw wrong();
    if (dt !== undefined && !STRINGS.has(dt)) throw wrong();
    return m.value;
  }
  if (m.field !== 'booleanValue' || typeof m.value !== 'boolean') throw wrong();
  if (dt !== undefined && dt !== DATATYPE.Boolean) throw wrong();
  return m.value;
}
