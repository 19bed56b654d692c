/**
 * A full deploy restarts every node; an iio-context whose configuration did not change
 * keeps its open context across it (issue 14 item 11), as core MQTT keeps its broker
 * connection: an emulator's attribute values stay, and a cyclic waveform keeps playing
 * when its push node did not change either. A changed or removed config node, and a
 * stop of the runtime, still close the context.
 */
import assert from 'node:assert/strict';
import { createContext } from '../../src/create-context';
import type { IioContextNode } from '../../src/nodes/common';
import { helper, IIO_NODES, loadFlow, nextMessages, node, type FlowItem } from './helpers';

const ctx = (extra: Record<string, unknown> = {}): FlowItem => ({
  id: 'ctx',
  type: 'iio-context',
  uri: 'emu:',
  reconnect: 0,
  ...extra,
});

const attrNodes: FlowItem[] = [
  {
    id: 'w',
    type: 'iio-attr-write',
    context: 'ctx',
    device: 'emu-adc',
    channel: 'voltage0',
    attr: 'waveform_frequency',
    wires: [['wout']],
  },
  {
    id: 'r',
    type: 'iio-attr-read',
    context: 'ctx',
    device: 'emu-adc',
    channel: 'voltage0',
    attr: 'waveform_frequency',
    wires: [['out']],
  },
  { id: 'out', type: 'helper' },
  { id: 'wout', type: 'helper' },
];

async function readFrequency(): Promise<unknown> {
  const got = nextMessages('out', 1);
  node('r').receive({});
  return (await got)[0].payload;
}

const handleOf = (): IioContextNode['handle'] =>
  (helper.getNode('ctx') as unknown as IioContextNode).handle;

describe('nodes: a redeploy keeps an unchanged context', function () {
  this.timeout(30000);
  afterEach(() => helper.unload());

  it('keeps the context and its attribute values through a full deploy', async function () {
    const fresh = await createContext('emu:');
    const initial = await fresh
      .device('emu-adc')
      .channel('voltage0')
      .readAttr('waveform_frequency');
    await fresh.close();
    const written = Number(initial) + 7;

    await loadFlow(IIO_NODES, [ctx(), ...attrNodes]);
    const first = await handleOf().ready();
    const ack = nextMessages('wout', 1);
    node('w').receive({ payload: written });
    await ack;
    assert.equal(await readFrequency(), written);

    await helper.setFlows([ctx(), ...attrNodes], 'full');
    const second = await handleOf().ready();
    assert.equal(second, first, 'the same open context');
    assert.equal(first.isClosed, false);
    assert.equal(await readFrequency(), written, 'the value written before the deploy');

    // A changed configuration is a new context (the emulator starts over).
    await helper.setFlows([ctx({ timeout: 4000 }), ...attrNodes], 'full');
    const third = await handleOf().ready();
    assert.notEqual(third, first);
    assert.equal(first.isClosed, true, 'the old context was closed');
    assert.equal(await readFrequency(), Number(initial));
  });

  it('closes the context when its config node is removed by a deploy', async function () {
    await loadFlow(IIO_NODES, [ctx(), ...attrNodes]);
    const opened = await handleOf().ready();
    await helper.setFlows([{ id: 'out', type: 'helper' }], 'full');
    for (let i = 0; i < 100 && !opened.isClosed; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(opened.isClosed, true);
  });

  it('keeps a cyclic waveform playing through a deploy that changes neither node', async function () {
    const flow: FlowItem[] = [
      ctx(),
      {
        id: 'push',
        type: 'iio-push',
        context: 'ctx',
        device: 'emu-dac',
        cyclic: true,
        wires: [['pushed']],
      },
      {
        id: 'cap',
        type: 'iio-capture',
        context: 'ctx',
        device: 'emu-adc',
        channels: 'voltage0,voltage1',
        samples: 50,
        output: 'channels',
        wires: [['adcout']],
      },
      { id: 'pushed', type: 'helper' },
      { id: 'adcout', type: 'helper' },
    ];
    const pattern0 = [1111, 2222, 3333];
    const pattern1 = [-5, -6, -7];
    const isPattern = (p: Record<string, number[]>): boolean =>
      p.voltage0.every((v) => pattern0.includes(v)) &&
      p.voltage1.every((v) => pattern1.includes(v));
    const seesPattern = async (): Promise<boolean> => {
      for (let i = 0; i < 40; i++) {
        const [m] = await nextMessages('adcout', 1, 10000);
        if (isPattern(m.payload as Record<string, number[]>)) return true;
      }
      return false;
    };
    await loadFlow(IIO_NODES, flow);
    const ack = nextMessages('pushed', 1);
    node('push').receive({ payload: { voltage0: pattern0, voltage1: pattern1 } });
    await ack;
    assert.ok(await seesPattern(), 'the ADC reads the waveform');
    await helper.setFlows(flow, 'full');
    // Nothing pushed again: the waveform is the one from before the deploy.
    assert.ok(await seesPattern(), 'the ADC still reads the waveform after the deploy');
  });
});
