/**
 * The strongest frequency of a block of samples, by a plain DFT over every bin (no FFT
 * library: the tests must not depend on the code under test, and N is small).
 * Complex input (I and Q): the signed frequency in (-rate/2, rate/2]. Real input (no Q):
 * the strongest bin in (0, rate/2], the DC bin left out.
 */
export function peakFrequency(
  i: readonly number[],
  q: readonly number[] | undefined,
  rate: number,
): number {
  const n = i.length;
  let best = -1;
  let bestK = 0;
  const kMax = q ? n : Math.floor(n / 2) + 1;
  for (let k = q ? 0 : 1; k < kMax; k++) {
    let re = 0;
    let im = 0;
    for (let t = 0; t < n; t++) {
      const a = (-2 * Math.PI * k * t) / n;
      const c = Math.cos(a);
      const s = Math.sin(a);
      const qi = q ? q[t] : 0;
      re += i[t] * c - qi * s;
      im += i[t] * s + qi * c;
    }
    const m = re * re + im * im;
    if (m > best) {
      best = m;
      bestK = k;
    }
  }
  const signed = q && bestK > n / 2 ? bestK - n : bestK;
  return (signed * rate) / n;
}
