/**
 * The VM's dma_adc/dma_dac counter pattern (../shared/iio-vm/README.md): scan n, counted
 * from 0 at every buffer enable, is voltage0 = n & 0xffff and voltage1 = ~n & 0xffff, little
 * endian, 4 bytes per scan with both channels. A lost, doubled or reordered block shows as
 * a mismatch unless its size is a multiple of 65536 scans: tests use other sizes.
 */

const PERIOD = 65536;
const SCAN = 4;

/** Two periods of the pattern: any run of up to PERIOD scans is one slice of it. */
const reference = ((): Buffer => {
  const b = Buffer.alloc(2 * PERIOD * SCAN);
  for (let n = 0; n < 2 * PERIOD; n++) {
    b.writeUInt16LE(n & 0xffff, n * SCAN);
    b.writeUInt16LE(~n & 0xffff, n * SCAN + 2);
  }
  return b;
})();

/** The pattern's scans first..first+count-1 (a new Buffer). */
export function patternScans(first: number, count: number): Buffer {
  const out = Buffer.alloc(count * SCAN);
  for (let done = 0; done < count;) {
    const at = (first + done) % PERIOD;
    const n = Math.min(count - done, PERIOD);
    reference.copy(out, done * SCAN, at * SCAN, (at + n) * SCAN);
    done += n;
  }
  return out;
}

/**
 * Checks a stream of bytes against the pattern from scan `first` on, in pieces of any
 * size (a pipe cuts scans anywhere). Compares whole runs with memcmp, and counts
 * mismatching scans only where a run differs.
 */
export class PatternChecker {
  /** The next scan expected. */
  scans: number;
  mismatches = 0;
  firstMismatch = -1;
  private partial = Buffer.alloc(0);

  constructor(first = 0) {
    this.scans = first;
  }

  get bytes(): number {
    return this.scans * SCAN + this.partial.length;
  }

  check(chunk: Uint8Array): void {
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.partial.length) {
      data = Buffer.concat([this.partial, data]);
      this.partial = Buffer.alloc(0);
    }
    const whole = data.length - (data.length % SCAN);
    if (whole < data.length) this.partial = Buffer.from(data.subarray(whole));
    for (let off = 0; off < whole;) {
      const at = this.scans % PERIOD;
      const n = Math.min((whole - off) / SCAN, PERIOD);
      const want = reference.subarray(at * SCAN, (at + n) * SCAN);
      const got = data.subarray(off, off + n * SCAN);
      if (!got.equals(want)) {
        for (let i = 0; i < n; i++) {
          if (got.readUInt32LE(i * SCAN) !== want.readUInt32LE(i * SCAN)) {
            if (this.firstMismatch < 0) this.firstMismatch = this.scans + i;
            this.mismatches++;
          }
        }
      }
      this.scans += n;
      off += n * SCAN;
    }
  }

  /** Where it stands, for assertion messages. */
  toString(): string {
    return `${this.scans} scans, ${this.mismatches} mismatches (first at ${this.firstMismatch})`;
  }
}
