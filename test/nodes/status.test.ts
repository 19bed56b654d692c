/**
 * Node status texts (issue 14 item 5): short (about 20 characters, never cut mid-word),
 * from locale keys; the full sentence goes to the log and Catch. A transient problem does
 * not leave a capture node yellow: it goes back to green with its rate, and a stream that
 * stops delivering shows so instead of its last rate.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IioError } from '../../src/errors';
import type { IioContextNode } from '../../src/nodes/common';
import { errorStatus, fitStatus, STATUS_MAX } from '../../src/nodes/status';
import {
  IIO_NODES,
  ROOT,
  coreNode,
  helper,
  loadFlow,
  sleep,
  statusSeen,
  statusesOf,
} from './helpers';

/** Fills `__x__` placeholders with the widest values the nodes put there. */
function widest(template: string): string {
  const values: Record<string, string> = {
    rate: '999.9 kS/s',
    n: '999',
    lost: '999',
    dropped: '999',
    attempt: '99',
    count: '999k',
    scans: '99999',
  };
  return template.replace(/__(\w+)__/g, (_m, k: string) => values[k] ?? 'x'.repeat(8));
}

describe('nodes: status texts', function () {
  afterEach(() => helper.unload());

  it('cuts at a word boundary and marks the cut', function () {
    assert.equal(fitStatus('connected'), 'connected');
    const t = fitStatus('refused: the value is not one of the allowed ones');
    assert.ok(t.length <= STATUS_MAX, t);
    assert.ok(t.endsWith('…'));
    assert.ok('refused: the value is not one of'.startsWith(t.slice(0, -1)), t);
    // One long word stays whole rather than broken.
    assert.equal(fitStatus('ECONNREFUSEDECONNREFUSED'), 'ECONNREFUSEDECONNREFUSED');
  });

  it('an error status is the errno code and what it concerns, the rest goes elsewhere', function () {
    const e = new IioError('ENOENT', 'no channel attribute "scale"', {
      device: 'iio:device0',
      attr: 'scale',
      uri: 'ip:192.168.2.1',
    });
    assert.deepEqual(errorStatus(e), { fill: 'red', shape: 'ring', text: 'ENOENT scale' });
    const long = new IioError('ECONNREFUSED', 'connection refused', {
      device: 'a-rather-long-device-label',
    });
    assert.equal(errorStatus(long).text, 'ECONNREFUSED');
  });

  it('every status text of every locale fits, with the widest values', function () {
    for (const lang of ['en-US', 'de']) {
      for (const type of ['iio-capture', 'iio-context', 'iio-event', 'iio-push']) {
        const cat = JSON.parse(
          readFileSync(join(ROOT, 'nodes', 'locales', lang, `${type}.json`), 'utf8'),
        ) as Record<string, { status?: Record<string, string> }>;
        for (const [key, template] of Object.entries(cat[type].status ?? {})) {
          const text = widest(template);
          assert.ok(text.length <= STATUS_MAX, `${lang} ${type}.status.${key}: "${text}"`);
          assert.equal(fitStatus(text), text);
        }
      }
    }
  });

  it('a capture node goes yellow while blocks are dropped and back to green after', async function () {
    this.timeout(30000);
    const FUNCTION = coreNode('function/10-function.js');
    await loadFlow(
      [...IIO_NODES, FUNCTION],
      [
        { id: 'ctx', type: 'iio-context', uri: 'emu:', reconnect: 0 },
        {
          id: 'cap',
          type: 'iio-capture',
          context: 'ctx',
          device: 'emu-adc',
          channels: 'voltage0',
          samples: 64,
          maxInFlight: 2,
          frequency: 2000,
          wires: [['slow']],
        },
        {
          // Slow for the first 20 messages (the flow falls behind), fast after.
          id: 'slow',
          type: 'function',
          func: "const n = (context.get('n') || 0) + 1; context.set('n', n); if (n < 20) { const t = Date.now(); while (Date.now() - t < 100) {} } return null;",
          outputs: 1,
          wires: [[]],
        },
      ],
    );
    const yellow = await statusSeen(
      'cap',
      (s) => s.fill === 'yellow' && /dropped/.test(s.text ?? ''),
      20000,
    );
    assert.equal(yellow.shape, 'dot');
    const all = (): ReturnType<typeof statusesOf> => statusesOf('cap');
    const at = all().indexOf(yellow);
    // Later: green again, with its rate.
    for (let i = 0; i < 200; i++) {
      if (
        all()
          .slice(at)
          .some((s) => s.fill === 'green' && /S\/s$/.test(s.text ?? ''))
      )
        break;
      await sleep(50);
    }
    assert.ok(
      all()
        .slice(at)
        .some((s) => s.fill === 'green' && /S\/s$/.test(s.text ?? '')),
      JSON.stringify(all().slice(at)),
    );
  });

  it('a capture node whose blocks stop coming shows it, and its rate when they come back', async function () {
    this.timeout(60000);
    await loadFlow(IIO_NODES, [
      { id: 'ctx', type: 'iio-context', uri: 'emu:', reconnect: 0 },
      {
        id: 'cap',
        type: 'iio-capture',
        context: 'ctx',
        device: 'emu-adc',
        channels: 'voltage0',
        samples: 1024,
        frequency: 100000,
        wires: [[]],
      },
    ]);
    await statusSeen('cap', (s) => s.fill === 'green' && /S\/s$/.test(s.text ?? ''), 15000);
    const adc = (await (helper.getNode('ctx') as unknown as IioContextNode).handle.ready()).device(
      'emu-adc',
    );
    // The device slows down behind the node's back: a block now takes 10 s.
    await adc.writeAttr('sampling_frequency', 100);
    const stalled = await statusSeen(
      'cap',
      (s) => s.fill === 'yellow' && /stalled/.test(s.text ?? ''),
      15000,
    );
    const at = statusesOf('cap').indexOf(stalled);
    await adc.writeAttr('sampling_frequency', 100000);
    for (let i = 0; i < 600; i++) {
      if (
        statusesOf('cap')
          .slice(at)
          .some((s) => s.fill === 'green')
      )
        break;
      await sleep(50);
    }
    assert.ok(
      statusesOf('cap')
        .slice(at)
        .some((s) => s.fill === 'green'),
    );
  });
});
