/**
 * C's integer parsers as glibc implements them on LP64 Linux (x86-64, arm64), where
 * `long` and `long long` are both 64-bit: libiio, iiod and the kernel's debugfs parse
 * numbers with these, and we must read the same text the same way (octal on a leading
 * zero, saturation or wrap-around on overflow, trailing text ignored).
 *
 * Every parser returns the exact 64-bit result as a bigint, how many characters it
 * consumed (C's `endptr - nptr`, 0 when no number was found), and whether C would set
 * errno to ERANGE. Callers apply their own rule to those three, as libiio does: e.g.
 * `end === 0 || erange` → EINVAL. test/unit/cnumber.test.ts checks every function
 * against the same calls compiled with gcc.
 */

/** What a C `strto*` call returns. */
export interface CIntResult {
  /** The value C returns (saturated on overflow; wrapped for a negated unsigned). */
  readonly value: bigint;
  /** Characters consumed, C's `endptr - nptr`: 0 when nothing parsed (value 0). */
  readonly end: number;
  /** C sets errno = ERANGE (the value overflowed and was saturated). */
  readonly erange: boolean;
}

/** Bases C accepts: 0 (auto: `0x` hex, `0` octal, else decimal) or 2..36. */
export type CBase = number;

const LLONG_MAX = (1n << 63n) - 1n;
const LLONG_MIN = -(1n << 63n);
const ULLONG_MAX = (1n << 64n) - 1n;
const NOTHING: CIntResult = { value: 0n, end: 0, erange: false };

/** isspace() in the C locale. */
function isCSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** The value of a digit character in bases up to 36, or 99. */
function digitOf(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x5a) return c - 0x41 + 10;
  return 99;
}

interface Scanned {
  readonly negative: boolean;
  /** The magnitude of the digits read, unbounded. */
  readonly magnitude: bigint;
  readonly end: number;
}

/** The part every strto* shares: blanks, sign, base prefix, digits. */
function scan(text: string, base: CBase): Scanned | undefined {
  if (base !== 0 && (base < 2 || base > 36 || !Number.isInteger(base)))
    throw new RangeError(`C has no base ${base}`);
  let i = 0;
  const n = text.length;
  while (i < n && isCSpace(text.charCodeAt(i))) i++;
  let negative = false;
  const sign = text.charCodeAt(i);
  if (sign === 0x2b || sign === 0x2d) {
    negative = sign === 0x2d;
    i++;
  }
  // `0x` counts as a prefix only when a hex digit follows; else the `0` alone is the number.
  const zeroX =
    text.charCodeAt(i) === 0x30 &&
    (text.charCodeAt(i + 1) | 0x20) === 0x78 &&
    digitOf(text.charCodeAt(i + 2)) < 16;
  if ((base === 0 || base === 16) && zeroX) {
    base = 16;
    i += 2;
  } else if (base === 0) base = text.charCodeAt(i) === 0x30 ? 8 : 10;
  const start = i;
  // Digits accumulate in a double while exact (a few per call), in a bigint beyond.
  let small = 0;
  while (i < n && digitOf(text.charCodeAt(i)) < base && small < 2 ** 45) {
    small = small * base + digitOf(text.charCodeAt(i));
    i++;
  }
  let magnitude = BigInt(small);
  const b = BigInt(base);
  for (let d: number; i < n && (d = digitOf(text.charCodeAt(i))) < base; i++)
    magnitude = magnitude * b + BigInt(d);
  if (i === start) return undefined;
  return { negative, magnitude, end: i };
}

/** C's strtoll (and strtol on LP64): saturates at the signed 64-bit limits with ERANGE. */
export function strtoll(text: string, base: CBase = 10): CIntResult {
  const s = scan(text, base);
  if (!s) return NOTHING;
  const v = s.negative ? -s.magnitude : s.magnitude;
  if (v > LLONG_MAX) return { value: LLONG_MAX, end: s.end, erange: true };
  if (v < LLONG_MIN) return { value: LLONG_MIN, end: s.end, erange: true };
  return { value: v, end: s.end, erange: false };
}

/**
 * C's strtoull (and strtoul on LP64): a magnitude beyond 64 bits saturates at
 * ULLONG_MAX with ERANGE (even when negated); a negative number wraps modulo 2^64.
 */
export function strtoull(text: string, base: CBase = 10): CIntResult {
  const s = scan(text, base);
  if (!s) return NOTHING;
  if (s.magnitude > ULLONG_MAX) return { value: ULLONG_MAX, end: s.end, erange: true };
  const value = s.negative ? BigInt.asUintN(64, -s.magnitude) : s.magnitude;
  return { value, end: s.end, erange: false };
}

/** strtol is strtoll where `long` is 64-bit (every Linux this runs on but 32-bit arm). */
export const strtol = strtoll;
/** strtoul is strtoull where `long` is 64-bit. */
export const strtoul = strtoull;

/** C's atol: strtol(text, NULL, 10), saturated, as a number (exact below 2^53). */
export function atol(text: string): number {
  return Number(strtol(text, 10).value);
}

/** C's atoi: `(int) strtol(text, NULL, 10)`, glibc's definition (the long is truncated). */
export function atoi(text: string): number {
  return Number(BigInt.asIntN(32, strtol(text, 10).value));
}

/** A C integer converted to a 32-bit `unsigned int` (modulo 2^32), as a number. */
export function toUint32(value: bigint): number {
  return Number(BigInt.asUintN(32, value));
}
