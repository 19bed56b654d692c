import assert from 'node:assert/strict';
import { parseScanType } from '../../src/format/scan-type';
import { computeScanLayout } from '../../src/format/layout';
import type { Channel } from '../../src/model/channel';
import { DemuxPlan } from '../../src/server/demux';

// The server's per-reader demux: the kernel's layout for the reader's channels alone,
// every byte either the channel's or a zero (layouts worked out by hand below).

const s16 = parseScanType('le:s16/16>>0');
const s64 = parseScanType('le:s64/64>>0');
const ch = (number: number, index: number, ts = false): Channel =>
  ({
    number,
    index,
    format: ts ? s64 : s16,
    type: ts ? 'timestamp' : 'voltage',
  }) as unknown as Channel;
const v = [0, 1, 2, 3].map((i) => ch(i, i));
const ts = ch(4, 4, true);

// Source: voltage0..3 at 0, 2, 4, 6 and the timestamp at 8: 16 bytes per scan.
const source = computeScanLayout(
  [...v, ts].map((c) => ({
    key: c.number,
    index: c.index,
    format: c.format!,
    isTimestamp: c.type === 'timestamp',
  })),
);

function block(scans: number): Buffer {
  const b = Buffer.alloc(scans * 16);
  for (let i = 0; i < b.length; i++) b[i] = (i % 251) + 1; // never 0
  return b;
}

describe('server DemuxPlan', () => {
  it('voltage1 + timestamp: 2 bytes, 6 of padding (zeros), 8 of timestamp', () => {
    const plan = new DemuxPlan(source, [v[1], ts]);
    assert.equal(plan.scanBytes, 16);
    assert.equal(plan.identity, false);
    // Dirty the allocator's memory first (a small Buffer is a slice of Node's shared pool,
    // whose unused rest comes next): padding must be zeroed, not left over.
    new Uint8Array(Buffer.allocUnsafe(1).buffer).fill(0xee);
    const src = block(3);
    const out = plan.apply(src);
    for (let i = 0; i < 3; i++) {
      const o = i * 16;
      assert.deepEqual([...out.subarray(o, o + 2)], [...src.subarray(o + 2, o + 4)]);
      assert.deepEqual([...out.subarray(o + 2, o + 8)], [0, 0, 0, 0, 0, 0]);
      assert.deepEqual([...out.subarray(o + 8, o + 16)], [...src.subarray(o + 8, o + 16)]);
    }
  });

  it('voltage2 + voltage3: 4 bytes per scan, copied from offsets 4..7', () => {
    const plan = new DemuxPlan(source, [v[2], v[3]]);
    assert.equal(plan.scanBytes, 4);
    const src = block(5);
    const out = plan.apply(src);
    assert.equal(out.length, 20);
    for (let i = 0; i < 5; i++)
      assert.deepEqual(
        [...out.subarray(i * 4, i * 4 + 4)],
        [...src.subarray(i * 16 + 4, i * 16 + 8)],
      );
  });

  it('every channel: the same Buffer, no copy', () => {
    const plan = new DemuxPlan(source, [...v, ts]);
    assert.equal(plan.identity, true);
    const src = block(2);
    assert.equal(plan.apply(src), src);
  });
});
