/**
 * Demux/mux speed: samples per second of our fast paths against a naive DataView loop
 * (the obvious hand-written decoder) measured in the same run on the same block.
 */
import { compare, countPerSec, type BenchRow, type Run } from './harness';
import { computeScanLayout, type ScanLayout } from '../src/format/layout';
import { parseScanType } from '../src/format/scan-type';
import { demuxChannel, demuxChannelInto } from '../src/format/demux';
import { muxChannel } from '../src/format/mux';

export const title = 'format: demux / mux';

const SCANS = 16384;
const CHANNELS = 4;

function layoutOf(type: string): ScanLayout {
  const format = parseScanType(type);
  return computeScanLayout(
    Array.from({ length: CHANNELS }, (_, i) => ({ key: i, index: i, format })),
  );
}

function block(layout: ScanLayout): Buffer {
  const b = Buffer.alloc(SCANS * layout.scanBytes);
  for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
  return b;
}

/** One run of `f` (which handles `samples` samples of `bytes` input bytes) over about `ms`. */
function timed(samples: number, bytes: number, f: () => unknown, ms: number): Run {
  let n = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let t = t0;
  do {
    for (let i = 0; i < 5; i++) f();
    n += 5;
    t = process.hrtime.bigint();
  } while (t - t0 < BigInt(ms) * 1_000_000n);
  const cpu = process.cpuUsage(cpu0);
  return {
    bytes: n * bytes,
    count: n * samples,
    wallNs: Number(t - t0),
    cpuNs: (cpu.user + cpu.system) * 1000,
  };
}

/**
 * Ours and the reference in alternation, 9 short rounds each (medians): the machine is
 * shared, and a burst of load then hits both sides instead of one.
 */
function rounds(
  samples: number,
  bytes: number,
  ours: () => unknown,
  reference: () => unknown,
): { ours: Run[]; reference: Run[] } {
  for (let i = 0; i < 20; i++) {
    ours(); // warm up: let TurboFan optimise both
    reference();
  }
  const o: Run[] = [];
  const r: Run[] = [];
  for (let round = 0; round < 9; round++) {
    o.push({ ...timed(samples, bytes, ours, 60), round });
    r.push({ ...timed(samples, bytes, reference, 60), round });
  }
  return { ours: o, reference: r };
}

function row(
  caseName: string,
  refName: string,
  bytes: number,
  ours: () => unknown,
  reference: () => unknown,
): BenchRow {
  const m = rounds(SCANS * CHANNELS, bytes, ours, reference);
  return compare(
    caseName,
    { name: 'ours', runs: m.ours },
    { name: refName, runs: m.reference },
    { unit: 'samples/s', rate: countPerSec, note: 'CPU per GB of raw scans' },
  );
}

/**
 * The reference: a DataView loop over scans and channels, sign-extending by hand, into
 * fresh number[]s or (with `into`) into preallocated Float64Arrays.
 */
function naive(data: Buffer, layout: ScanLayout, type: string, into?: Float64Array[]): unknown {
  const f = parseScanType(type);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = Math.floor(data.length / layout.scanBytes);
  const out: number[][] = layout.slots.map(() => []);
  const le = !f.isBigEndian;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < layout.slots.length; c++) {
      let v = dv.getUint16(i * layout.scanBytes + layout.slots[c].offset, le) & ((1 << f.bits) - 1);
      if (v >= 1 << (f.bits - 1)) v -= 1 << f.bits;
      if (into) into[c][i] = v;
      else out[c].push(v);
    }
  }
  return into ?? out;
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const ref = 'naive DataView loop';
  for (const type of ['le:s16/16>>0', 'le:s12/16>>0', 'be:s16/16>>0']) {
    const layout = layoutOf(type);
    const data = block(layout);
    // Same answers, or the comparison means nothing.
    const a = naive(data, layout, type);
    const b = layout.slots.map((s) => demuxChannel(data, layout, s));
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`demux differs for ${type}`);
    const naiveArrays = (): unknown => naive(data, layout, type);
    rows.push(
      row(
        `demux ${CHANNELS}× ${type} raw → new number[]`,
        ref,
        data.length,
        () => layout.slots.map((s) => demuxChannel(data, layout, s)),
        naiveArrays,
      ),
    );
    const si = { scale: 0.001333, offset: 7 };
    rows.push(
      row(
        `demux ${CHANNELS}× ${type} SI → new number[]`,
        `${ref} (raw)`,
        data.length,
        () => layout.slots.map((s) => demuxChannel(data, layout, s, { si })),
        naiveArrays,
      ),
    );
    const outs = layout.slots.map(() => new Float64Array(SCANS));
    rows.push(
      row(
        `demux ${CHANNELS}× ${type} raw → reused Float64Array`,
        `${ref} into Float64Array`,
        data.length,
        () => layout.slots.forEach((s, i) => demuxChannelInto(data, layout, s, outs[i])),
        () => naive(data, layout, type, outs),
      ),
    );
  }
  {
    const layout = layoutOf('le:s16/16>>0');
    const data = block(layout);
    const values = Array.from({ length: SCANS }, (_, i) => ((i * 37) % 65536) - 32768);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const naiveMux = (): void => {
      for (let i = 0; i < SCANS; i++)
        for (let c = 0; c < CHANNELS; c++)
          dv.setInt16(i * layout.scanBytes + layout.slots[c].offset, values[i], true);
    };
    rows.push(
      row(
        `mux ${CHANNELS}× le:s16/16>>0 raw from number[]`,
        ref,
        data.length,
        () => layout.slots.forEach((s) => muxChannel(data, layout, s, values)),
        naiveMux,
      ),
    );
  }
  return rows;
}
