/**
 * The Sparkplug edge node's pieces without a broker: what the node encodes (Tahu's code)
 * read back by the test host's independent decoder (protobufjs + the schema written from
 * the specification) and the other way round for commands; the per-interval statistics;
 * the datatype rules of commands; topics and aliases.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IioError } from '../../src/errors';
import { commandValue } from '../../src/nodes/sparkplug/commands';
import { catalogueTranslate } from '../../src/nodes/sparkplug/messages';
import {
  ChannelStats,
  Metric,
  MetricSet,
  attrType,
  attrValue,
} from '../../src/nodes/sparkplug/metrics';
import { decodeCommand, encodeBirth, encodeData } from '../../src/nodes/sparkplug/payload';
import { invalidId, parseCommandTopic } from '../../src/nodes/sparkplug/topics';
import { DT, hostDecode, hostEncode } from '../helpers/sparkplug-codec';

const t = catalogueTranslate();

describe('unit: Sparkplug payloads, Tahu encoder → independent decoder', function () {
  it('a birth: names, aliases, datatypes, values (negative Int64, null), engUnit property, seq', function () {
    const bytes = encodeBirth(1700000000123, 0, [
      { name: 'bdSeq', alias: 1, type: 'Int64', value: 7, timestamp: 1700000000001 },
      { name: 'Node Control/Rebirth', type: 'Boolean', value: false, timestamp: 1700000000002 },
      { name: 'Inputs/voltage0/Raw', alias: 2, type: 'Int64', value: -12345, timestamp: 3 },
      {
        name: 'Inputs/voltage0/Value',
        alias: 3,
        type: 'Double',
        value: -1.5,
        timestamp: 4,
        properties: { engUnit: { type: 'String', value: 'mV' } },
      },
      { name: 'Stream/Scans', alias: 4, type: 'UInt64', value: 2 ** 40, timestamp: 5 },
      { name: 'Attributes/label', alias: 5, type: 'String', value: 'über', timestamp: 6 },
      { name: 'Attributes/broken', alias: 6, type: 'String', value: null, timestamp: 7 },
    ]);
    const p = hostDecode(bytes);
    assert.equal(p.timestamp, '1700000000123');
    assert.equal(p.seq, '0');
    const m = p.metrics!;
    assert.deepEqual(
      m.map((x) => [x.name, x.alias, x.datatype, x.value]),
      [
        ['bdSeq', '1', DT.Int64, 'longValue'],
        ['Node Control/Rebirth', undefined, DT.Boolean, 'booleanValue'],
        ['Inputs/voltage0/Raw', '2', DT.Int64, 'longValue'],
        ['Inputs/voltage0/Value', '3', DT.Double, 'doubleValue'],
        ['Stream/Scans', '4', DT.UInt64, 'longValue'],
        ['Attributes/label', '5', DT.String, 'stringValue'],
        ['Attributes/broken', '6', DT.String, undefined],
      ],
    );
    assert.equal(m[0].longValue, '7');
    assert.equal(m[1].booleanValue, false);
    // Int64 travels as uint64 two's complement.
    assert.equal(BigInt.asIntN(64, BigInt(m[2].longValue as string)), -12345n);
    assert.equal(m[3].doubleValue, -1.5);
    assert.deepEqual(m[3].properties?.keys, ['engUnit']);
    assert.equal(m[3].properties?.values?.[0].stringValue, 'mV');
    assert.equal(m[3].properties?.values?.[0].type, DT.String);
    assert.equal(m[4].longValue, String(2 ** 40));
    assert.equal(m[5].stringValue, 'über');
    assert.equal(m[6].isNull, true);
    assert.equal(m[0].timestamp, '1700000000001');
  });

  it('a death has no seq; data carries aliases, timestamps and values but no names or datatypes', function () {
    const death = hostDecode(
      encodeBirth(10, undefined, [{ name: 'bdSeq', type: 'Int64', value: 255, timestamp: 10 }]),
    );
    assert.equal(death.seq, undefined);
    assert.equal(death.metrics?.[0].longValue, '255');
    const data = hostDecode(
      encodeData(20, 255, [
        { alias: 9, type: 'Double', value: 2.25, timestamp: 19 },
        { alias: 10, type: 'UInt64', value: 3, timestamp: 18 },
        { alias: 11, type: 'Double', value: NaN, timestamp: 17 },
        { alias: 12, type: 'String', value: 'OK', timestamp: 16 },
      ]),
    );
    assert.equal(data.seq, '255');
    for (const m of data.metrics!) {
      assert.equal(m.name, undefined);
      assert.equal(m.datatype, undefined);
      assert.ok(m.timestamp);
    }
    assert.deepEqual(
      data.metrics!.map((m) => [m.alias, m.value]),
      [
        ['9', 'doubleValue'],
        ['10', 'longValue'],
        ['11', undefined],
        ['12', 'stringValue'],
      ],
    );
    assert.equal(data.metrics![2].isNull, true);
  });

  it('commands encoded by the host decode in the node: alias only, no datatype, signed Int32, strings', function () {
    const c = decodeCommand(
      hostEncode([
        { alias: 42, value: 1000 },
        { name: 'Outputs/voltage0/Attributes/raw', datatype: DT.Int32, value: -5 },
        { name: 'Inputs/voltage0/Attributes/waveform', datatype: DT.String, value: 'ramp' },
        { name: 'Node Control/Rebirth', datatype: DT.Boolean, value: true },
        { name: 'x', isNull: true },
      ]),
    );
    const [a, b, s, r, n] = c.metrics;
    assert.deepEqual(
      [a.alias, a.name, a.datatype, a.field, a.value],
      [42, undefined, undefined, 'doubleValue', 1000],
    );
    assert.equal(commandValue('Double', 'x', a, t), 1000);
    assert.equal(commandValue('Double', 'raw', b, t), -5);
    assert.equal(commandValue('String', 'waveform', s, t), 'ramp');
    assert.equal(commandValue('Boolean', 'Node Control/Rebirth', r, t), true);
    assert.throws(() => commandValue('Double', 'x', n, t), /EINVAL.*carries no value/);
  });

  it('a malformed command payload is an error, not a crash', function () {
    assert.throws(() => decodeCommand(Buffer.from('not a protobuf at all')));
    assert.throws(() => decodeCommand(Buffer.from([0x12, 0xff])));
  });
});

describe('unit: Sparkplug command datatypes', function () {
  const cmd = (m: Parameters<typeof hostEncode>[0][0]) => decodeCommand(hostEncode([m])).metrics[0];

  it('refuses a String for a Double metric, naming both types', function () {
    assert.throws(
      () =>
        commandValue(
          'Double',
          'Attributes/sampling_frequency',
          cmd({ alias: 1, datatype: DT.String, value: '2000' }),
          t,
        ),
      (e: unknown) =>
        e instanceof IioError &&
        e.code === 'EINVAL' &&
        /sampling_frequency is Double, the command carries String/.test(e.message),
    );
  });

  it('refuses a number for a String metric and a Double for the Boolean rebirth', function () {
    assert.throws(
      () => commandValue('String', 'w', cmd({ alias: 1, datatype: DT.Double, value: 1 }), t),
      /String, the command carries Double/,
    );
    assert.throws(
      () => commandValue('Boolean', 'r', cmd({ alias: 1, datatype: DT.Double, value: 1 }), t),
      /Boolean, the command carries Double/,
    );
  });

  it('refuses a numeric field whose datatype says String', function () {
    const m = { ...cmd({ alias: 1, datatype: DT.Double, value: 1 }), datatype: DT.String };
    assert.throws(() => commandValue('Double', 'x', m, t), /carries String/);
  });

  it('takes any integer or floating datatype for a Double metric', function () {
    for (const [dt, v] of [
      [DT.Int8, -3],
      [DT.Int16, -300],
      [DT.Int32, -70000],
      [DT.UInt16, 60000],
      [DT.Int64, -5000000000],
      [DT.UInt64, 5000000000],
      [DT.Float, 0.5],
      [DT.Double, 1e-9],
    ] as const) {
      assert.equal(
        commandValue('Double', 'x', cmd({ alias: 1, datatype: dt, value: v }), t),
        v,
        `datatype ${dt}`,
      );
    }
  });
});

describe('unit: Sparkplug statistics, topics, aliases', function () {
  it('per-interval statistics equal a direct computation over all blocks', function () {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: -32768, max: 32767 }), { maxLength: 64 }), {
          minLength: 1,
          maxLength: 8,
        }),
        (blocks) => {
          const s = new ChannelStats();
          for (const b of blocks) s.add(Float64Array.from(b), b.length);
          const all = blocks.flat();
          assert.equal(s.count, all.length);
          if (all.length === 0) return;
          assert.equal(
            s.sum,
            all.reduce((a, b) => a + b, 0),
          );
          assert.equal(s.min, Math.min(...all));
          assert.equal(s.max, Math.max(...all));
          assert.equal(
            s.last,
            [...blocks]
              .reverse()
              .find((b) => b.length)!
              .at(-1),
          );
        },
      ),
    );
  });

  it('command topics: only this edge node’s NCMD and DCMD/<device>', function () {
    assert.deepEqual(parseCommandTopic('spBv1.0/G/NCMD/E', 'G', 'E'), { verb: 'NCMD' });
    assert.deepEqual(parseCommandTopic('spBv1.0/G/DCMD/E/ad7606-emu', 'G', 'E'), {
      verb: 'DCMD',
      device: 'ad7606-emu',
    });
    for (const other of [
      'spBv1.0/G/NCMD/F',
      'spBv1.0/H/NCMD/E',
      'spBv1.0/G/DCMD/E',
      'spBv1.0/G/NDATA/E',
      'spAv1.0/G/NCMD/E',
      'spBv1.0/G/DCMD/E/a/b',
    ]) {
      assert.equal(parseCommandTopic(other, 'G', 'E'), undefined, other);
    }
    assert.equal(invalidId('plant+1'), 'contains + / or #');
    assert.equal(invalidId('a/b'), 'contains + / or #');
    assert.equal(invalidId(''), 'empty');
    assert.equal(invalidId('iio:device0'), undefined);
  });

  it('aliases are unique across sets; the rebirth metric has none', function () {
    const node = new MetricSet();
    node.add(new Metric('bdSeq', 'Int64'));
    node.add(new Metric('Node Control/Rebirth', 'Boolean', { noAlias: true }));
    const dev = new MetricSet();
    for (let i = 0; i < 5; i++) dev.add(new Metric(`m${i}`, 'Double'));
    const next = dev.assignAliases(node.assignAliases(1));
    const all = [...node.list, ...dev.list].filter((m) => !m.options.noAlias).map((m) => m.alias);
    assert.equal(new Set(all).size, all.length);
    assert.equal(next, 7);
    assert.equal(node.find('Node Control/Rebirth', undefined)?.alias, 0);
    assert.equal(dev.find(undefined, 3)?.name, 'm1');
    assert.equal(dev.find('m3', undefined)?.alias, 5);
  });

  it('attribute values become Double when they are one number, else String', function () {
    assert.equal(attrType('1000'), 'Double');
    assert.equal(attrType(' 0.152587890\n'), 'Double');
    assert.equal(attrType('100 200 500'), 'String');
    assert.equal(attrType('sine'), 'String');
    assert.equal(attrType(undefined), 'String');
    assert.equal(attrValue('0.5', 'Double'), 0.5);
    assert.equal(attrValue('sine', 'Double'), null);
    assert.equal(attrValue('sine\n', 'String'), 'sine');
  });
});
