import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IioError } from '../../src/errors';
import { demuxAll, demuxChannel, demuxChannelInto } from '../../src/format/demux';
import { computeScanLayout, type ScanLayout, type ScanSlot } from '../../src/format/layout';
import { muxChannel } from '../../src/format/mux';
import { parseScanType } from '../../src/format/scan-type';
import { deviceArb } from './format-arbitraries';
import {
  refDecode,
  refEncode,
  refLayout,
  refTypeString,
  refValueBits,
  type RefElement,
  type RefFormat,
} from './format-reference';

function layoutFor(enabled: readonly RefElement[]): ScanLayout {
  return computeScanLayout(
    enabled.map((e) => ({
      key: e.key,
      index: e.index,
      format: parseScanType(refTypeString(e.format)),
      isTimestamp: e.isTimestamp,
    })),
  );
}

/** A random device, a block of random scans placed at a random (mis)alignment. */
const blockArb = deviceArb.chain(({ enabled }) => {
  const ref = refLayout(enabled);
  return fc.record({
    enabled: fc.constant(enabled),
    scans: fc.integer({ min: 0, max: 9 }),
    misalign: fc.integer({ min: 0, max: 7 }),
    seed: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    extra: fc.integer({ min: 0, max: Math.max(0, ref.scanBytes - 1) }),
    repeatPick: fc.array(fc.nat(), { minLength: 10, maxLength: 10 }),
    scale: fc.oneof(fc.constant(1), fc.double({ min: -1e3, max: 1e3, noNaN: true })),
    offset: fc.oneof(fc.constant(0), fc.double({ min: -1e6, max: 1e6, noNaN: true })),
  });
});

/** `scans` whole scans of pseudo-random bytes (plus a partial one) at byte `misalign`. */
function makeBlock(
  scanBytes: number,
  scans: number,
  extra: number,
  misalign: number,
  seed: Uint8Array,
): Uint8Array {
  const len = scans * scanBytes + extra;
  const backing = new Uint8Array(len + misalign + 8);
  for (let i = 0; i < backing.length; i++) backing[i] = seed[i % seed.length] ^ ((i * 151) & 0xff);
  return backing.subarray(misalign, misalign + len);
}

function refValues(
  data: Uint8Array,
  scanBytes: number,
  offset: number,
  f: RefFormat,
  r: number,
  scans: number,
): bigint[] {
  const size = f.storage / 8;
  const out: bigint[] = [];
  for (let i = 0; i < scans; i++) {
    const at = i * scanBytes + offset + r * size;
    out.push(refDecode([...data.subarray(at, at + size)], f));
  }
  return out;
}

describe('format: demuxChannel / demuxChannelInto / muxChannel', () => {
  it('demux matches the reference on random devices, subsets, alignments and scales', () => {
    fc.assert(
      fc.property(blockArb, (c) => {
        const layout = layoutFor(c.enabled);
        const ref = refLayout(c.enabled);
        const data = makeBlock(layout.scanBytes, c.scans, c.extra, c.misalign, c.seed);
        layout.slots.forEach((slot, k) => {
          const e = c.enabled.find((x) => x.key === slot.key)!;
          const r = c.repeatPick[k % 10] % e.format.repeat;
          const offset = ref.slots.find((s) => s.key === slot.key)!.offset;
          const want = refValues(data, layout.scanBytes, offset, e.format, r, c.scans);
          const wide = refValueBits(e.format) > 53;
          // raw
          const raw = demuxChannel(data, layout, slot, { repeatIndex: r });
          assert.deepEqual(raw, wide ? want : want.map(Number));
          // SI, exactly (raw + offset) * scale on the correctly rounded raw value
          const si = { scale: c.scale, offset: c.offset };
          const wantSI = want.map((v) => (Number(v) + si.offset) * si.scale);
          assert.deepEqual(demuxChannel(data, layout, slot, { repeatIndex: r, si }), wantSI);
          // into a typed array, raw and SI
          const f64 = new Float64Array(c.scans + 2).fill(-0.5);
          assert.equal(demuxChannelInto(data, layout, slot, f64, { repeatIndex: r }), c.scans);
          assert.deepEqual([...f64.subarray(0, c.scans)], want.map(Number));
          assert.deepEqual([...f64.subarray(c.scans)], [-0.5, -0.5]);
          demuxChannelInto(data, layout, slot, f64, { repeatIndex: r, si });
          assert.deepEqual([...f64.subarray(0, c.scans)], wantSI);
        });
      }),
      { numRuns: 1500 },
    );
  });

  it('mux writes the reference bytes of rounded, saturated values and nothing else', () => {
    fc.assert(
      fc.property(
        blockArb.chain((c) =>
          fc.record({
            c: fc.constant(c),
            values: fc.array(
              fc.oneof(
                fc.integer({ min: -70000, max: 70000 }),
                fc.double({ min: -1e20, max: 1e20, noNaN: true }),
                fc.constantFrom(Infinity, -Infinity, 0.5, -0.5, 2.5, -2.5, 2 ** 40, -(2 ** 40)),
                fc.bigInt({ min: -(1n << 80n), max: 1n << 80n }),
              ),
              { minLength: c.scans, maxLength: c.scans },
            ),
            useSI: fc.boolean(),
            first: fc.integer({ min: 0, max: 2 }),
          }),
        ),
        ({ c, values, useSI, first }) => {
          const layout = layoutFor(c.enabled);
          const ref = refLayout(c.enabled);
          const data = makeBlock(layout.scanBytes, c.scans + first, 0, c.misalign, c.seed);
          layout.slots.forEach((slot, k) => {
            const e = c.enabled.find((x) => x.key === slot.key)!;
            const f = e.format;
            const r = c.repeatPick[k % 10] % f.repeat;
            const si = useSI && c.scale !== 0 ? { scale: c.scale, offset: c.offset } : undefined;
            const before = Uint8Array.from(data);
            muxChannel(data, layout, slot, values, { repeatIndex: r, si, firstScan: first });
            const expected = Uint8Array.from(before);
            const vb = BigInt(refValueBits(f));
            const min = f.signed ? -(1n << (vb - 1n)) : 0n;
            const max = f.signed ? (1n << (vb - 1n)) - 1n : (1n << vb) - 1n;
            const size = f.storage / 8;
            const offset = ref.slots.find((s) => s.key === slot.key)!.offset;
            values.forEach((x, i) => {
              let raw: bigint;
              const target = si
                ? Number(x) / si.scale - si.offset
                : typeof x === 'bigint'
                  ? undefined
                  : x;
              if (target === undefined) raw = x as bigint;
              else if (target === Infinity) raw = max;
              else if (target === -Infinity) raw = min;
              else raw = BigInt(Math.round(target));
              if (raw < min) raw = min;
              if (raw > max) raw = max;
              const at = (first + i) * layout.scanBytes + offset + r * size;
              expected.set(refEncode(raw, f), at);
            });
            assert.deepEqual([...data], [...expected], `slot ${slot.key} ${refTypeString(f)}`);
          });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('demux(mux(v)) gives v back for in-range values', () => {
    const layout = computeScanLayout([
      { key: 0, index: 0, format: parseScanType('be:s12/16>>4') },
      { key: 1, index: 1, format: parseScanType('le:u24/32X3>>8') },
      { key: 2, index: 2, format: parseScanType('be:s64/64>>0') },
      { key: 3, index: 3, format: parseScanType('le:s48/64>>16') },
    ]);
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: -2048, max: 2047 }),
            fc.integer({ min: 0, max: 2 ** 24 - 1 }),
            fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
            fc.integer({ min: -(2 ** 47), max: 2 ** 47 - 1 }),
          ),
          { maxLength: 20 },
        ),
        (rows) => {
          const data = new Uint8Array(rows.length * layout.scanBytes);
          const cols = [0, 1, 2, 3].map((j) => rows.map((row) => row[j]));
          layout.slots.forEach((s, j) =>
            muxChannel(data, layout, s, cols[j], { repeatIndex: j === 1 ? 2 : 0 }),
          );
          layout.slots.forEach((s, j) =>
            assert.deepEqual(
              demuxChannel(data, layout, s, { repeatIndex: j === 1 ? 2 : 0 }),
              cols[j],
            ),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decodes the exact bytes of a real iio_dummy capture', () => {
    // voltage0 + accel_x + timestamp, as read from /dev/iio:device0 (6.1 and 6.12).
    const scan = Buffer.from('0700580100000000' + '5c8882316d28ea18', 'hex');
    const data = Buffer.concat([scan, scan]);
    const layout = computeScanLayout([
      { key: 0, index: 0, format: parseScanType('le:u13/16>>0') },
      { key: 3, index: 3, format: parseScanType('le:s16/16>>0') },
      { key: 4, index: 4, format: parseScanType('le:s64/64>>0'), isTimestamp: true },
    ]);
    assert.equal(layout.scanBytes, 16);
    const [v0, accel, ts] = layout.slots;
    assert.deepEqual(demuxChannel(data, layout, v0), [7, 7]);
    assert.deepEqual(demuxChannel(data, layout, accel), [344, 344]);
    assert.deepEqual(demuxChannel(data, layout, ts), [
      data.readBigInt64LE(8),
      data.readBigInt64LE(24),
    ]);
    // SI for voltage0: (raw + offset 7) * scale 0.001333
    assert.deepEqual(demuxChannel(data, layout, v0, { si: { scale: 0.001333, offset: 7 } }), [
      14 * 0.001333,
      14 * 0.001333,
    ]);
  });

  it('decodes all four dummy channels: 7, -33, -2, 344', () => {
    const types = ['le:u13/16>>0', 'le:s12/16>>0', 'le:s11/16>>0', 'le:s16/16>>0'];
    const layout = computeScanLayout([
      ...types.map((t, i) => ({ key: i, index: i, format: parseScanType(t) })),
      { key: 4, index: 4, format: parseScanType('le:s64/64>>0'), isTimestamp: true },
    ]);
    const scan = Buffer.from('0700dffffeff5801' + '0011223344556677', 'hex');
    const all = demuxAll(Buffer.concat([scan, scan, scan]), layout);
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => all.get(k)),
      [
        [7, 7, 7],
        [-33, -33, -33],
        [-2, -2, -2],
        [344, 344, 344],
      ],
    );
    assert.deepEqual(all.get(4), [0x7766554433221100n, 0x7766554433221100n, 0x7766554433221100n]);
  });

  it('refuses bad input before writing anything', () => {
    const layout = computeScanLayout([
      { key: 0, index: 0, format: parseScanType('le:s16/16X2>>0') },
    ]);
    const slot: ScanSlot = layout.slots[0];
    const data = new Uint8Array(4 * layout.scanBytes).fill(0xaa);
    const isErr = (re: RegExp) => (e: unknown) =>
      e instanceof IioError && e.code === 'EINVAL' && re.test(e.message);
    assert.throws(() => muxChannel(data, layout, slot, [1, 2, NaN]), isErr(/value 2 is NaN/));
    assert.throws(() => muxChannel(data, layout, slot, [1, 2, 3, 4, 5]), isErr(/5 values/));
    assert.throws(
      () => muxChannel(data, layout, slot, [1], { firstScan: 4 }),
      isErr(/from scan 4/),
    );
    assert.throws(() => muxChannel(data, layout, slot, [1], { repeatIndex: 2 }), isErr(/repeat/));
    assert.throws(
      () => muxChannel(data, layout, slot, [1], { si: { scale: 0, offset: 0 } }),
      isErr(/cannot be inverted/),
    );
    assert.ok(
      data.every((b) => b === 0xaa),
      'nothing written',
    );
    assert.throws(() => demuxChannel(data, layout, slot, { repeatIndex: -1 }), isErr(/repeat/));
    assert.deepEqual(demuxChannel(new Uint8Array(3), layout, slot), []);
  });
});
