/**
 * Event attributes (thresholds, enables) from Node-RED, in the real runtime: iio-attr-read
 * and iio-attr-write with the kind `event` (on a copy of the VM's sysfs, where the files
 * are the oracle), the editor's lists, and iio-event's "set when it starts" list — which
 * arms an event that is off out of the box (emu's accelerometer y axis) and sends what a
 * driver refuses to Catch.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IioContextNode } from '../../src/nodes/common';
import type { ContextDescription } from '../../src/nodes/iio-context';
import {
  copySnapshot,
  loadSnapshot,
  snapshotNames,
  snapshotOptions,
  withSnapshotBackend,
} from '../helpers/sysfs-snapshot';
import {
  CATCH_TO_HELPER,
  coreNode,
  helper,
  IIO_NODES,
  loadFlow,
  nextMessages,
  node,
  statusSeen,
  type TestMsg,
} from './helpers';

const CATCH = coreNode('common/25-catch.js');
const SNAP = loadSnapshot(snapshotNames()[snapshotNames().length - 1]);

describe(`nodes: event attributes on local: (${SNAP.name} sysfs copy)`, function () {
  this.timeout(30000);
  const copy = copySnapshot(SNAP);
  const events = join(copy.root, 'bus', 'iio', 'devices', 'iio:device0', 'events');
  const file = (name: string): string =>
    readFileSync(join(events, name), 'utf8').replace(/\0/g, '').trim();
  after(() => copy.remove());
  afterEach(() => helper.unload());
  const run = <T>(f: () => Promise<T>): Promise<T> =>
    withSnapshotBackend(snapshotOptions(SNAP, copy.root), f);
  const ctxNode = { id: 'ctx', type: 'iio-context', uri: 'local:', reconnect: 0 };

  it('iio-attr-read reads a channel event attribute and a device one (kind "event")', async () => {
    await run(async () => {
      await loadFlow(IIO_NODES, [
        ctxNode,
        {
          id: 'ch',
          type: 'iio-attr-read',
          context: 'ctx',
          device: 'dummy0',
          channel: 'voltage0',
          kind: 'event',
          attr: 'thresh_rising_value',
          wires: [['out']],
        },
        {
          id: 'dev',
          type: 'iio-attr-read',
          context: 'ctx',
          device: 'dummy0',
          kind: 'event',
          attr: 'in_steps_change_en',
          wires: [['out2']],
        },
        { id: 'out', type: 'helper' },
        { id: 'out2', type: 'helper' },
      ]);
      const a = nextMessages('out');
      const b = nextMessages('out2');
      node('ch').receive({});
      node('dev').receive({});
      const [[m1], [m2]] = await Promise.all([a, b]);
      assert.equal(m1.payload, Number(file('in_voltage0_thresh_rising_value')));
      assert.equal(m2.payload, Number(file('in_steps_change_en')));
      assert.equal(m1.topic, 'dummy0/voltage0/thresh_rising_value');
    });
  });

  it('iio-attr-write writes them, also named by the message (msg.kind "event")', async () => {
    await run(async () => {
      await loadFlow(IIO_NODES, [
        ctxNode,
        {
          id: 'w',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'dummy0',
          channel: 'voltage0',
          kind: 'event',
          attr: 'thresh_rising_value',
          wires: [['out']],
        },
        { id: 'any', type: 'iio-attr-write', context: 'ctx', wires: [['out2']] },
        { id: 'out', type: 'helper' },
        { id: 'out2', type: 'helper' },
      ]);
      const got = nextMessages('out');
      node('w').receive({ payload: 321 });
      const [m] = await got;
      assert.equal(file('in_voltage0_thresh_rising_value'), '321');
      assert.equal((m.iio as { readBack: number }).readBack, 321);
      const got2 = nextMessages('out2');
      node('any').receive({
        device: 'dummy0',
        channel: 'activity_walking',
        kind: 'event',
        attribute: 'thresh_falling_en',
        payload: true,
      });
      await got2;
      assert.equal(file('in_activity_walking_thresh_falling_en'), '1');
    });
  });

  it('the editor lists event attributes of channels and of the device', async () => {
    await run(async () => {
      await loadFlow(IIO_NODES, [
        ctxNode,
        // a user of the context (one with none stays closed)
        { id: 'r', type: 'iio-attr-read', context: 'ctx', device: 'dummy0', attr: 'name' },
      ]);
      const cfg = helper.getNode('ctx') as unknown as IioContextNode;
      await cfg.handle.ready();
      const res = await helper
        .request()
        .get('/iio/devices')
        .query({ node: 'ctx', uri: 'local:' })
        .expect(200);
      const dummy = (res.body as ContextDescription).devices.find((d) => d.name === 'dummy0')!;
      assert.deepEqual(dummy.eventAttrs, ['in_steps_change_en']);
      const v0 = dummy.channels.find((c) => c.id === 'voltage0' && !c.isOutput)!;
      assert.deepEqual(v0.eventAttrs, ['thresh_rising_en', 'thresh_rising_value']);
    });
  });

  it('iio-event writes its settings when it starts; a refused one goes to Catch', async () => {
    await run(async () => {
      await loadFlow(
        [...IIO_NODES, CATCH],
        [
          ctxNode,
          {
            id: 'ev',
            type: 'iio-event',
            context: 'ctx',
            device: 'dummy0',
            z: 'f',
            settings: [
              { channel: 'voltage0', direction: 'in', attr: 'thresh_rising_value', value: '77' },
              { channel: 'voltage0', direction: 'in', attr: 'thresh_rising_en', value: '1' },
              // an integer attribute: refused before it is written
              { channel: 'activity_running', attr: 'thresh_rising_value', value: 'high' },
              { channel: '', attr: 'in_steps_change_en', value: '1' },
            ],
            wires: [['out']],
          },
          ...CATCH_TO_HELPER,
        ],
      );
      const caught: TestMsg[] = [];
      node('caught').on('input', ((m: TestMsg) => caught.push(m)) as (arg: never) => void);
      // the copy has no /dev node: after the settings, listening fails (ENOENT) too
      await statusSeen('ev', (s) => s.fill === 'red');
      assert.equal(file('in_voltage0_thresh_rising_value'), '77');
      assert.equal(file('in_voltage0_thresh_rising_en'), '1');
      assert.equal(file('in_steps_change_en'), '1');
      const before = file('in_activity_running_thresh_rising_value');
      assert.notEqual(before, 'high');
      // Catch's message travels through the flow: it may come after the red status
      const isRefusal = (m: TestMsg): boolean => /thresh_rising_value/.test(m.error?.message ?? '');
      for (let i = 0; i < 100 && !caught.some(isRefusal); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const refused = caught.find(isRefusal);
      assert.ok(refused, `caught: ${caught.map((m) => m.error?.message).join('\n')}`);
      assert.match(refused.error!.message, /EINVAL.*not a number/);
      assert.match(refused.error!.message, /channel activity_running/);
    });
  });

  it('a malformed settings list is a configuration error', async () => {
    await run(async () => {
      await loadFlow(IIO_NODES, [
        ctxNode,
        {
          id: 'ev',
          type: 'iio-event',
          context: 'ctx',
          device: 'dummy0',
          settings: [{ channel: 'voltage0', attr: 'thresh_rising_en' }],
        },
      ]);
      const s = await statusSeen('ev', (x) => x.fill === 'red');
      assert.match(s.text ?? '', /EINVAL/);
    });
  });
});

describe('nodes: iio-event arms an event through its settings (emu:)', function () {
  this.timeout(30000);
  afterEach(() => helper.unload());

  it("accel_y's rising threshold, off out of the box, fires once the node enables it", async () => {
    await loadFlow(IIO_NODES, [
      { id: 'ctx', type: 'iio-context', uri: 'emu:', reconnect: 0 },
      {
        id: 'ev',
        type: 'iio-event',
        context: 'ctx',
        device: 'adxl345-emu',
        channel: 'accel_y',
        settings: [
          { channel: 'accel_y', direction: 'in', attr: 'thresh_rising_value', value: '0' },
          { channel: 'accel_y', direction: 'in', attr: 'thresh_rising_en', value: '1' },
        ],
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ]);
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    const ctx = await cfg.handle.ready();
    const acc = ctx.device('adxl345-emu');
    const y = acc.channel('accel_y');
    // out of the box: off, at +1500 (which the y axis, ±1229, never reaches); the node
    // writes its settings before it says it listens
    await statusSeen('ev', (s) => /status\.listening/.test(s.text ?? ''));
    assert.equal(await y.readEventAttr('thresh_rising_en'), '1');
    assert.equal(await y.readEventAttr('thresh_rising_value'), '0');
    // a fast y axis: a rising zero crossing every 100 ms of sample time
    await acc.writeAttr('sampling_frequency', 800);
    await y.writeAttr('waveform_frequency', 10);
    const msgs = await nextMessages('out', 2, 15000);
    for (const m of msgs) {
      const p = m.payload as { channel: string; type: string; direction: string };
      assert.deepEqual([p.channel, p.type, p.direction], ['accel_y', 'thresh', 'rising']);
    }
  });
});
