/**
 * A deliberately slow, independent model of the sample format, written from the kernel's
 * ABI text rather than from src/format: values are strings of '0'/'1' characters, the
 * kernel's ALIGN is done bit by bit on those strings. The property tests compare the
 * real code against it.
 */

/** The fields a scan type carries, as plain data. */
export interface RefFormat {
  be: boolean;
  signed: boolean;
  /** Upper-case sign letter. */
  upper: boolean;
  bits: number;
  storage: number;
  shift: number;
  repeat: number;
}

export function refTypeString(f: RefFormat): string {
  let sign = f.signed ? 's' : 'u';
  if (f.upper) sign = sign.toUpperCase();
  const rep = f.repeat > 1 ? `X${f.repeat}` : '';
  return `${f.be ? 'be' : 'le'}:${sign}${f.bits}/${f.storage}${rep}>>${f.shift}`;
}

/** Bits of the decoded value: realbits, or the whole shifted word when fully defined. */
export function refValueBits(f: RefFormat): number {
  const fullyDefined = f.upper || f.bits === f.storage;
  return fullyDefined ? f.storage - f.shift : f.bits;
}

function byteBits(b: number): string {
  let s = '';
  for (let i = 7; i >= 0; i--) s += (b >> i) & 1 ? '1' : '0';
  return s;
}

function stringToBigInt(bits: string): bigint {
  let v = 0n;
  for (const c of bits) v = v * 2n + (c === '1' ? 1n : 0n);
  return v;
}

/** Decodes one value from its storage bytes (in memory order). */
export function refDecode(bytes: readonly number[], f: RefFormat): bigint {
  const msbFirst = f.be ? [...bytes] : [...bytes].reverse();
  const word = msbFirst.map(byteBits).join('');
  const shifted = word.slice(0, word.length - f.shift);
  const vb = refValueBits(f);
  const value = shifted.slice(shifted.length - vb);
  const u = stringToBigInt(value);
  return f.signed && value[0] === '1' ? u - 2n ** BigInt(vb) : u;
}

/** Encodes a value (wrapped to the value bits) into storage bytes in memory order. */
export function refEncode(value: bigint, f: RefFormat): number[] {
  const vb = refValueBits(f);
  const m = 2n ** BigInt(vb);
  let v = ((value % m) + m) % m;
  let bits = '';
  for (let i = 0; i < vb; i++) {
    bits = (v % 2n === 1n ? '1' : '0') + bits;
    v /= 2n;
  }
  bits = bits + '0'.repeat(f.shift);
  bits = '0'.repeat(f.storage - bits.length) + bits;
  const bytes: number[] = [];
  for (let i = 0; i < bits.length; i += 8) bytes.push(Number(stringToBigInt(bits.slice(i, i + 8))));
  return f.be ? bytes : bytes.reverse();
}

function toBits(n: number, width: number): string {
  let s = '';
  for (let i = 0; i < width; i++) s = (Math.floor(n / 2 ** i) % 2 === 1 ? '1' : '0') + s;
  return s;
}

/** ALIGN(x, a) = (x + a - 1) AND NOT (a - 1), one character at a time. */
export function refKernelAlign(x: number, a: number): number {
  if (a <= 1) return x;
  const w = 40;
  const sum = toBits(x + a - 1, w);
  const mask = toBits(a - 1, w);
  let out = '';
  for (let i = 0; i < w; i++) out += sum[i] === '1' && mask[i] === '0' ? '1' : '0';
  return Number(stringToBigInt(out));
}

export interface RefElement {
  key: number;
  index: number;
  format: RefFormat;
  isTimestamp?: boolean;
}

export interface RefSlot {
  key: number;
  offset: number;
}

/**
 * The kernel's iio_compute_scan_bytes walk (plus libiio's shared-index rule and the
 * timestamp in the last bytes), as the kernel describes it.
 */
export function refLayout(elements: readonly RefElement[]): {
  slots: RefSlot[];
  scanBytes: number;
} {
  const normal = elements.filter((e) => !e.isTimestamp);
  const ts = elements.filter((e) => e.isTimestamp);
  const order = [
    ...normal.sort((a, b) => (a.index !== b.index ? a.index - b.index : a.key - b.key)),
    ...ts.sort((a, b) => (a.index !== b.index ? a.index - b.index : a.key - b.key)),
  ];
  const slots: RefSlot[] = [];
  let pos = 0;
  let largest = 0;
  let lastIndex = -1;
  let lastOffset = 0;
  let first = true;
  for (const e of order) {
    const size = (e.format.storage / 8) * e.format.repeat;
    if (!first && e.index === lastIndex) {
      slots.push({ key: e.key, offset: lastOffset });
      continue;
    }
    first = false;
    pos = refKernelAlign(pos, size);
    slots.push({ key: e.key, offset: pos });
    lastIndex = e.index;
    lastOffset = pos;
    pos += size;
    largest = Math.max(largest, size);
  }
  const scanBytes = refKernelAlign(pos, largest);
  const t = order.findIndex((e) => e.isTimestamp);
  if (t >= 0) {
    const size = (order[t].format.storage / 8) * order[t].format.repeat;
    const old = slots[t].offset;
    for (let i = t; i < slots.length; i++)
      if (slots[i].offset === old) slots[i] = { ...slots[i], offset: scanBytes - size };
  }
  return { slots, scanBytes };
}
