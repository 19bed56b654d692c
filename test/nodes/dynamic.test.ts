/**
 * One attr node serving many attributes (issue 14 item 4): `msg.device`, `msg.channel`,
 * `msg.attribute` where the node's field is blank, values and topics from typed inputs
 * (msg, flow, global, env, literals); and write validation (item 6) against `_available`
 * ranges and the type of value an attribute holds, before anything is written. The emulator
 * (emu:) is the device; every expected value is read back through the library.
 */
import assert from 'node:assert/strict';
import { createContext } from '../../src/create-context';
import type { IioContextNode } from '../../src/nodes/common';
import { checkAvailable, checkNumeric, parseAvailable } from '../../src/nodes/attr-select';
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

const ctxNode: FlowItem = { id: 'ctx', type: 'iio-context', uri: 'emu:', reconnect: 0 };
const catchFlow: FlowItem[] = [
  { id: 'c', type: 'catch', z: 'f', scope: null, uncaught: false, wires: [['caught']] },
  { id: 'caught', type: 'helper', z: 'f' },
  { id: 'out', type: 'helper', z: 'f' },
];

describe('nodes: attributes chosen per message, values and topics from typed inputs', function () {
  afterEach(() => helper.unload());

  it('a blank iio-attr-read takes msg.device, msg.channel and msg.attribute', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode,
        {
          id: 'r',
          type: 'iio-attr-read',
          context: 'ctx',
          output: 'string',
          z: 'f',
          wires: [['out']],
        },
        ...catchFlow,
      ],
    );
    const got = nextMessages('out', 3);
    node('r').receive({ n: 1, device: 'emu-accel', channel: 'accel_y', attribute: 'scale' });
    node('r').receive({ n: 2, device: 'emu-adc', attribute: 'sampling_frequency' });
    // An output channel without msg.direction: found among the outputs.
    node('r').receive({ n: 3, device: 'emu-dac', channel: 'voltage1', attribute: 'scale' });
    const msgs = (await got).sort((a, b) => Number(a.n) - Number(b.n));
    const lib = await createContext('emu:');
    try {
      assert.equal(
        msgs[0].payload,
        await lib.device('emu-accel').channel('accel_y').readAttr('scale'),
      );
      assert.equal(msgs[1].payload, await lib.device('emu-adc').readAttr('sampling_frequency'));
      assert.equal(
        msgs[2].payload,
        await lib.device('emu-dac').channel('voltage1', true).readAttr('scale'),
      );
      assert.equal(msgs[0].topic, `${lib.device('emu-accel').name}/accel_y/scale`);
      assert.equal((msgs[2].iio as { direction: string }).direction, 'out');
    } finally {
      await lib.close();
    }
  });

  it('a message without an attribute for a blank node goes to Catch (EINVAL)', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode,
        { id: 'r', type: 'iio-attr-read', context: 'ctx', z: 'f', wires: [['out']] },
        ...catchFlow,
      ],
    );
    const got = nextMessages('caught', 1);
    node('r').receive({ device: 'emu-adc' });
    const [m] = await got;
    assert.equal((m.error as { code?: string }).code, 'EINVAL');
    assert.match(m.error?.message ?? '', /msg\.attribute/);
  });

  it('fields set in the node win over the message (msg.attribute only fills a blank)', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode,
        {
          id: 'r',
          type: 'iio-attr-read',
          context: 'ctx',
          device: 'emu-adc',
          attr: 'sampling_frequency',
          output: 'string',
          z: 'f',
          wires: [['out']],
        },
        ...catchFlow,
      ],
    );
    const got = nextMessages('out', 1);
    node('r').receive({ device: 'emu-accel', attribute: 'nothing' });
    const [m] = await got;
    assert.equal((m.iio as { attr: string }).attr, 'sampling_frequency');
    assert.equal(m.topic, 'ad7606-emu/sampling_frequency');
  });

  it('iio-attr-write takes its value from msg, flow, env or a literal, and its attribute from the message', async function () {
    process.env.IIOKIT_TEST_AMPLITUDE = '1234';
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode,
        { id: 'tab', type: 'tab' },
        {
          id: 'wMsg',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'emu-adc',
          channel: 'voltage1',
          value: 'setting.freq',
          valueType: 'msg',
          z: 'f',
          wires: [['out']],
        },
        {
          id: 'wEnv',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'emu-adc',
          channel: 'voltage1',
          attr: 'waveform_amplitude',
          value: 'IIOKIT_TEST_AMPLITUDE',
          valueType: 'env',
          z: 'f',
          wires: [['out']],
        },
        {
          id: 'wFlow',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'emu-adc',
          channel: 'voltage2',
          attr: 'waveform',
          value: 'shape',
          valueType: 'flow',
          z: 'f',
          wires: [['out']],
        },
        {
          id: 'wNum',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'emu-adc',
          channel: 'voltage3',
          attr: 'waveform_offset',
          value: '-25',
          valueType: 'num',
          z: 'f',
          wires: [['out']],
        },
        ...catchFlow,
      ],
    );
    (
      helper.getNode('wFlow') as unknown as {
        context(): { flow: { set(k: string, v: string): void } };
      }
    )
      .context()
      .flow.set('shape', 'square');
    const got = nextMessages('out', 4);
    node('wMsg').receive({ attribute: 'waveform_frequency', setting: { freq: 7 } });
    node('wEnv').receive({});
    node('wFlow').receive({});
    node('wNum').receive({});
    const msgs: TestMsg[] = await got;
    assert.equal(msgs.length, 4);
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    const ctx = await cfg.handle.ready();
    const adc = ctx.device('emu-adc');
    assert.equal(await adc.channel('voltage1').readAttr('waveform_frequency'), '7');
    assert.equal(await adc.channel('voltage1').readAttr('waveform_amplitude'), '1234');
    assert.equal(await adc.channel('voltage2').readAttr('waveform'), 'square');
    assert.equal(await adc.channel('voltage3').readAttr('waveform_offset'), '-25');
    delete process.env.IIOKIT_TEST_AMPLITUDE;
  });

  it('older flows: a blank value writes msg.payload, any other value is a literal', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode,
        {
          id: 'wOld',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'iio:device0',
          channel: 'voltage0',
          attr: 'waveform',
          value: '',
          z: 'f',
          wires: [['out']],
        },
        {
          id: 'wLit',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'iio:device0',
          channel: 'voltage1',
          attr: 'waveform',
          value: 'triangle',
          z: 'f',
          wires: [['out']],
        },
        ...catchFlow,
      ],
    );
    const got = nextMessages('out', 2);
    node('wOld').receive({ payload: 'sawtooth' });
    node('wLit').receive({ payload: 'ignored' });
    await got;
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    const adc = (await cfg.handle.ready()).device('iio:device0');
    assert.equal(await adc.channel('voltage0').readAttr('waveform'), 'sawtooth');
    assert.equal(await adc.channel('voltage1').readAttr('waveform'), 'triangle');
  });

  it('an attr-read topic from a typed input (msg property, env)', async function () {
    process.env.IIOKIT_TEST_TOPIC = 'plant/line1/adc';
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode,
        {
          id: 'rMsg',
          type: 'iio-attr-read',
          context: 'ctx',
          device: 'emu-adc',
          attr: 'sampling_frequency',
          topic: 'where',
          topicType: 'msg',
          z: 'f',
          wires: [['out']],
        },
        {
          id: 'rEnv',
          type: 'iio-attr-read',
          context: 'ctx',
          device: 'emu-adc',
          attr: 'sampling_frequency',
          topic: 'IIOKIT_TEST_TOPIC',
          topicType: 'env',
          z: 'f',
          wires: [['out']],
        },
        ...catchFlow,
      ],
    );
    const got = nextMessages('out', 2);
    node('rMsg').receive({ where: 'from/the/message' });
    node('rEnv').receive({});
    const topics = (await got).map((m) => m.topic).sort();
    assert.deepEqual(topics, ['from/the/message', 'plant/line1/adc']);
    delete process.env.IIOKIT_TEST_TOPIC;
  });
});

describe('nodes: iio-attr-write refuses what a driver would, before writing', function () {
  afterEach(() => helper.unload());

  async function refused(attr: string, channel: string, payload: unknown): Promise<string> {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [
        ctxNode,
        {
          id: 'w',
          type: 'iio-attr-write',
          context: 'ctx',
          device: 'emu-adc',
          channel,
          attr,
          z: 'f',
          wires: [['out']],
        },
        ...catchFlow,
      ],
    );
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    const ch = (await cfg.handle.ready()).device('emu-adc').channel(channel);
    const before = await ch.readAttr(attr);
    const got = nextMessages('caught', 1);
    node('w').receive({ payload });
    const [m] = await got;
    assert.equal(await ch.readAttr(attr), before, 'nothing was written');
    assert.equal((m.error as { code?: string }).code, 'EINVAL');
    return m.error?.message ?? '';
  }

  it('text for a numeric attribute', async function () {
    assert.match(await refused('waveform_frequency', 'voltage0', 'fast'), /not a number/);
  });

  it('a fraction for an integer attribute', async function () {
    assert.match(await refused('waveform_amplitude', 'voltage0', 12.5), /not an integer/);
  });

  it('checks ranges [min step max] and lists, and numbers against what the attribute holds', function () {
    const range = parseAvailable('[10 5 100]');
    assert.equal(checkAvailable('15', range), undefined);
    assert.match(checkAvailable('17', range) ?? '', /step 5/);
    assert.match(checkAvailable('105', range) ?? '', /outside/);
    assert.match(checkAvailable('1e', range) ?? '', /not a number/);
    assert.match(checkAvailable('', range) ?? '', /not a number/);
    assert.equal(checkNumeric('12', '7'), undefined);
    assert.equal(checkNumeric('0.25', '1.500000'), undefined);
    assert.match(checkNumeric('1e3', '7') ?? '', /not an integer/);
    assert.match(checkNumeric('NaN', '7') ?? '', /not a number/);
    assert.match(checkNumeric('9007199254740993', '7') ?? '', /too large/);
    // Text attributes take text.
    assert.equal(checkNumeric('square', 'sine'), undefined);
  });
});
