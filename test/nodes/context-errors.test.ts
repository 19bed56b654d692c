/**
 * Context failures reach flows (issue 14 item 1, issue 15 item 9): a context that cannot
 * be opened — unknown scheme, a malformed IPv6 literal, a refused port, `local:` without
 * IIO, a missing XML file — is reported by every node that uses it, source nodes included,
 * to Catch with `msg.error.code`, and by the config node to the log; repeats are counted,
 * not repeated. A missing attribute shows red at deploy (item 12).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { existsSync } from 'node:fs';
import type { IioContextNode } from '../../src/nodes/common';
import { RateGate } from '../../src/nodes/report';
import {
  IIO_NODES,
  coreNode,
  fixture,
  helper,
  loadFlow,
  nextMessages,
  sleep,
  statusSeen,
  type FlowItem,
  type TestMsg,
} from './helpers';

const CATCH = coreNode('common/25-catch.js');

interface LogCall {
  level: number;
  msg: unknown;
  id?: string;
  type?: string;
}

/** What the runtime logged so far (the helper spies on the runtime's log). */
function logged(): LogCall[] {
  const spy = helper.log() as unknown as { args: Array<[LogCall]> };
  return spy.args.map((a) => a[0]);
}

/** A port nothing listens on (bound, then closed). */
async function refusedPort(): Promise<number> {
  const srv: Server = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** The three source nodes (no input message) and a Catch for each flow. */
function sourceFlow(uri: string, reconnect: number): FlowItem[] {
  return [
    { id: 'ctx', type: 'iio-context', uri, reconnect },
    {
      id: 'cap',
      type: 'iio-capture',
      context: 'ctx',
      device: 'emu-adc',
      z: 'f',
      wires: [[]],
    },
    { id: 'ev', type: 'iio-event', context: 'ctx', device: 'emu-accel', z: 'f', wires: [[]] },
    {
      id: 'rd',
      type: 'iio-attr-read',
      context: 'ctx',
      device: 'emu-adc',
      attr: 'sampling_frequency',
      interval: '0.2',
      z: 'f',
      wires: [[]],
    },
    { id: 'c', type: 'catch', z: 'f', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'f' },
  ];
}

describe('nodes: a context that cannot open reaches Catch and the log', function () {
  this.timeout(30000);
  afterEach(() => helper.unload());

  const cases: Array<{ what: string; uri: () => Promise<string>; code: string; skip?: boolean }> = [
    { what: 'an unknown scheme', uri: async () => 'bogus:x', code: 'EINVAL' },
    { what: 'a malformed IPv6 literal', uri: async () => 'ip:[::1:1', code: 'EINVAL' },
    {
      what: 'a refused port',
      uri: async () => `ip:127.0.0.1:${await refusedPort()}`,
      code: 'ECONNREFUSED',
    },
    {
      what: 'local: without IIO',
      uri: async () => 'local:',
      code: 'ENOENT',
      skip: existsSync('/sys/bus/iio/devices'),
    },
    {
      what: 'a missing XML file',
      uri: async () => `xml:${fixture('no-such-file.xml')}`,
      code: 'ENOENT',
    },
  ];

  for (const c of cases) {
    it(`${c.what}: every source node sends it to Catch with msg.error.code, the config node logs it`, async function () {
      if (c.skip) this.skip();
      const uri = await c.uri();
      await loadFlow([...IIO_NODES, CATCH], sourceFlow(uri, 0.2));
      const msgs = await nextMessages('caught', 3);
      const bySource = new Map(msgs.map((m) => [m.error?.source?.id, m]));
      assert.deepEqual([...bySource.keys()].sort(), ['cap', 'ev', 'rd']);
      for (const m of msgs) {
        const e = m.error as { code?: string; message: string };
        assert.equal(e.code, c.code, e.message);
        assert.ok(e.message.includes(uri), `${e.message} names ${uri}`);
      }
      // The log: one line from the config node naming the URI and the reason.
      const lines = logged().filter(
        (l) => l.type === 'iio-context' && String(l.msg).includes(`cannot open ${uri}`),
      );
      assert.equal(lines.length, 1, JSON.stringify(logged().map((l) => l.msg)));
      assert.match(String(lines[0].msg), new RegExp(c.code));
      // And the nodes show it, short.
      await statusSeen('cap', (s) => s.fill === 'red' && s.text === c.code);
    });
  }

  it('a context that keeps failing: one Catch message per node and one log line, not one per attempt', async function () {
    const uri = `ip:127.0.0.1:${await refusedPort()}`;
    await loadFlow([...IIO_NODES, CATCH], sourceFlow(uri, 0.05));
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    const caught: TestMsg[] = [];
    (helper.getNode('caught') as unknown as { on(e: string, f: (m: TestMsg) => void): void }).on(
      'input',
      (m) => caught.push(m),
    );
    let failures = 0;
    cfg.handle.on('state', (s) => {
      if (s.kind === 'error') failures++;
    });
    while (failures < 10) await sleep(50);
    assert.equal(caught.length, 3, caught.map((m) => m.error?.source?.id).join(' '));
    const lines = logged().filter(
      (l) => l.type === 'iio-context' && String(l.msg).includes(`cannot open ${uri}`),
    );
    assert.equal(lines.length, 1);
  });

  it('a missing attribute shows red and reaches Catch at deploy, before any message', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        { id: 'ctx', type: 'iio-context', uri: 'emu:', reconnect: 0 },
        {
          id: 'w',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'emu-adc',
          channel: 'voltage0',
          attr: 'no_such_attr',
          z: 'f',
          wires: [[]],
        },
        { id: 'c', type: 'catch', z: 'f', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper', z: 'f' },
      ],
    );
    const [m] = await nextMessages('caught', 1);
    assert.equal((m.error as { code?: string }).code, 'ENOENT');
    assert.match(m.error?.message ?? '', /no_such_attr/);
    const status = await statusSeen('w', (s) => s.fill === 'red');
    assert.match(status.text ?? '', /^ENOENT/);
  });
});

describe('nodes: the rate gate behind error and log reports', function () {
  it('sends the first occurrence at once and the repeats as one counted summary', async function () {
    const sent: Array<[string, number]> = [];
    const gate = new RateGate<string>(200, (item, repeats) => sent.push([item, repeats]));
    for (let i = 0; i < 5; i++) gate.report('k', `e${i}`);
    assert.deepEqual(sent, [['e0', 0]]);
    while (sent.length < 2) await sleep(20);
    assert.deepEqual(sent, [
      ['e0', 0],
      ['e4', 4],
    ]);
    // Another key is not held back by the first.
    gate.report('other', 'x');
    assert.deepEqual(sent[2], ['x', 0]);
    gate.cancel();
  });

  it('flushes pending counts when the problem ends, and the next one is new', function () {
    const sent: Array<[string, number]> = [];
    const gate = new RateGate<string>(60000, (item, repeats) => sent.push([item, repeats]));
    gate.report('k', 'a');
    gate.report('k', 'b');
    gate.report('k', 'c');
    gate.flush();
    gate.report('k', 'd');
    assert.deepEqual(sent, [
      ['a', 0],
      ['c', 2],
      ['d', 0],
    ]);
    gate.cancel();
  });
});
