/**
 * `iio-sparkplug` in Node-RED (test helper) against Debian's mosquitto, watched by the test
 * host (test/helpers/sparkplug-host.ts: the specification's rules, an independent decoder):
 * births before data, seq continuity across the 255 → 0 wrap, aliases, every metric's
 * datatype and unit, rebirth on NCMD, coexistence with a capture node on the same device,
 * DCMD writes read back through the library, every kind of bad command answered in the next
 * DDATA/NDATA, a bounded message rate at 100 kS/s, NDEATH with the births' bdSeq on stop.
 */
import assert from 'node:assert/strict';
import type { IioContextNode } from '../../src/nodes/common';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto';
import { PEERS, requirePeer } from '../helpers/peers';
import { DT } from '../helpers/sparkplug-codec';
import { SparkplugHost, type HostEdge } from '../helpers/sparkplug-host';
import {
  IIO_NODES,
  ROOT,
  helper,
  loadFlow,
  nextMessages,
  node,
  type FlowItem,
  type TestMsg,
} from './helpers';

const SPARKPLUG = require(`${ROOT}/nodes/iio-sparkplug.js`) as (red: unknown) => void;
const G = 'Plant';
const DEVICES = ['ad7606-emu', 'ad5689-emu', 'adxl345-emu', 'emu-trig0'];

function flow(url: string, edge: string, intervalMs: number, extra: FlowItem[] = []): FlowItem[] {
  return [
    { id: 'f', type: 'tab' },
    { id: 'ctx', type: 'iio-context', uri: 'emu:', reconnect: 1 },
    {
      id: 'sp',
      type: 'iio-sparkplug',
      z: 'f',
      context: 'ctx',
      broker: url,
      group: G,
      edgeNode: edge,
      keepalive: 5,
      interval: intervalMs,
      wires: [['out']],
    },
    { id: 'out', type: 'helper', z: 'f' },
    ...extra,
  ];
}

function context(): NonNullable<IioContextNode['handle']['context']> {
  const cfg = helper.getNode('ctx') as unknown as IioContextNode;
  const ctx = cfg.handle.context;
  assert.ok(ctx, 'the context is open');
  return ctx;
}

describe('nodes: iio-sparkplug with mosquitto and a Sparkplug host', function () {
  this.timeout(60000);
  let broker: Mosquitto | undefined;
  let host: SparkplugHost | undefined;

  before(async function () {
    requirePeer(this, PEERS.mosquitto);
    broker = await startMosquitto();
    host = await SparkplugHost.connect(broker.url);
  });

  after(async function () {
    await helper.unload();
    await host?.close();
    await broker?.stop();
  });

  describe('births, data, rebirth, a capture node beside it', function () {
    const E = 'edge-fast';
    let e: HostEdge;

    before(async function () {
      await loadFlow(
        [...IIO_NODES, SPARKPLUG],
        flow(broker!.url, E, 25, [
          {
            id: 'cap',
            type: 'iio-capture',
            z: 'f',
            context: 'ctx',
            device: 'iio:device2', // an id, while the edge node names it by label
            samples: 10,
            output: 'buffer',
            wires: [['capOut']],
          },
          { id: 'capOut', type: 'helper', z: 'f' },
        ]),
      );
      e = await host!.waitFor(
        () => {
          const x = host!.edge(G, E);
          return x && DEVICES.every((d) => x.devices.get(d)?.online) ? x : undefined;
        },
        20000,
        'every device born',
      );
    });

    after(() => helper.unload());

    it('births every device of emu: before any data, with the Sparkplug metrics a host needs', function () {
      const log = host!.log.filter((m) => m.edge === E);
      assert.equal(log[0].verb, 'NBIRTH');
      assert.equal(log[0].seq, 0);
      const firstData = log.findIndex((m) => m.verb.endsWith('DATA'));
      const births = log.filter((m, i) => m.verb === 'DBIRTH' && (firstData < 0 || i < firstData));
      assert.deepEqual(births.map((m) => m.device).sort(), [...DEVICES].sort());
      assert.deepEqual(host!.violations, []);
      assert.equal(e.metrics.get('bdSeq')?.datatype, DT.Int64);
      assert.equal(e.metrics.get('Node Control/Rebirth')?.value, false);
      assert.equal(e.metrics.get('Context/URI')?.value, 'emu:');
      assert.equal(e.metrics.get('Context/State')?.value, 'connected');
    });

    it('publishes every channel with the unit of its type, raw, aggregates and attributes as typed metrics', function () {
      const adc = e.devices.get('ad7606-emu')!.metrics;
      const acc = e.devices.get('adxl345-emu')!.metrics;
      const dac = e.devices.get('ad5689-emu')!.metrics;
      for (const ch of ['voltage0', 'voltage1', 'voltage2', 'voltage3']) {
        for (const agg of ['Value', 'Mean', 'Min', 'Max']) {
          const m = adc.get(`Inputs/${ch}/${agg}`);
          assert.equal(m?.datatype, DT.Double, `${ch} ${agg}`);
          assert.equal(m?.properties.engUnit, 'mV', `${ch} ${agg} unit`);
        }
        assert.equal(adc.get(`Inputs/${ch}/Raw`)?.datatype, DT.Int64);
        assert.equal(adc.get(`Inputs/${ch}/Attributes/scale`)?.datatype, DT.Double);
        assert.equal(adc.get(`Inputs/${ch}/Attributes/scale`)?.value, 0.15258789);
        assert.equal(adc.get(`Inputs/${ch}/Attributes/waveform_available`)?.datatype, DT.String);
      }
      assert.equal(adc.get('Inputs/voltage0/Attributes/waveform')?.value, 'sine');
      assert.equal(adc.get('Attributes/sampling_frequency')?.value, 1000);
      assert.equal(adc.get('Device/Id')?.value, 'iio:device0');
      assert.equal(adc.get('Device/Label')?.value, 'emu-adc');
      assert.equal(adc.get('Stream/Sampling Frequency')?.properties.engUnit, 'Hz');
      assert.equal(adc.get('Stream/Scans')?.datatype, DT.UInt64);
      for (const ax of ['x', 'y', 'z']) {
        assert.equal(acc.get(`Inputs/accel_${ax}/Value`)?.properties.engUnit, 'm/s²');
        assert.equal(acc.get(`Inputs/accel_${ax}/Attributes/calibbias`)?.datatype, DT.Double);
      }
      // The timestamp channel is the samples' time, not a metric.
      assert.ok(![...adc.keys()].some((k) => k.includes('timestamp')));
      // The DAC's outputs: their settings, writable.
      assert.equal(dac.get('Outputs/voltage0/Attributes/raw')?.datatype, DT.Double);
      assert.ok(!dac.has('Outputs/voltage0/Value'));
      // Every metric has one of the basic datatypes and its value in that type's field.
      for (const d of e.devices.values())
        for (const m of d.metrics.values())
          assert.ok(
            [DT.Int64, DT.UInt64, DT.Double, DT.String, DT.Boolean].includes(m.datatype as never),
            m.name,
          );
      assert.deepEqual(host!.violations, []);
    });

    it('keeps seq continuous through the 255 → 0 wrap, data by alias only', async function () {
      await host!.waitFor(
        () => {
          const seqs = host!.log
            .filter((m) => m.edge === E && m.seq !== undefined)
            .map((m) => m.seq);
          return seqs.some((s, i) => s === 0 && seqs[i - 1] === 255) || undefined;
        },
        30000,
        'a seq wrap',
      );
      const adc = e.devices.get('ad7606-emu')!;
      // Data arrived as values of the metrics born, with the samples' timestamps.
      const values = adc.data.filter((x) => x.name === 'Inputs/voltage0/Value');
      assert.ok(values.length > 10, `${values.length} voltage0 values`);
      assert.ok(values.every((v) => typeof v.value === 'number' && Math.abs(v.value) <= 5000));
      assert.deepEqual(host!.violations, []);
    });

    it('shares the accelerometer’s buffer with a capture node', async function () {
      const msgs = await nextMessages('capOut', 5, 10000);
      assert.ok(msgs.every((m) => Buffer.isBuffer(m.payload)));
      const cfg = helper.getNode('ctx') as unknown as IioContextNode;
      const hubs = cfg.handle.describe().hubs;
      assert.equal(hubs.filter((h) => h.streaming).length, hubs.length, JSON.stringify(hubs));
      assert.equal(hubs.filter((h) => h.device === 'emu-accel').length, 1);
      const hub = hubs.find((h) => h.device === 'emu-accel');
      assert.equal(hub?.subscribers, 2);
      const before = e.devices.get('adxl345-emu')!.data.length;
      await host!.waitFor(
        () => e.devices.get('adxl345-emu')!.data.length > before + 3,
        10000,
        'accelerometer data',
      );
    });

    it('publishes the births again on NCMD Node Control/Rebirth, same bdSeq, seq from 0', async function () {
      const births = e.births;
      const bdSeq = e.bdSeq;
      const from = host!.log.length;
      await host!.ncmd(G, E, [{ name: 'Node Control/Rebirth', datatype: DT.Boolean, value: true }]);
      await host!.waitFor(
        () => {
          const after = host!.log.slice(from).filter((m) => m.edge === E);
          const nb = after.findIndex((m) => m.verb === 'NBIRTH');
          if (nb < 0) return undefined;
          const db = after.slice(nb).filter((m) => m.verb === 'DBIRTH');
          return db.length === DEVICES.length || undefined;
        },
        15000,
        'a new birth sequence',
      );
      assert.equal(e.births, births + 1);
      assert.equal(e.bdSeq, bdSeq);
      const nbirth = host!.log.slice(from).find((m) => m.edge === E && m.verb === 'NBIRTH')!;
      assert.equal(nbirth.seq, 0);
      assert.deepEqual(host!.violations, []);
    });

    it('publishes NDEATH with the births’ bdSeq before it disconnects on stop', async function () {
      const bdSeq = e.bdSeq;
      const deaths = e.deaths.length;
      await helper.unload();
      await host!.waitFor(() => e.deaths.length > deaths || undefined, 10000, 'NDEATH');
      assert.equal(e.deaths.at(-1)!.bdSeq, bdSeq);
      assert.equal(e.online, false);
      assert.deepEqual(host!.violations, []);
    });
  });

  describe('broker restart', function () {
    const E = 'edge-restart';
    let own: Mosquitto | undefined;
    let watcher: SparkplugHost | undefined;

    after(async function () {
      await helper.unload();
      await watcher?.close();
      await own?.stop();
    });

    it('reconnects with a new bdSeq in the will and births again', async function () {
      own = await startMosquitto();
      watcher = await SparkplugHost.connect(own.url);
      await loadFlow([...IIO_NODES, SPARKPLUG], flow(own.url, E, 200));
      const e = await watcher.waitFor(
        () => {
          const x = watcher!.edge(G, E);
          return x && DEVICES.every((d) => x.devices.get(d)?.online) ? x : undefined;
        },
        20000,
        'every device born',
      );
      const first = e.bdSeq!;
      const port = own.port;
      await own.stop();
      own = await startMosquitto({ port });
      // The host's client reconnects and subscribes again by itself (mqtt.js resubscribe).
      await watcher.waitFor(
        () =>
          (e.birthBdSeqs.length >= 2 && DEVICES.every((d) => e.devices.get(d)?.online)) ||
          undefined,
        30000,
        'births after the restart',
      );
      const second = e.birthBdSeqs.at(-1)!;
      // Every CONNECT (failed ones included) takes the next bdSeq: never the old one again.
      assert.notEqual(second, first);
      assert.ok(
        (second - first + 256) % 256 >= 1 && (second - first + 256) % 256 < 128,
        `${first} → ${second}`,
      );
      assert.equal(e.bdSeq, second);
      assert.deepEqual(watcher.violations, []);
    });
  });

  describe('commands', function () {
    const E = 'edge-cmd';
    let e: HostEdge;
    const outputs: TestMsg[] = [];

    before(async function () {
      await loadFlow([...IIO_NODES, SPARKPLUG], flow(broker!.url, E, 200));
      node('out').on('input', ((m: TestMsg) => outputs.push(m)) as (arg: never) => void);
      e = await host!.waitFor(
        () => {
          const x = host!.edge(G, E);
          return x && DEVICES.every((d) => x.devices.get(d)?.online) ? x : undefined;
        },
        20000,
        'every device born',
      );
    });

    after(() => helper.unload());

    /** Sends a DCMD and resolves with the device's next Last Command/Result. */
    async function answer(
      device: string,
      payload: Parameters<SparkplugHost['dcmd']>[3],
    ): Promise<string> {
      const d = e.devices.get(device)!;
      const from = d.data.length;
      await host!.dcmd(G, E, device, payload);
      const got = await host!.waitFor(
        () => d.data.slice(from).find((x) => x.name === 'Last Command/Result'),
        10000,
        `the answer of ${device}`,
      );
      return String(got.value);
    }

    /** Sends a command answered at node level; resolves with the next Last Command/Result in NDATA. */
    async function nodeAnswer(send: () => Promise<void>): Promise<string> {
      const last = (): { value: unknown; timestamp?: number } | undefined =>
        e.metrics.get('Last Command/Result');
      const before = last()?.timestamp;
      await send();
      // NDATA also carries counters on their own: wait for the one with the answer.
      const got = await host!.waitFor(
        () => (last()?.timestamp !== before ? last() : undefined),
        10000,
        'the answer in NDATA',
      );
      return String(got.value);
    }

    it('writes an attribute by alias (no datatype, as the spec asks); the device has it; DDATA says OK', async function () {
      const alias = host!.alias(G, E, 'ad7606-emu', 'Attributes/sampling_frequency');
      assert.equal(await answer('ad7606-emu', [{ alias, value: 2000 }]), 'OK');
      assert.equal(
        (await context().device('iio:device0').readAttr('sampling_frequency')).trim(),
        '2000',
      );
      const adc = e.devices.get('ad7606-emu')!.metrics;
      assert.equal(adc.get('Attributes/sampling_frequency')?.value, 2000);
      assert.equal(adc.get('Last Command/Metric')?.value, 'Attributes/sampling_frequency');
      assert.equal(adc.get('Commands/Accepted')?.value, 1);
      const out = outputs.at(-1)!.payload as { ok: boolean; readBack: string; metric: string };
      assert.deepEqual(
        [out.ok, out.readBack, out.metric],
        [true, '2000', 'Attributes/sampling_frequency'],
      );
    });

    it('writes a DAC output and a string attribute by name with a datatype', async function () {
      assert.equal(
        await answer('ad5689-emu', [
          { name: 'Outputs/voltage0/Attributes/raw', datatype: DT.Int32, value: -1234 },
        ]),
        'OK',
      );
      assert.equal(
        (await context().device('iio:device1').channel('voltage0', true).readAttr('raw')).trim(),
        '-1234',
      );
      assert.equal(
        await answer('ad7606-emu', [
          { name: 'Inputs/voltage3/Attributes/waveform', datatype: DT.String, value: 'ramp' },
        ]),
        'OK',
      );
      assert.equal(
        (
          await context().device('iio:device0').channel('voltage3', false).readAttr('waveform')
        ).trim(),
        'ramp',
      );
    });

    it('answers every bad command in the next DDATA or NDATA and keeps publishing', async function () {
      const adc = 'ad7606-emu';
      const dac = 'ad5689-emu';
      const cases: Array<[string, () => Promise<string>, RegExp]> = [
        [
          'unknown metric',
          () => answer(adc, [{ name: 'Attributes/nope', datatype: DT.Double, value: 1 }]),
          /^ENOENT: no metric Attributes\/nope on ad7606-emu/,
        ],
        [
          'wrong datatype',
          () =>
            answer(adc, [
              { name: 'Attributes/sampling_frequency', datatype: DT.String, value: '5000' },
            ]),
          /^EINVAL: wrong datatype: Attributes\/sampling_frequency is Double, the command carries String/,
        ],
        [
          'outside _available (checked before writing)',
          () =>
            answer(adc, [
              { name: 'Attributes/sampling_frequency', datatype: DT.Double, value: 1234 },
            ]),
          /^EINVAL: .*sampling_frequency: refused: "1234" is not one of: 100 200 500/,
        ],
        [
          'a value the driver refuses',
          () =>
            answer(dac, [
              { name: 'Outputs/voltage0/Attributes/raw', datatype: DT.Int32, value: 70000 },
            ]),
          /^EINVAL: .*raw.*accepts -32768 to 32767/,
        ],
        [
          'a read-only attribute',
          () =>
            answer(adc, [
              { name: 'Buffer Attributes/data_available', datatype: DT.Double, value: 5 },
            ]),
          /^EACCES/,
        ],
        [
          'a measurement',
          () => answer(adc, [{ name: 'Inputs/voltage0/Value', datatype: DT.Double, value: 5 }]),
          /^EACCES: Inputs\/voltage0\/Value is read-only/,
        ],
        [
          'no value',
          () => answer(adc, [{ name: 'Attributes/sampling_frequency', isNull: true }]),
          /carries no value/,
        ],
        [
          'malformed payload',
          () => answer(adc, Buffer.from('\x12\xff\x01garbage')),
          /^EPROTO: malformed payload/,
        ],
        [
          'an empty payload',
          () => answer(adc, Buffer.alloc(0)),
          /^EINVAL: the command carries no metric/,
        ],
        [
          'an unknown device (NDATA)',
          () =>
            nodeAnswer(() =>
              host!.dcmd(G, E, 'no-such-device', [{ name: 'x', datatype: DT.Double, value: 1 }]),
            ),
          /^ENODEV: no device no-such-device/,
        ],
        [
          'a malformed NCMD (NDATA)',
          () =>
            nodeAnswer(() =>
              host!.client
                .publishAsync(`spBv1.0/${G}/NCMD/${E}`, Buffer.from([0xff]))
                .then(() => undefined),
            ),
          /^EPROTO: malformed payload/,
        ],
        [
          'Rebirth false (NDATA)',
          () =>
            nodeAnswer(() =>
              host!.ncmd(G, E, [
                { name: 'Node Control/Rebirth', datatype: DT.Boolean, value: false },
              ]),
            ),
          /^EINVAL: Node Control\/Rebirth asks for the value true/,
        ],
      ];
      for (const [what, send, want] of cases) assert.match(await send(), want, what);
      // The refused values never reached the devices.
      assert.equal(
        (await context().device('iio:device0').readAttr('sampling_frequency')).trim(),
        '2000',
      );
      assert.equal(
        (await context().device('iio:device1').channel('voltage0', true).readAttr('raw')).trim(),
        '-1234',
      );
      assert.equal(e.devices.get(adc)!.metrics.get('Commands/Refused')?.value, 8);
      assert.equal(e.devices.get(dac)!.metrics.get('Commands/Refused')?.value, 1);
      assert.equal(e.metrics.get('Stats/Commands Refused')?.value, 12);
      // One output message per handled command metric, with the errno of each refusal.
      const refused = outputs.filter((m) => !(m.payload as { ok: boolean }).ok);
      assert.equal(refused.length, 12);
      // Still alive: data keeps coming, and nothing broke the protocol.
      const d = e.devices.get('adxl345-emu')!;
      const n = d.data.length;
      await host!.waitFor(() => d.data.length > n + 3, 10000, 'data after the bad commands');
      assert.deepEqual(host!.violations, []);
    });

    it('keeps one DDATA per interval at 100 kS/s, each aggregating thousands of scans', async function () {
      assert.equal(
        await answer('ad7606-emu', [
          { name: 'Attributes/sampling_frequency', datatype: DT.Double, value: 100000 },
        ]),
        'OK',
      );
      const d = e.devices.get('ad7606-emu')!;
      // Let the stream restart at the new rate, then watch 2 s of DDATA.
      await host!.waitFor(
        () =>
          d.data.some((x) => x.name === 'Stream/Sampling Frequency' && x.value === 100000) ||
          undefined,
        10000,
        'the new rate',
      );
      const from = host!.log.length;
      const fromData = d.data.length;
      await new Promise((r) => setTimeout(r, 2000));
      const msgs = host!.log
        .slice(from)
        .filter((m) => m.edge === E && m.device === 'ad7606-emu' && m.verb === 'DDATA');
      const span = msgs.at(-1)!.receivedAt - msgs[0].receivedAt;
      // The interval is 200 ms: about span/200 messages, never one per block or per sample.
      assert.ok(msgs.length >= 3, `${msgs.length} DDATA`);
      assert.ok(msgs.length <= Math.ceil(span / 200) + 2, `${msgs.length} DDATA in ${span} ms`);
      const scans = d.data
        .slice(fromData)
        .filter((x) => x.name === 'Stream/Scans')
        .map((x) => Number(x.value));
      assert.ok(scans.length >= 3);
      // 100 kS/s × 200 ms = 20000 scans per message (the first may straddle the restart).
      for (const s of scans.slice(1)) assert.ok(s >= 10000, `${s} scans in one DDATA`);
      assert.deepEqual(host!.violations, []);
    });
  });
});
