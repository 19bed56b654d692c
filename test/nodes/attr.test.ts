/**
 * iio-attr-read / iio-attr-write and the iio-context config node on xml: contexts
 * (libiio XML with attribute values), through the real Node-RED 4 runtime.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createContext } from '../../src/create-context';
import type { IioContextNode } from '../../src/nodes/common';
import {
  IIO_NODES,
  coreNode,
  fixture,
  helper,
  loadFlow,
  nextMessages,
  node,
  type FlowItem,
  type TestMsg,
  CATCH_TO_HELPER,
} from './helpers';

const CATCH = coreNode('common/25-catch.js');
const XML = `xml:${fixture('adxl345.xml')}`;

/**
 * An attribute's value as the fixture file itself holds it (read with a regular
 * expression, not with the library under test): a device attribute, or a channel's.
 */
function xmlValue(device: string, channel: string | undefined, attr: string): string {
  const xml = readFileSync(fixture('adxl345.xml'), 'utf8');
  const dev = new RegExp(`<device id="[^"]*" name="${device}"[^>]*>([\\s\\S]*?)</device>`).exec(
    xml,
  );
  assert.ok(dev, `device ${device} in the fixture`);
  let scope = dev[1];
  if (channel) {
    const ch = new RegExp(`<channel id="${channel}" type="input"[^>]*>([\\s\\S]*?)</channel>`).exec(
      scope,
    );
    assert.ok(ch, `channel ${channel} in the fixture`);
    scope = ch[1];
  } else {
    scope = scope.replace(/<channel[\s\S]*?<\/channel>/g, '');
  }
  const a = new RegExp(`<attribute name="${attr}"[^>]*? value="([^"]*)"`).exec(scope);
  assert.ok(a, `attribute ${attr} in the fixture`);
  return a[1];
}

function ctxNode(id = 'ctx', uri = XML): FlowItem {
  return { id, type: 'iio-context', uri, reconnect: 0 };
}

describe('nodes: iio-attr-read / iio-attr-write on xml:', function () {
  afterEach(() => helper.unload());

  it('reads a channel attribute as a number, equal to what the library reads', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      {
        id: 'r',
        type: 'iio-attr-read',
        context: 'ctx',
        device: 'adxl345',
        channel: 'accel_x',
        direction: 'in',
        attr: 'raw',
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ]);
    const got = nextMessages('out');
    node('r').receive({ payload: 'go' });
    const [msg] = await got;
    const want = xmlValue('adxl345', 'accel_x', 'raw');
    assert.equal(typeof msg.payload, 'number');
    assert.equal(msg.payload, Number(want));
    assert.equal(msg.topic, 'adxl345/accel_x/raw');
    assert.deepEqual(
      {
        device: msg.iio?.device,
        channel: msg.iio?.channel,
        attr: msg.iio?.attr,
        raw: msg.iio?.raw,
      },
      { device: 'adxl345', channel: 'accel_x', attr: 'raw', raw: want },
    );
  });

  it('reads the _available list of an attribute as an array', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      {
        id: 'r',
        type: 'iio-attr-read',
        context: 'ctx',
        device: 'iio:device0',
        attr: 'sampling_frequency',
        output: 'available',
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ]);
    const got = nextMessages('out');
    node('r').receive({});
    const [msg] = await got;
    const values = xmlValue('adxl345', undefined, 'sampling_frequency_available')
      .trim()
      .split(/\s+/)
      .map(Number);
    assert.deepEqual(msg.payload, values);
    assert.ok(values.length > 3);
  });

  it('reads as text when asked, and reads on an interval by itself', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      {
        id: 'r',
        type: 'iio-attr-read',
        context: 'ctx',
        device: 'adxl345',
        channel: 'accel_x',
        attr: 'scale',
        output: 'string',
        interval: '0.05',
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ]);
    const msgs = await nextMessages('out', 3);
    for (const m of msgs) {
      assert.equal(typeof m.payload, 'string');
      assert.ok(Number(m.payload) > 0);
    }
  });

  it('sends a missing attribute to a Catch node as an IioError naming it', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode(),
        {
          id: 'r',
          type: 'iio-attr-read',
          context: 'ctx',
          device: 'adxl345',
          channel: 'accel_x',
          attr: 'nonexistent',
          z: 'f',
          wires: [['out']],
        },
        ...CATCH_TO_HELPER,
      ],
    );
    // Two: the missing attribute is reported at deploy too (no marker), then with the input.
    const got = nextMessages('caught', 2);
    node('r').receive({ payload: 1, marker: 'm1' });
    const msg = (await got).find((m) => m.marker === 'm1');
    assert.ok(msg, 'the input message reached Catch');
    for (const re of [/ENOENT/, /nonexistent/, /accel_x/])
      assert.match(msg.error?.message ?? '', re);
    assert.equal(msg.error?.source?.id, 'r');
  });

  it('refuses a value outside the _available list before writing (to Catch, EINVAL)', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode(),
        {
          id: 'w',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'adxl345',
          channel: 'accel_x',
          attr: 'sampling_frequency',
          validate: true,
          z: 'f',
          wires: [['out']],
        },
        ...CATCH_TO_HELPER,
      ],
    );
    const got = nextMessages('caught');
    node('w').receive({ payload: 12345 });
    const [msg] = await got;
    for (const re of [/EINVAL/, /12345/, /not one of/]) assert.match(msg.error?.message ?? '', re);
  });

  it('writes through an _available list a captured board could not read (emu:, ERROR)', async function () {
    // adxl355.xml holds sampling_frequency_available="ERROR": the list says nothing.
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode('ctx', `emu:${fixture('adxl355.xml')}`),
        {
          id: 'w',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'adxl355',
          channel: 'accel_x',
          attr: 'sampling_frequency',
          validate: true,
          z: 'f',
          wires: [['out']],
        },
        { id: 'out', type: 'helper' },
        ...CATCH_TO_HELPER,
      ],
    );
    const got = nextMessages('out');
    node('w').receive({ payload: 1000 });
    const [msg] = await got;
    assert.equal(msg.iio?.written, '1000');
    assert.equal(msg.iio?.readBack, 1000);
  });

  it('refuses payloads that are not values (objects) with a clear error', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode(),
        {
          id: 'w',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'adxl345',
          channel: 'accel_x',
          attr: 'sampling_frequency',
          validate: false,
          z: 'f',
          wires: [['out']],
        },
        ...CATCH_TO_HELPER,
      ],
    );
    const got = nextMessages('caught');
    node('w').receive({ payload: { a: 1 } });
    const [msg] = await got;
    for (const re of [/EINVAL/, /cannot write object/]) assert.match(msg.error?.message ?? '', re);
  });

  it('shares one context between users and closes it when the last one goes', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      {
        id: 'r1',
        type: 'iio-attr-read',
        context: 'ctx',
        device: 'adxl345',
        channel: 'accel_x',
        attr: 'raw',
        wires: [['out']],
      },
      {
        id: 'r2',
        type: 'iio-attr-read',
        context: 'ctx',
        device: 'adxl345',
        channel: 'accel_y',
        attr: 'raw',
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ]);
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    const got = nextMessages('out', 2);
    node('r1').receive({});
    node('r2').receive({});
    const msgs: TestMsg[] = await got;
    assert.deepEqual(msgs.map((m) => m.topic).sort(), [
      'adxl345/accel_x/raw',
      'adxl345/accel_y/raw',
    ]);
    assert.equal(cfg.handle.userCount, 2);
    const ctx = await cfg.handle.ready();
    assert.equal(ctx.isClosed, false);
    await helper.unload();
    assert.equal(cfg.handle.userCount, 0);
    assert.equal(ctx.isClosed, true);
  });

  it('shows a bad URI as an error status on its users and sends it to Catch on input', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode('ctx', 'nonsense:foo'),
        {
          id: 'r',
          type: 'iio-attr-read',
          context: 'ctx',
          device: 'd',
          attr: 'a',
          z: 'f',
          wires: [['out']],
        },
        ...CATCH_TO_HELPER,
      ],
    );
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    await cfg.handle.ready().catch(() => undefined);
    assert.equal(cfg.handle.state.kind, 'error');
    const got = nextMessages('caught');
    node('r').receive({});
    const [msg] = await got;
    for (const re of [/EINVAL/, /nonsense/]) assert.match(msg.error?.message ?? '', re);
  });
});

describe('nodes: iio-context serving its context', function () {
  afterEach(() => helper.unload());

  it('serves the open context over iiod while it is open, and stops with it', async function () {
    const { freePort } = await import('../e2e/node-red');
    const port = await freePort();
    await loadFlow(IIO_NODES, [
      { id: 'ctx', type: 'iio-context', uri: XML, reconnect: 0, serve: true, servePort: port },
      {
        id: 'r',
        type: 'iio-attr-read',
        context: 'ctx',
        device: 'adxl345',
        channel: 'accel_x',
        attr: 'raw',
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ]);
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    await cfg.handle.ready();
    // On the wire, the value the fixture holds; and a client of our own library reads it.
    const want = xmlValue('adxl345', 'accel_x', 'raw');
    const text = await iiodCommand(port, 'READ adxl345 INPUT accel_x raw\r\n');
    assert.match(text, new RegExp(`^\\d+\\n${want}\\u0000?\\n`));
    const remote = await createContext(`ip:127.0.0.1:${port}`);
    assert.equal(await remote.device('adxl345').channel('accel_x').readAttr('raw'), want);
    await remote.close();
    await helper.unload();
    const refused = await iiodCommand(port, 'VERSION\r\n').catch(
      (e: NodeJS.ErrnoException) => e.code,
    );
    assert.equal(refused, 'ECONNREFUSED');
  });
});

/** Sends one iiod command and returns the reply's first lines. */
async function iiodCommand(port: number, cmd: string): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(cmd));
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.split('\n').length >= 3) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      resolve(got);
    }, 3000);
  });
}
