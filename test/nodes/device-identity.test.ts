/**
 * Device identity in flows (issue 14 item 2), on XML contexts written by the test: a flow
 * names a device by label or name, resolved each time the context opens, so the same flow
 * finds the same device when probe order (the `iio:deviceN` ids) changes; a name that
 * matches several devices or none is a clear error at deploy (red status, Catch); topics
 * use the device's stable name, never its id. (The kernel version, with iio_dummy devices
 * made in both orders through configfs, is test/kernel/nodes-identity.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IioContextNode } from '../../src/nodes/common';
import { describeContext } from '../../src/nodes/iio-context';
import {
  IIO_NODES,
  coreNode,
  helper,
  loadFlow,
  nextMessages,
  node,
  statusSeen,
  type FlowItem,
} from './helpers';

const CATCH = coreNode('common/25-catch.js');

interface Dev {
  name: string;
  label?: string;
  /** Value of the device attribute `serial` (tells devices apart). */
  serial: string;
}

/** A libiio XML context with the devices in this order (ids iio:device0, 1, ...). */
function xmlContext(dir: string, file: string, devices: Dev[]): string {
  const body = devices
    .map(
      (d, i) =>
        `<device id="iio:device${i}" name="${d.name}"${d.label ? ` label="${d.label}"` : ''}>` +
        `<channel id="voltage0" type="input"><attribute name="raw" filename="in_voltage0_raw" value="${100 + i}"/></channel>` +
        `<attribute name="serial" value="${d.serial}"/></device>`,
    )
    .join('');
  const path = join(dir, file);
  writeFileSync(
    path,
    `<?xml version="1.0" encoding="utf-8"?><context name="xml" description="identity test">${body}</context>`,
  );
  return `xml:${path}`;
}

const LEFT: Dev = { name: 'ad7606', label: 'adc-left', serial: 'L-1' };
const RIGHT: Dev = { name: 'ad7606', label: 'adc-right', serial: 'R-2' };
const ACCEL: Dev = { name: 'adxl345', serial: 'A-3' };

function reader(id: string, device: string, extra: Record<string, unknown> = {}): FlowItem {
  return {
    id,
    type: 'iio-attr-read',
    context: 'ctx',
    device,
    attr: 'serial',
    output: 'string',
    z: 'f',
    wires: [['out']],
    ...extra,
  };
}

describe('nodes: devices named by label or name, resolved at deploy', function () {
  let dir = '';
  before(() => (dir = mkdtempSync(join(tmpdir(), 'iiokit-identity-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => helper.unload());

  it('the editor is offered label, else name, for each device (the id only when neither is unique)', async function () {
    const uri = xmlContext(dir, 'a.xml', [LEFT, { name: 'ad7606', serial: 'x' }, ACCEL]);
    const { createContext } = await import('../../src/create-context');
    const ctx = await createContext(uri);
    try {
      const refs = describeContext(ctx).devices.map((d) => [d.id, d.ref]);
      assert.deepEqual(refs, [
        ['iio:device0', 'adc-left'],
        // Same name as device0 and no label: only the id names it alone.
        ['iio:device1', 'iio:device1'],
        ['iio:device2', 'adxl345'],
      ]);
    } finally {
      await ctx.close();
    }
  });

  it('a flow saved against one probe order reads the same devices in another', async function () {
    const flow = (uri: string): FlowItem[] => [
      { id: 'ctx', type: 'iio-context', uri, reconnect: 0 },
      reader('r1', 'adc-right', { deviceId: 'iio:device1' }),
      reader('r2', 'adxl345', { deviceId: 'iio:device2' }),
      { id: 'out', type: 'helper', z: 'f' },
    ];
    for (const order of [
      [LEFT, RIGHT, ACCEL],
      [ACCEL, RIGHT, LEFT],
    ]) {
      const uri = xmlContext(dir, `order-${order[0].serial}.xml`, order);
      await loadFlow(IIO_NODES, flow(uri));
      const got = nextMessages('out', 2);
      node('r1').receive({ which: 'r1' });
      node('r2').receive({ which: 'r2' });
      const all = (await got).sort((a, b) => String(a.which).localeCompare(String(b.which)));
      const byTopic = new Map(all.map((m) => [m.topic, m]));
      assert.equal(all[0].payload, RIGHT.serial);
      // Topics: the name when it is unique, else the label; never iio:deviceN.
      assert.equal(byTopic.get('adc-right/serial')?.payload, RIGHT.serial);
      assert.equal(byTopic.get('adxl345/serial')?.payload, ACCEL.serial);
      const ids = all.map((m) => (m.iio as { deviceId: string }).deviceId);
      assert.deepEqual(ids, [
        `iio:device${order.indexOf(RIGHT)}`,
        `iio:device${order.indexOf(ACCEL)}`,
      ]);
      await helper.unload();
    }
  });

  it('an ambiguous name is an error at deploy that lists the candidates (ENOTUNIQ)', async function () {
    const uri = xmlContext(dir, 'amb.xml', [LEFT, RIGHT, ACCEL]);
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        { id: 'ctx', type: 'iio-context', uri, reconnect: 0 },
        reader('r', 'ad7606'),
        { id: 'out', type: 'helper', z: 'f' },
        { id: 'c', type: 'catch', z: 'f', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper', z: 'f' },
      ],
    );
    const [m] = await nextMessages('caught', 1);
    const e = m.error as { code?: string; message: string };
    assert.equal(e.code, 'ENOTUNIQ');
    for (const want of ['iio:device0', 'iio:device1', 'adc-left', 'adc-right'])
      assert.ok(e.message.includes(want), `${e.message} names ${want}`);
    await statusSeen('r', (s) => s.fill === 'red' && /^ENOTUNIQ/.test(s.text ?? ''));
  });

  it('a device that is gone is an error at deploy naming the id it had (ENODEV)', async function () {
    const uri = xmlContext(dir, 'gone.xml', [LEFT, ACCEL]);
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        { id: 'ctx', type: 'iio-context', uri, reconnect: 0 },
        {
          id: 'cap',
          type: 'iio-capture',
          context: 'ctx',
          device: 'adc-right',
          deviceId: 'iio:device1',
          z: 'f',
          wires: [[]],
        },
        { id: 'c', type: 'catch', z: 'f', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper', z: 'f' },
      ],
    );
    const [m] = await nextMessages('caught', 1);
    const e = m.error as { code?: string; message: string };
    assert.equal(e.code, 'ENODEV');
    assert.match(e.message, /no device "adc-right" \(it was iio:device1 when the flow was saved\)/);
    assert.match(e.message, /adc-left/);
    await statusSeen('cap', (s) => s.fill === 'red' && /^ENODEV/.test(s.text ?? ''));
  });

  it('older flows that saved an id still work, and their topics use the name', async function () {
    const uri = xmlContext(dir, 'legacy.xml', [ACCEL, LEFT]);
    await loadFlow(IIO_NODES, [
      { id: 'ctx', type: 'iio-context', uri, reconnect: 0 },
      reader('r', 'iio:device0'),
      { id: 'out', type: 'helper', z: 'f' },
    ]);
    const got = nextMessages('out', 1);
    node('r').receive({});
    const [m] = await got;
    assert.equal(m.payload, ACCEL.serial);
    assert.equal(m.topic, 'adxl345/serial');
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    assert.equal(cfg.handle.state.kind, 'connected');
  });
});
