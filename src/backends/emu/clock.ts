import { performance } from 'node:perf_hooks';

/** Milliseconds on a monotonic clock (performance.now()). */
export type Millis = number;

/** Wall-clock nanoseconds of performance.now() = 0, for sample timestamps. */
const WALL_ORIGIN_NS = BigInt(Math.round(performance.timeOrigin * 1e6));

/** Monotonic now, in ms. */
export function now(): Millis {
  return performance.now();
}

/**
 * A device's sample clock: sample n (an absolute count that never goes back) happens
 * at a known time. Changing the rate re-anchors the clock at the current sample, so
 * indices stay continuous and waveforms keep their phase.
 */
export class SampleClock {
  private t0: Millis;
  private n0 = 0;

  constructor(
    private rateHz: number,
    start: Millis = now(),
  ) {
    this.t0 = start;
  }

  get rate(): number {
    return this.rateHz;
  }

  /** Changes the rate from now on. */
  setRate(rateHz: number, at: Millis = now()): void {
    if (rateHz === this.rateHz) return;
    this.n0 = this.indexAt(at);
    this.t0 = this.timeOf(this.n0);
    this.rateHz = rateHz;
  }

  /** The number of samples completed at time t (the index of the next one). */
  indexAt(t: Millis): number {
    // The epsilon keeps timeOf(n) → indexAt() exact despite rounding.
    return this.n0 + Math.floor(((t - this.t0) * this.rateHz) / 1000 + 1e-7);
  }

  /** When sample n is taken. */
  timeOf(n: number): Millis {
    return this.t0 + ((n - this.n0) * 1000) / this.rateHz;
  }

  /** Sample n's timestamp: wall-clock nanoseconds (CLOCK_REALTIME, as IIO's default). */
  timestampOf(n: number): bigint {
    return WALL_ORIGIN_NS + BigInt(Math.round(this.timeOf(n) * 1e6));
  }
}
