/**
 * A small zstd compressor (RFC 8878), for the one place a peer insists on zstd: libiio
 * main's client reads a binary PRINT (the context's XML) into 64 KiB, so a larger XML
 * must arrive compressed, and Node has zstd only from 22.15. Written from the RFC, not
 * from zstd's sources: greedy LZ77 matches (a hash of 4 bytes, the last position only),
 * raw literals, and the three sequence codes with the RFC's predefined FSE
 * distributions — no Huffman, no table description. XML compresses 5-10×; the output is
 * an ordinary frame any zstd decoder reads (checked against the `zstd` tool).
 */

const MAGIC = 0xfd2fb528;
/** Largest block content (Block_Maximum_Size with a single-segment frame ≥ 128 KiB). */
const BLOCK = 128 * 1024;
const MIN_MATCH = 4;
const HASH_BITS = 16;

// RFC 8878 3.1.1.3.2.1: codes, baselines and extra bits of literal and match lengths.
const LL_BASE = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128,
  256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
];
const LL_BITS = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12,
  13, 14, 15, 16,
];
const ML_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
  29, 30, 31, 32, 33, 34, 35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051,
  4099, 8195, 16387, 32771, 65539,
];
const ML_BITS = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
  1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];
// RFC 8878 3.1.1.3.2.2: the predefined distributions (-1: "less than 1").
const LL_NORM = [
  4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
  -1, -1, -1, -1,
];
const ML_NORM = [
  1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1,
];
const OF_NORM = [
  1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1,
];

/** An FSE encoding table built from a normalized distribution (RFC 8878 4.1). */
interface FseTable {
  readonly log: number;
  readonly next: Uint16Array;
  readonly deltaBits: Int32Array;
  readonly deltaState: Int32Array;
}

function highBit(v: number): number {
  return 31 - Math.clz32(v);
}

function buildTable(norm: readonly number[], log: number): FseTable {
  const size = 1 << log;
  const symbols = new Uint8Array(size);
  let high = size - 1;
  const start: number[] = [];
  let pos = 0;
  // "Less than 1" symbols take the last cells, in symbol order.
  for (let s = 0; s < norm.length; s++) {
    start.push(pos);
    if (norm[s] === -1) {
      symbols[high--] = s;
      pos += 1;
    } else pos += norm[s];
  }
  // The others are spread with the RFC's step, skipping those cells.
  const step = (size >> 1) + (size >> 3) + 3;
  let p = 0;
  for (let s = 0; s < norm.length; s++) {
    for (let i = 0; i < norm[s]; i++) {
      symbols[p] = s;
      do p = (p + step) & (size - 1);
      while (p > high);
    }
  }
  // A symbol's states in table order; the encoder moves to them.
  const next = new Uint16Array(size);
  const cursor = [...start];
  for (let u = 0; u < size; u++) next[cursor[symbols[u]]++] = size + u;
  const deltaBits = new Int32Array(norm.length);
  const deltaState = new Int32Array(norm.length);
  let total = 0;
  for (let s = 0; s < norm.length; s++) {
    const n = norm[s];
    if (n === 0) {
      deltaBits[s] = ((log + 1) << 16) - size;
    } else if (n === -1 || n === 1) {
      deltaBits[s] = (log << 16) - size;
      deltaState[s] = total - 1;
      total += 1;
    } else {
      const maxBits = log - highBit(n - 1);
      deltaBits[s] = (maxBits << 16) - (n << maxBits);
      deltaState[s] = total - n;
      total += n;
    }
  }
  return { log, next, deltaBits, deltaState };
}

const LL_TABLE = buildTable(LL_NORM, 6);
const ML_TABLE = buildTable(ML_NORM, 6);
const OF_TABLE = buildTable(OF_NORM, 5);

/** A forward bit stream, least significant bits first (the decoder reads it backwards). */
class BitWriter {
  private readonly out: number[] = [];
  private acc = 0;
  private bits = 0;

  add(value: number, n: number): void {
    while (n > 0) {
      const k = Math.min(n, 16);
      this.acc |= (value & ((1 << k) - 1)) << this.bits;
      this.bits += k;
      value = Math.floor(value / (1 << k));
      n -= k;
      while (this.bits >= 8) {
        this.out.push(this.acc & 0xff);
        this.acc >>>= 8;
        this.bits -= 8;
      }
    }
  }

  /** The end mark (one bit set), then the last byte. */
  close(): Buffer {
    this.add(1, 1);
    if (this.bits > 0) this.out.push(this.acc & 0xff);
    return Buffer.from(this.out);
  }
}

class FseState {
  value: number;
  constructor(
    private readonly t: FseTable,
    first: number,
  ) {
    const bits = (t.deltaBits[first] + (1 << 15)) >> 16;
    const v = (bits << 16) - t.deltaBits[first];
    this.value = t.next[(v >> bits) + t.deltaState[first]];
  }
  encode(w: BitWriter, symbol: number): void {
    const bits = (this.value + this.t.deltaBits[symbol]) >> 16;
    w.add(this.value, bits);
    this.value = this.t.next[(this.value >> bits) + this.t.deltaState[symbol]];
  }
  flush(w: BitWriter): void {
    w.add(this.value, this.t.log);
  }
}

interface Sequence {
  readonly lit: number;
  readonly match: number;
  readonly offset: number;
}

function llCode(n: number): number {
  if (n < 16) return n;
  let c = 16;
  while (c + 1 < LL_BASE.length && LL_BASE[c + 1] <= n) c++;
  return c;
}

function mlCode(n: number): number {
  if (n < 35) return n - 3;
  let c = 32;
  while (c + 1 < ML_BASE.length && ML_BASE[c + 1] <= n) c++;
  return c;
}

/** The sequences section: count, modes (all predefined), then the FSE bit stream. */
function encodeSequences(seqs: readonly Sequence[]): Buffer {
  const n = seqs.length;
  let head: number[];
  if (n < 128) head = [n];
  else if (n < 0x7f00) head = [(n >> 8) + 128, n & 0xff];
  else head = [0xff, (n - 0x7f00) & 0xff, (n - 0x7f00) >> 8];
  if (!n) return Buffer.from(head);
  const codes = seqs.map((s) => ({
    ll: llCode(s.lit),
    ml: mlCode(s.match),
    // Offset_Value = offset + 3: never a repeat code (1..3).
    of: highBit(s.offset + 3),
  }));
  const w = new BitWriter();
  const extra = (i: number): void => {
    const s = seqs[i];
    const c = codes[i];
    w.add(s.lit - LL_BASE[c.ll], LL_BITS[c.ll]);
    w.add(s.match - ML_BASE[c.ml], ML_BITS[c.ml]);
    w.add(s.offset + 3 - 2 ** c.of, c.of);
  };
  // The last sequence first: the decoder reads the stream from its end.
  const last = codes[n - 1];
  const ml = new FseState(ML_TABLE, last.ml);
  const of = new FseState(OF_TABLE, last.of);
  const ll = new FseState(LL_TABLE, last.ll);
  extra(n - 1);
  for (let i = n - 2; i >= 0; i--) {
    of.encode(w, codes[i].of);
    ml.encode(w, codes[i].ml);
    ll.encode(w, codes[i].ll);
    extra(i);
  }
  ml.flush(w);
  of.flush(w);
  ll.flush(w);
  return Buffer.concat([Buffer.from([...head, 0]), w.close()]);
}

/** Raw literals with their section header (RFC 8878 3.1.1.3.1.1). */
function encodeLiterals(lits: Buffer): Buffer {
  const n = lits.length;
  let head: Buffer;
  if (n < 32) head = Buffer.from([n << 3]);
  else if (n < 4096) head = Buffer.from([((n & 0xf) << 4) | 0x4, n >> 4]);
  else head = Buffer.from([((n & 0xf) << 4) | 0xc, (n >> 4) & 0xff, n >> 12]);
  return Buffer.concat([head, lits]);
}

function blockHeader(last: boolean, type: number, size: number): Buffer {
  const v = (last ? 1 : 0) | (type << 1) | (size << 3);
  return Buffer.from([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]);
}

/** `data` as one zstd frame (content size in the header, no checksum). */
export function zstdCompress(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(9);
  head.writeUInt32LE(MAGIC, 0);
  // Single segment, 4-byte content size: no window descriptor; matches reach the start.
  head.writeUInt8(0xa0, 4);
  head.writeUInt32LE(data.length, 5);
  parts.push(head);
  const hash = new Int32Array(1 << HASH_BITS).fill(-1);
  const key = (i: number): number =>
    (Math.imul(data.readUInt32LE(i), 2654435761) >>> (32 - HASH_BITS)) & ((1 << HASH_BITS) - 1);
  if (data.length === 0) parts.push(blockHeader(true, 0, 0));
  for (let start = 0; start < data.length; start += BLOCK) {
    const end = Math.min(data.length, start + BLOCK);
    const last = end === data.length;
    const seqs: Sequence[] = [];
    const lits: Buffer[] = [];
    let anchor = start;
    let i = start;
    while (i + MIN_MATCH <= end) {
      const h = key(i);
      const cand = hash[h];
      hash[h] = i;
      if (cand >= 0 && data.readUInt32LE(cand) === data.readUInt32LE(i)) {
        let len = MIN_MATCH;
        while (i + len < end && data[cand + len] === data[i + len]) len++;
        seqs.push({ lit: i - anchor, match: len, offset: i - cand });
        lits.push(data.subarray(anchor, i));
        for (let k = i + 1; k < i + len && k + MIN_MATCH <= data.length; k += 2) hash[key(k)] = k;
        i += len;
        anchor = i;
      } else i++;
    }
    lits.push(data.subarray(anchor, end));
    const body = Buffer.concat([encodeLiterals(Buffer.concat(lits)), encodeSequences(seqs)]);
    if (body.length < end - start) parts.push(blockHeader(last, 2, body.length), body);
    else parts.push(blockHeader(last, 0, end - start), data.subarray(start, end));
  }
  return Buffer.concat(parts);
}
