/**
 * The nodes' pure helpers: chart clock, value checks against _available, channel lists,
 * rate text, per-channel encoding for iio-push (against the model's own decoding).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createContext } from '../../src/create-context';
import { parseAvailable } from '../../src/model/attr';
import { autoValue, checkAvailable } from '../../src/nodes/attr-select';
import { SampleTimeline } from '../../src/nodes/capture-message';
import { parseChannelList } from '../../src/nodes/channel-list';
import { formatRate } from '../../src/nodes/iio-capture';
import { valueText } from '../../src/nodes/iio-attr-write';
import { encodeChannels } from '../../src/nodes/iio-push';

describe('nodes: helpers', function () {
  it('places chart samples on a steady clock despite jittery arrivals', function () {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -40, max: 40 }), { minLength: 2, maxLength: 30 }),
        fc.integer({ min: 1, max: 500 }),
        (jitter, n) => {
          const t = new SampleTimeline();
          const fs = 1000;
          let prevEnd: number | undefined;
          jitter.forEach((j, k) => {
            const arrived = 1_000_000 + (k + 1) * n + j;
            const { startMs, dtMs } = t.place(n, 0, arrived, fs, 0);
            assert.equal(dtMs, 1);
            if (prevEnd !== undefined) assert.ok(Math.abs(startMs - prevEnd) < 1e-6);
            prevEnd = startMs + n * dtMs;
          });
        },
      ),
    );
  });

  it('re-anchors the chart clock after a long gap, and skips lost scans', function () {
    const t = new SampleTimeline();
    const a = t.place(100, 0, 10_000, 100, 0);
    const b = t.place(100, 50, 11_500, 100, 0);
    assert.equal(b.startMs, a.startMs + 150 * 10);
    const c = t.place(100, 0, 60_000, 100, 0);
    assert.equal(c.startMs + 100 * c.dtMs, 60_000);
  });

  it('checks values against _available lists and ranges', function () {
    const list = parseAvailable('100 200 500 1000');
    assert.equal(checkAvailable('500', list), undefined);
    assert.equal(checkAvailable('500.0', list), undefined);
    assert.match(checkAvailable('300', list) ?? '', /not one of: 100 200 500 1000/);
    const range = parseAvailable('[0 5 100]');
    assert.equal(checkAvailable('25', range), undefined);
    assert.match(checkAvailable('27', range) ?? '', /step 5/);
    assert.match(checkAvailable('105', range) ?? '', /outside/);
    assert.match(checkAvailable('abc', range) ?? '', /not a number/);
    assert.equal(checkAvailable('anything', parseAvailable('')), undefined);
  });

  it('turns values into attribute text and back', function () {
    assert.equal(valueText(true), '1');
    assert.equal(valueText(12.5), '12.5');
    assert.equal(valueText('sine'), 'sine');
    assert.throws(() => valueText({}), /EINVAL.*object/);
    assert.throws(() => valueText(null), /EINVAL.*null/);
    assert.equal(autoValue(' 42\n'), 42);
    assert.equal(autoValue('0x1f'), 31);
    assert.equal(autoValue('1 2 3'), '1 2 3');
    assert.equal(autoValue('sine'), 'sine');
  });

  it('parses channel lists and formats rates', function () {
    assert.deepEqual(parseChannelList('voltage0, voltage1 voltage0'), ['voltage0', 'voltage1']);
    assert.deepEqual(parseChannelList(['a', ' b ']), ['a', 'b']);
    assert.deepEqual(parseChannelList(undefined), []);
    assert.equal(formatRate(999), '999 S/s');
    assert.equal(formatRate(12345), '12.3 kS/s');
    assert.equal(formatRate(2.5e6), '2.50 MS/s');
  });

  it('packs channel arrays into scans the model decodes back (emu: DAC layout)', async function () {
    const ctx = await createContext('emu:');
    try {
      const dac = ctx.device('iio:device1');
      const buf = await dac.createBuffer(4, { isOutput: true, channels: ['voltage0', 'voltage1'] });
      const v0 = [0, 1, -1, 32767, -32768];
      const v1 = [5, 6, 7, 8, 9];
      const data = encodeChannels(buf, { voltage0: v0, voltage1: v1 });
      assert.equal(data.length, 5 * buf.scanBytes);
      assert.deepEqual(buf.channelData('voltage0', { data }), v0);
      assert.deepEqual(buf.channelData('voltage1', { data }), v1);
      // SI values convert back: raw = value / scale - offset.
      const scale = 0.5;
      const si = encodeChannels(
        buf,
        { voltage0: [10, -10], voltage1: [0, 1] },
        new Map([
          [buf.channels[0].number, { scale, offset: 0 }],
          [buf.channels[1].number, { scale: 1, offset: 2 }],
        ]),
      );
      assert.deepEqual(buf.channelData('voltage0', { data: si }), [20, -20]);
      assert.deepEqual(buf.channelData('voltage1', { data: si }), [-2, -1]);
      assert.throws(() => encodeChannels(buf, { voltage0: [1] }), /voltage1/);
      assert.throws(
        () => encodeChannels(buf, { voltage0: [1, 2], voltage1: [1] }),
        /differ in length/,
      );
      assert.throws(
        () => encodeChannels(buf, { voltage0: [NaN], voltage1: [1] }),
        /not a finite number/,
      );
      await buf.close();
    } finally {
      await ctx.close();
    }
  });
});
