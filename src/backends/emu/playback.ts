/** Samples a DAC plays, per channel number, from a start index of the DAC's clock. */
interface Segment {
  readonly start: number;
  /** Samples in one pass (the period of a cyclic segment). */
  readonly count: number;
  /** Index after the last sample played; Infinity while a cyclic segment repeats. */
  end: number;
  readonly values: ReadonlyMap<number, Float64Array>;
}

/**
 * What an emulated DAC outputs over time: the scans pushed to its buffer, laid on the
 * DAC's sample clock one after another (a FIFO that plays at the sampling rate).
 * The ADC it is looped back into reads it by sample index; played samples are kept a
 * while so an ADC block computed after the fact still sees them.
 */
export class Playback {
  private segments: Segment[] = [];
  /** Index after the last queued sample (non-cyclic data). */
  private tail = 0;
  private last = 0;

  /** Index after the last queued sample, or `nowIndex` when the FIFO has run dry. */
  endIndex(nowIndex: number): number {
    return Math.max(this.tail, nowIndex);
  }

  /** Queues `count` samples (or a cyclic pattern) after what is already queued. */
  schedule(
    values: ReadonlyMap<number, Float64Array>,
    count: number,
    cyclic: boolean,
    nowIndex: number,
  ): number {
    const start = this.endIndex(nowIndex);
    const end = cyclic ? Infinity : start + count;
    this.segments.push({ start, count, end, values });
    if (!cyclic) this.tail = end;
    return start;
  }

  /** Ends a repeating segment at `index` (its buffer was closed). */
  stopCyclic(index: number): void {
    for (const s of this.segments) if (s.end === Infinity) s.end = Math.max(s.start, index);
    this.tail = Math.max(this.tail, index);
  }

  /** The value channel `channel` plays at DAC sample `m`, undefined when nothing is played. */
  valueAt(channel: number, m: number): number | undefined {
    const segs = this.segments;
    if (!segs.length) return undefined;
    let i = this.last < segs.length ? this.last : segs.length - 1;
    // Consecutive lookups move forward; start from the last hit.
    if (segs[i].start > m) i = 0;
    for (; i < segs.length; i++) {
      const s = segs[i];
      if (m < s.start) return undefined;
      if (m < s.end) {
        this.last = i;
        const v = s.values.get(channel);
        return v ? v[(m - s.start) % s.count] : undefined;
      }
    }
    return undefined;
  }

  /** Forgets segments that ended before `index`. */
  prune(index: number): void {
    const before = this.segments.length;
    this.segments = this.segments.filter((s) => s.end > index);
    if (this.segments.length !== before) this.last = 0;
  }

  get isEmpty(): boolean {
    return this.segments.length === 0;
  }
}
