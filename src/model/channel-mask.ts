import { IioError } from '../errors';

/**
 * Which channels of a device take part in a buffer. Bit N is the device's channel
 * number N (its position in `device.channels`), as in libiio and on iiod's wire.
 */
export class ChannelMask {
  private readonly words: Uint32Array;

  constructor(readonly size: number) {
    this.words = new Uint32Array(Math.max(1, Math.ceil(size / 32)));
  }

  /** A mask with the given channel numbers set. */
  static of(size: number, indices: Iterable<number>): ChannelMask {
    const m = new ChannelMask(size);
    for (const i of indices) m.set(i);
    return m;
  }

  private check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) {
      throw new IioError('EINVAL', `channel number ${i} is outside the mask (0..${this.size - 1})`);
    }
  }

  set(i: number): this {
    this.check(i);
    this.words[i >>> 5] |= 1 << (i & 31);
    return this;
  }

  clear(i: number): this {
    this.check(i);
    this.words[i >>> 5] &= ~(1 << (i & 31));
    return this;
  }

  has(i: number): boolean {
    return i >= 0 && i < this.size && (this.words[i >>> 5] & (1 << (i & 31))) !== 0;
  }

  /** The channel numbers set, ascending. */
  indices(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.has(i)) out.push(i);
    return out;
  }

  get count(): number {
    return this.indices().length;
  }

  isEmpty(): boolean {
    return this.words.every((w) => w === 0);
  }

  clone(): ChannelMask {
    const m = new ChannelMask(this.size);
    m.words.set(this.words);
    return m;
  }

  union(other: ChannelMask): ChannelMask {
    const m = this.clone();
    for (const i of other.indices()) if (i < m.size) m.set(i);
    return m;
  }

  /** True when every channel of `other` is also in this mask. */
  contains(other: ChannelMask): boolean {
    return other.indices().every((i) => this.has(i));
  }

  equals(other: ChannelMask): boolean {
    return this.size === other.size && this.words.every((w, i) => w === other.words[i]);
  }

  /**
   * iiod's wire form: 8 hex digits per 32-bit word, most significant word first,
   * exactly `ceil(size/32)` words (e.g. `00000003`).
   */
  toHex(): string {
    const n = Math.ceil(this.size / 32) || 1;
    let s = '';
    for (let w = n - 1; w >= 0; w--) s += this.words[w].toString(16).padStart(8, '0');
    return s;
  }

  /** Parses iiod's wire form; bits beyond `size` are rejected. */
  static fromHex(size: number, hex: string): ChannelMask {
    const text = hex.trim();
    const n = Math.ceil(size / 32) || 1;
    if (!/^[0-9a-fA-F]+$/.test(text) || text.length !== n * 8) {
      throw new IioError(
        'EINVAL',
        `bad channel mask "${hex}" for ${size} channels (want ${n * 8} hex digits)`,
      );
    }
    const m = new ChannelMask(size);
    for (let w = 0; w < n; w++) {
      const chunk = text.slice(text.length - (w + 1) * 8, text.length - w * 8);
      m.words[w] = parseInt(chunk, 16) >>> 0;
    }
    for (let i = size; i < n * 32; i++) {
      if (m.words[i >>> 5] & (1 << (i & 31))) {
        throw new IioError(
          'EINVAL',
          `channel mask "${hex}" sets channel ${i}, but the device has ${size}`,
        );
      }
    }
    return m;
  }

  toString(): string {
    return this.toHex();
  }
}
