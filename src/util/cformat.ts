/**
 * C's printf("%.Nf", x) exactly as glibc prints it: the exact binary value rounded
 * half-to-even. JavaScript's toFixed rounds exact ties up, which differs for values
 * such as 0.0078125 (`%f` → 0.007812, toFixed(6) → 0.007813).
 */
export function cFixed(x: number, digits = 6): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const negative = x < 0 || Object.is(x, -0);
  let s = scaledRound(x, digits).toString();
  if (digits > 0) {
    s = s.padStart(digits + 1, '0');
    s = `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  }
  return (negative ? '-' : '') + s;
}

/** |x| × 10^p rounded half-to-even, exactly (x finite). */
function scaledRound(x: number, p: number): bigint {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp: number;
  if (biased === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = biased - 1075;
  }
  // |x| = mant × 2^exp: num / den = mant × 2^exp × 10^p
  let num = mant;
  let den = 1n;
  if (exp >= 0) num <<= BigInt(exp);
  else den <<= BigInt(-exp);
  if (p >= 0) num *= 10n ** BigInt(p);
  else den *= 10n ** BigInt(-p);
  let q = num / den;
  const twice = (num % den) * 2n;
  if (twice > den || (twice === den && (q & 1n) === 1n)) q += 1n;
  return q;
}

/**
 * C's printf("%g", x) as glibc prints it (precision 6): `%e` or `%f` by the exponent, with
 * trailing zeros removed. libiio 1.0's tools print `_available` ranges with it.
 */
export function cG(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  if (x === 0) return `${sign}0`;
  const P = 6;
  // the exponent of x in %e with P - 1 digits after the point, after rounding
  let e = Math.floor(Math.log10(Math.abs(x)));
  let q = scaledRound(x, P - 1 - e);
  if (q >= 10n ** BigInt(P)) {
    e++;
    q = scaledRound(x, P - 1 - e);
  } else if (q < 10n ** BigInt(P - 1)) {
    e--;
    q = scaledRound(x, P - 1 - e);
  }
  const strip = (s: string): string => (s.includes('.') ? s.replace(/\.?0+$/, '') : s);
  if (e >= -4 && e < P) return strip(cFixed(x, P - 1 - e));
  const digits = q.toString();
  const mantissa = strip(`${digits[0]}.${digits.slice(1)}`);
  const ex = Math.abs(e).toString().padStart(2, '0');
  return `${sign}${mantissa}e${e < 0 ? '-' : '+'}${ex}`;
}
