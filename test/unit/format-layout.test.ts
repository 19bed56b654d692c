import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IioError } from '../../src/errors';
import { computeScanLayout, kernelAlign, type LayoutInput } from '../../src/format/layout';
import { parseScanType } from '../../src/format/scan-type';
import { deviceArb } from './format-arbitraries';
import { refKernelAlign, refLayout, refTypeString, type RefElement } from './format-reference';

function inputs(elements: readonly RefElement[]): LayoutInput[] {
  return elements.map((e) => ({
    key: e.key,
    index: e.index,
    format: parseScanType(refTypeString(e.format)),
    isTimestamp: e.isTimestamp,
  }));
}

function layoutOf(types: string[], timestampLast = false): ReturnType<typeof computeScanLayout> {
  return computeScanLayout(
    types.map((t, i) => ({
      key: i,
      index: i,
      format: parseScanType(t),
      isTimestamp: timestampLast && i === types.length - 1,
    })),
  );
}

describe('format: computeScanLayout', () => {
  it('lays out the real iio_dummy scan: voltage0 + accel_x + timestamp', () => {
    const l = computeScanLayout([
      { key: 0, index: 0, format: parseScanType('le:u13/16>>0') },
      { key: 3, index: 3, format: parseScanType('le:s16/16>>0') },
      { key: 4, index: 4, format: parseScanType('le:s64/64>>0'), isTimestamp: true },
    ]);
    assert.deepEqual(
      l.slots.map((s) => s.offset),
      [0, 2, 8],
    );
    assert.equal(l.scanBytes, 16);
  });

  it('lays out all four dummy channels and the timestamp', () => {
    const l = layoutOf(
      ['le:u13/16>>0', 'le:s12/16>>0', 'le:s11/16>>0', 'le:s16/16>>0', 'le:s64/64>>0'],
      true,
    );
    assert.deepEqual(
      l.slots.map((s) => s.offset),
      [0, 2, 4, 6, 8],
    );
    assert.equal(l.scanBytes, 16);
  });

  it('matches the kernel documentation example u16,u32,u32,u64', () => {
    const l = layoutOf(['le:u16/16>>0', 'le:u32/32>>0', 'le:u32/32>>0', 'le:u64/64>>0']);
    assert.deepEqual(
      l.slots.map((s) => s.offset),
      [0, 4, 8, 16],
    );
    assert.equal(l.scanBytes, 24);
  });

  it('orders by scan index, not by input order, and pads to the largest element', () => {
    const l = computeScanLayout([
      { key: 7, index: 9, format: parseScanType('le:u8/8>>0') },
      { key: 1, index: 2, format: parseScanType('le:u32/32>>0') },
    ]);
    assert.deepEqual(
      l.slots.map((s) => [s.key, s.offset]),
      [
        [1, 0],
        [7, 4],
      ],
    );
    assert.equal(l.scanBytes, 8);
  });

  it('shares storage between channels with the same scan index (libiio rule)', () => {
    const l = computeScanLayout([
      { key: 0, index: 0, format: parseScanType('le:s16/16>>0') },
      { key: 1, index: 1, format: parseScanType('le:s16/16>>0') },
      { key: 2, index: 1, format: parseScanType('le:u16/16>>0') },
      { key: 3, index: 2, format: parseScanType('le:s16/16>>0') },
    ]);
    assert.deepEqual(
      l.slots.map((s) => s.offset),
      [0, 2, 2, 4],
    );
    assert.equal(l.scanBytes, 6);
  });

  it('aligns repeated elements to their whole size, as the kernel does', () => {
    // u8 then u16X2 (4 bytes): the kernel aligns to 4; libiio's iio_buffer_first to 2.
    const a = layoutOf(['le:u8/8>>0', 'le:u16/16X2>>0']);
    assert.deepEqual(
      a.slots.map((s) => s.offset),
      [0, 4],
    );
    assert.equal(a.scanBytes, 8);
    // Sizes that are not powers of two follow the kernel's bit-mask ALIGN:
    // ALIGN(1, 6) = 2; ALIGN(8, 6) = 8.
    const b = layoutOf(['le:u8/8>>0', 'le:u16/16X3>>0']);
    assert.deepEqual(
      b.slots.map((s) => s.offset),
      [0, 2],
    );
    assert.equal(b.scanBytes, 8);
    // ALIGN(6, 6) = 10, ALIGN(16, 6) = 16.
    const c = layoutOf(['le:u16/16X3>>0', 'le:u16/16X3>>0']);
    assert.deepEqual(
      c.slots.map((s) => s.offset),
      [0, 10],
    );
    assert.equal(c.scanBytes, 16);
  });

  it('puts the timestamp in the last 8 bytes, where drivers write it', () => {
    // u32X3 (12 bytes) + timestamp: aligned place 16, scan ALIGN(24, 12) = 32, so the
    // kernel's ((s64 *)scan)[32 / 8 - 1] is at 24.
    const a = layoutOf(['le:u32/32X3>>0', 'le:s64/64>>0'], true);
    assert.deepEqual(
      a.slots.map((s) => s.offset),
      [0, 24],
    );
    assert.equal(a.scanBytes, 32);
    // u64X2 (16 bytes) + timestamp: 16..24, padded to 32, written at 24.
    const b = layoutOf(['le:u64/64X2>>0', 'le:s64/64>>0'], true);
    assert.deepEqual(
      b.slots.map((s) => s.offset),
      [0, 24],
    );
    // Without the flag the same element is placed by index.
    const c = layoutOf(['le:u64/64X2>>0', 'le:s64/64>>0'], false);
    assert.deepEqual(
      c.slots.map((s) => s.offset),
      [0, 16],
    );
    // A timestamp whose index is not the highest still goes last.
    const d = computeScanLayout([
      { key: 0, index: 0, format: parseScanType('le:s64/64>>0'), isTimestamp: true },
      { key: 1, index: 1, format: parseScanType('le:s16/16>>0') },
    ]);
    assert.deepEqual(
      d.slots.map((s) => [s.key, s.offset]),
      [
        [1, 0],
        [0, 8],
      ],
    );
  });

  it('kernelAlign is the kernel bit mask (checked bit by bit)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1 << 24 }),
        fc.integer({ min: 1, max: 4096 }),
        (x, a) => {
          assert.equal(kernelAlign(x, a), refKernelAlign(x, a));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('matches the reference walk for random devices and channel subsets', () => {
    fc.assert(
      fc.property(deviceArb, ({ enabled }) => {
        const got = computeScanLayout(inputs(enabled));
        const want = refLayout(enabled);
        assert.equal(got.scanBytes, want.scanBytes);
        assert.deepEqual(
          got.slots.map((s) => ({ key: s.key, offset: s.offset })),
          want.slots,
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('with power-of-two elements: naturally aligned, no overlap, tight, padded', () => {
    fc.assert(
      fc.property(deviceArb, ({ enabled }) => {
        const got = computeScanLayout(inputs(enabled));
        const pow2 = (n: number): boolean => (n & (n - 1)) === 0;
        fc.pre(got.slots.every((s) => pow2(s.bytes)));
        let end = 0;
        let largest = 0;
        let prevIndex = -1;
        for (const s of got.slots) {
          if (s.index === prevIndex) continue;
          assert.equal(s.offset % s.bytes, 0, 'aligned to its own size');
          assert.ok(s.offset >= end, 'no overlap');
          if (enabled.find((e) => e.key === s.key)?.isTimestamp) {
            assert.equal(s.offset + s.bytes, got.scanBytes, 'timestamp in the last bytes');
          } else {
            assert.ok(s.offset - end < s.bytes, 'no gap larger than the alignment needs');
          }
          end = s.offset + s.bytes;
          largest = Math.max(largest, s.bytes);
          prevIndex = s.index;
        }
        assert.equal(got.scanBytes % largest, 0);
        assert.ok(got.scanBytes >= end && got.scanBytes - end < largest, 'tight padding');
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses elements without a scan index or larger than their shared storage', () => {
    assert.throws(
      () => computeScanLayout([{ key: 5, index: -1, format: parseScanType('le:s16/16') }]),
      (e: unknown) => e instanceof IioError && e.code === 'EINVAL' && /element 5/.test(e.message),
    );
    assert.deepEqual(computeScanLayout([]), { slots: [], scanBytes: 0 });
    assert.throws(
      () =>
        computeScanLayout([
          { key: 1, index: 3, format: parseScanType('le:s16/16') },
          { key: 2, index: 3, format: parseScanType('le:s32/32') },
        ]),
      (e: unknown) =>
        e instanceof IioError &&
        e.code === 'EINVAL' &&
        /element 2 \(4 bytes\) shares scan index 3 with element 1/.test(e.message),
    );
  });
});
