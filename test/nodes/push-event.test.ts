/**
 * iio-push (the emulated DAC, looped back into the ADC) and iio-event (the emulated
 * accelerometer's threshold events) through the real Node-RED 4 runtime.
 */
import assert from 'node:assert/strict';
import type { IioContextNode } from '../../src/nodes/common';
import {
  IIO_NODES,
  coreNode,
  helper,
  loadFlow,
  nextMessages,
  node,
  type FlowItem,
  type TestMsg,
} from './helpers';

const CATCH = coreNode('common/25-catch.js');
const ADC = 'iio:device0';
const DAC = 'iio:device1';
const ACCEL = 'iio:device2';

const ctxNode = (id = 'ctx'): FlowItem => ({ id, type: 'iio-context', uri: 'emu:', reconnect: 0 });

/** Captures ADC voltage0/1 raw values until `pred` holds for one block (or gives up). */
async function captureUntil(
  pred: (v0: number[], v1: number[]) => boolean,
  blocks = 40,
): Promise<{ v0: number[]; v1: number[] } | undefined> {
  for (let i = 0; i < blocks; i++) {
    const [m] = await nextMessages('adcout', 1, 10000);
    const p = m.payload as Record<string, number[]>;
    if (pred(p.voltage0, p.voltage1)) return { v0: p.voltage0, v1: p.voltage1 };
  }
  return undefined;
}

describe('nodes: iio-push and iio-event on emu:', function () {
  afterEach(() => helper.unload());

  it('plays a cyclic waveform from channel arrays: the looped-back ADC reads it', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      {
        id: 'push',
        type: 'iio-push',
        context: 'ctx',
        device: DAC,
        cyclic: true,
        values: 'raw',
        wires: [['pushed']],
      },
      {
        id: 'cap',
        type: 'iio-capture',
        context: 'ctx',
        device: ADC,
        channels: 'voltage0,voltage1',
        samples: 50,
        output: 'channels',
        wires: [['adcout']],
      },
      { id: 'pushed', type: 'helper' },
      { id: 'adcout', type: 'helper' },
    ]);
    const pattern0 = [1000, 2000, 3000, 4000, 5000];
    const pattern1 = [-7, -8, -9, -10, -11];
    const done = nextMessages('pushed', 1);
    helper.getNode('push').receive({ payload: { voltage0: pattern0, voltage1: pattern1 } });
    const [ack] = await done;
    assert.equal((ack.iio as { samples: number }).samples, 5);
    const seen = await captureUntil(
      (v0, v1) => v0.every((v) => pattern0.includes(v)) && v1.every((v) => pattern1.includes(v)),
    );
    assert.ok(seen, 'the ADC reads the pushed waveform within 40 blocks');
    // Consecutive samples follow the pattern's order (cyclic, same clock).
    const i0 = pattern0.indexOf(seen.v0[0]);
    seen.v0.forEach((v, k) => assert.equal(v, pattern0[(i0 + k) % pattern0.length]));
  });

  it('pushes a raw Buffer of scans (one-shot) and passes the message on', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      {
        id: 'push',
        type: 'iio-push',
        context: 'ctx',
        device: DAC,
        samples: 100,
        wires: [['pushed']],
      },
      {
        id: 'cap',
        type: 'iio-capture',
        context: 'ctx',
        device: ADC,
        channels: 'voltage0,voltage1',
        samples: 20,
        output: 'channels',
        wires: [['adcout']],
      },
      { id: 'pushed', type: 'helper' },
      { id: 'adcout', type: 'helper' },
    ]);
    // 2 × s16 per scan (the DAC's layout): voltage0 = 321, voltage1 = -321, 2000 scans (2 s at 1 kHz).
    const scans = 2000;
    const buf = Buffer.alloc(scans * 4);
    for (let i = 0; i < scans; i++) {
      buf.writeInt16LE(321, i * 4);
      buf.writeInt16LE(-321, i * 4 + 2);
    }
    const done = nextMessages('pushed', 1);
    helper.getNode('push').receive({ payload: buf, tag: 'x' });
    const [ack] = await done;
    assert.equal(ack.tag, 'x');
    assert.equal((ack.iio as { samples: number }).samples, scans);
    const seen = await captureUntil(
      (v0, v1) => v0.every((v) => v === 321) && v1.every((v) => v === -321),
    );
    assert.ok(seen, 'the ADC reads the pushed constant');
  });

  it('sends a payload of partial scans to Catch (EINVAL) and stays usable', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode(),
        { id: 'push', type: 'iio-push', context: 'ctx', device: DAC, z: 'f', wires: [['pushed']] },
        { id: 'c', type: 'catch', z: 'f', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'pushed', type: 'helper', z: 'f' },
        { id: 'caught', type: 'helper', z: 'f' },
      ],
    );
    const caught = nextMessages('caught', 2);
    helper.getNode('push').receive({ payload: Buffer.alloc(7) });
    helper.getNode('push').receive({ payload: { voltage0: [1, 2, 3] } });
    const errs: TestMsg[] = await caught;
    assert.match(errs[0].error?.message ?? '', /EINVAL.*whole scans/);
    assert.match(errs[1].error?.message ?? '', /EINVAL.*voltage1/);
    const ok = nextMessages('pushed', 1);
    helper.getNode('push').receive({ payload: { voltage0: [1, 2], voltage1: [3, 4] } });
    const [m] = await ok;
    assert.equal((m.iio as { samples: number }).samples, 2);
  });

  it('sends one decoded message per threshold event of the accelerometer', async function () {
    this.timeout(30000);
    await loadFlow(IIO_NODES, [
      ctxNode(),
      { id: 'ev', type: 'iio-event', context: 'ctx', device: ACCEL, wires: [['out']] },
      { id: 'out', type: 'helper' },
    ]);
    const msgs = await nextMessages('out', 2, 20000);
    // Out of the box only accel_x has its thresholds enabled. Its codes, as the kernel's
    // IIO_MOD_EVENT_CODE(IIO_ACCEL, 0, IIO_MOD_X, IIO_EV_TYPE_THRESH, dir) makes them.
    const CODES: Record<string, string> = {
      rising: '0x0001010300000000',
      falling: '0x0002010300000000',
    };
    // Topics name the device by its driver name (docs/emu.md), not its probe-order id.
    const accelName = 'adxl345-emu';
    for (const m of msgs) {
      const p = m.payload as Record<string, unknown>;
      assert.equal(p.type, 'thresh');
      assert.ok(['rising', 'falling'].includes(p.direction as string));
      assert.equal(p.channelType, 'accel');
      assert.equal(p.modifier, 'x');
      assert.equal(p.channel, 'accel_x');
      assert.equal(p.code, CODES[p.direction as string]);
      assert.match(p.timestampNs as string, /^\d+$/);
      assert.ok(Math.abs((p.timestamp as number) - Date.now()) < 60000);
      // Topics name the device by its name, not by its probe-order id.
      assert.equal(m.topic, `${accelName}/${String(p.channel)}/thresh/${String(p.direction)}`);
      // JSON-safe: MQTT and the debug sidebar can carry it.
      assert.doesNotThrow(() => JSON.stringify(m.payload));
    }
  });

  /**
   * The accelerometer's x axis, made fast: a 10 Hz sine of amplitude 2458 sampled at
   * 800 Hz crosses its thresholds (+1500 rising, -1500 falling, enabled out of the box) once
   * each per period, half a period apart. So the unfiltered stream alternates rising,
   * falling every 50 ms of sample time, and a stream that keeps one direction has one
   * event per 100 ms: the spacing of the kernel timestamps shows that the filter passed
   * all of one kind and dropped all of the other.
   */
  const PERIOD_NS = 100_000_000;
  const SAMPLE_NS = 1_250_000;

  async function eventsWith(filter: Record<string, string>, count: number): Promise<TestMsg[]> {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      { id: 'ev', type: 'iio-event', context: 'ctx', device: ACCEL, wires: [['out']], ...filter },
      { id: 'out', type: 'helper' },
    ]);
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    const ctx = await cfg.handle.ready();
    const acc = ctx.device(ACCEL);
    await acc.writeAttr('sampling_frequency', 800);
    await acc.channel('accel_x').writeAttr('waveform_frequency', 10);
    // Events from before the change (sample time) are the slow signal's: left out.
    const after = BigInt(Date.now() + 20) * 1_000_000n;
    const got: TestMsg[] = [];
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${got.length}/${count} events`)), 10000);
      node('out').on('input', ((m: TestMsg) => {
        if (got.length >= count) return;
        if (BigInt((m.payload as { timestampNs: string }).timestampNs) < after) return;
        got.push(m);
        if (got.length === count) {
          clearTimeout(t);
          resolve();
        }
      }) as (arg: never) => void);
    });
    return got;
  }

  /** Each event's direction, and the sample-time gaps between consecutive ones. */
  function shape(msgs: TestMsg[]): { directions: string[]; types: string[]; gaps: number[] } {
    const p = msgs.map(
      (m) => m.payload as { direction: string; type: string; timestampNs: string },
    );
    return {
      directions: p.map((x) => x.direction),
      types: p.map((x) => x.type),
      gaps: p.slice(1).map((x, i) => Number(BigInt(x.timestampNs) - BigInt(p[i].timestampNs))),
    };
  }

  const near = (gaps: number[], ns: number): boolean =>
    gaps.every((g) => Math.abs(g - ns) <= 2 * SAMPLE_NS);

  it('passes every event when nothing is filtered: rising and falling alternate', async function () {
    this.timeout(30000);
    const s = shape(await eventsWith({}, 6));
    assert.ok(
      s.types.every((t) => t === 'thresh'),
      s.types.join(),
    );
    const first = s.directions[0];
    const other = first === 'rising' ? 'falling' : 'rising';
    assert.deepEqual(s.directions, [first, other, first, other, first, other]);
    assert.ok(near(s.gaps, PERIOD_NS / 2), `gaps ${s.gaps.join(' ')} ns`);
  });

  const FILTERS: Array<Record<string, string> & { direction: string }> = [
    { direction: 'rising' },
    { direction: 'falling' },
    { eventType: 'thresh', direction: 'rising' },
    { eventType: 'thresh', direction: 'falling' },
  ];
  for (const filter of FILTERS) {
    it(`filters events: ${JSON.stringify(filter)} passes all of those and nothing else`, async function () {
      this.timeout(30000);
      const s = shape(await eventsWith(filter, 4));
      assert.ok(
        s.directions.every((d) => d === filter.direction),
        s.directions.join(),
      );
      assert.ok(
        s.types.every((t) => t === 'thresh'),
        s.types.join(),
      );
      // One per period: none of this direction missing, none of the other let through.
      assert.ok(near(s.gaps, PERIOD_NS), `gaps ${s.gaps.join(' ')} ns`);
    });
  }

  it('filters events by type: thresh (the only type the emulator raises) passes both directions', async function () {
    this.timeout(30000);
    const s = shape(await eventsWith({ eventType: 'thresh' }, 4));
    assert.deepEqual(new Set(s.directions), new Set(['rising', 'falling']));
    assert.ok(near(s.gaps, PERIOD_NS / 2), `gaps ${s.gaps.join(' ')} ns`);
  });

  it('stops listening and closes the context on close', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      { id: 'ev', type: 'iio-event', context: 'ctx', device: ACCEL, wires: [['out']] },
      {
        id: 'push',
        type: 'iio-push',
        context: 'ctx',
        device: DAC,
        cyclic: true,
        wires: [['pushed']],
      },
      { id: 'out', type: 'helper' },
      { id: 'pushed', type: 'helper' },
    ]);
    const done = nextMessages('pushed', 1);
    helper.getNode('push').receive({ payload: { voltage0: [1, 2], voltage1: [3, 4] } });
    await done;
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    const ctx = await cfg.handle.ready();
    await helper.unload();
    assert.equal(ctx.isClosed, true);
    assert.equal(cfg.handle.userCount, 0);
  });
});
