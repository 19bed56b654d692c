/** The shapes an emulated input channel can generate. */
export const WAVEFORMS = [
  'sine',
  'square',
  'triangle',
  'sawtooth',
  'noise',
  'ramp',
  'constant',
] as const;
export type Waveform = (typeof WAVEFORMS)[number];

export interface WaveParams {
  readonly waveform: Waveform;
  /** Cycles per second (periodic shapes). */
  readonly frequency: number;
  /** Peak deviation from `offset`, in raw units. */
  readonly amplitude: number;
  /** Raw value the signal swings around (the start value of `ramp`). */
  readonly offset: number;
  /** Starting phase in cycles (0..1). */
  readonly phase?: number;
}

/** 32-bit integer hash of (n, seed): the emulator's deterministic noise source. */
function hash(n: number, seed: number): number {
  let h = (Math.imul((n >>> 0) ^ seed, 0x9e3779b1) ^ Math.floor(n / 4294967296)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * One channel's signal: a pure function of the absolute sample index, so a buffer, an
 * attribute read and an event detector looking at the same sample see the same value.
 * Parameter and rate changes re-anchor the phase so the signal stays continuous.
 */
export class Generator {
  private params: WaveParams;
  private rate: number;
  private anchorN = 0;
  private anchorPhase: number;

  constructor(
    params: WaveParams,
    rateHz: number,
    /** Representable raw values: results are clamped (ramp wraps) to this range. */
    private readonly range: { readonly min: number; readonly max: number },
    private readonly seed: number,
  ) {
    this.params = params;
    this.rate = rateHz;
    this.anchorPhase = params.phase ?? 0;
  }

  get current(): WaveParams {
    return this.params;
  }

  private phaseAt(n: number): number {
    const p = this.anchorPhase + ((n - this.anchorN) * this.params.frequency) / this.rate;
    return p - Math.floor(p);
  }

  /** Applies new parameters from sample `n` on, keeping the phase continuous. */
  update(changes: Partial<WaveParams>, n: number): void {
    this.anchorPhase = this.phaseAt(n);
    this.anchorN = n;
    this.params = { ...this.params, ...changes };
  }

  /** Follows a change of the device's sample rate from sample `n` on. */
  setRate(rateHz: number, n: number): void {
    this.anchorPhase = this.phaseAt(n);
    this.anchorN = n;
    this.rate = rateHz;
  }

  /** The raw value at absolute sample index n. */
  valueAt(n: number): number {
    const { waveform, amplitude, offset } = this.params;
    let v: number;
    switch (waveform) {
      case 'constant':
        v = offset;
        break;
      case 'ramp': {
        const span = this.range.max - this.range.min + 1;
        let r = (offset - this.range.min + n) % span;
        if (r < 0) r += span;
        return this.range.min + r;
      }
      case 'noise':
        v = offset + amplitude * ((hash(n, this.seed) / 4294967296) * 2 - 1);
        break;
      default: {
        const p = this.phaseAt(n);
        let s: number;
        if (waveform === 'sine') s = Math.sin(2 * Math.PI * p);
        else if (waveform === 'square') s = p < 0.5 ? 1 : -1;
        else if (waveform === 'triangle') s = p < 0.25 ? 4 * p : p < 0.75 ? 2 - 4 * p : 4 * p - 4;
        else s = 2 * p - 1; // sawtooth
        v = offset + amplitude * s;
      }
    }
    v = Math.round(v);
    return v < this.range.min ? this.range.min : v > this.range.max ? this.range.max : v;
  }
}
