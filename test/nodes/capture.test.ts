/**
 * iio-capture on emu: (live emulated ADC), through the real Node-RED 4 runtime: the three
 * output shapes, zero copy, the shared per-device hub, flow control, errors and close.
 */
import assert from 'node:assert/strict';
import type { IioContextNode } from '../../src/nodes/common';
import type { ChannelMeta } from '../../src/nodes/capture-message';
import {
  IIO_NODES,
  coreNode,
  helper,
  loadFlow,
  nextMessages,
  statusMatching,
  type FlowItem,
  type TestMsg,
  CATCH_TO_HELPER,
} from './helpers';

const CATCH = coreNode('common/25-catch.js');
const ADC = 'iio:device0';
/** The emulated ADC's `scale` (docs/emu.md): ±5 V over 16 bits, in mV. */
const ADC_SCALE_MV = 0.15258789;

function ctxNode(id = 'ctx', uri = 'emu:'): FlowItem {
  return { id, type: 'iio-context', uri, reconnect: 0 };
}

function capture(
  id: string,
  extra: Record<string, unknown>,
  wires: string[][] = [['out']],
): FlowItem {
  return { id, type: 'iio-capture', context: 'ctx', device: ADC, samples: 64, wires, ...extra };
}

interface Meta {
  device: string;
  channels: ChannelMeta[];
  scanBytes: number;
  samples: number;
  seq: number;
  dropped: number;
  lost: number;
  timestamp: number;
  samplingFrequency?: number;
}

const meta = (m: TestMsg): Meta => m.iio as unknown as Meta;

describe('nodes: iio-capture on emu:', function () {
  afterEach(() => helper.unload());

  it('sends raw scans in a Buffer with the layout to decode them', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      capture('cap', { channels: 'voltage0,voltage2' }),
      { id: 'out', type: 'helper' },
    ]);
    const msgs = await nextMessages('out', 3);
    const im0 = meta(msgs[0]);
    for (const m of msgs) {
      const im = meta(m);
      assert.ok(Buffer.isBuffer(m.payload));
      const buf = m.payload as Buffer;
      assert.equal(im.samples, 64);
      assert.equal(buf.length, im.samples * im.scanBytes);
      assert.deepEqual(
        im.channels.map((c) => c.id),
        ['voltage0', 'voltage2'],
      );
      // Each channel's scale/offset are the device's own (docs/emu.md: 0.152587890 mV, no
      // offset).
      for (const c of im.channels) {
        assert.equal(c.scale, ADC_SCALE_MV);
        assert.equal(c.offset, 0);
        assert.equal(c.unit, 'mV');
      }
      assert.equal(im.device, ADC);
      assert.equal(m.topic, 'ad7606-emu');
      assert.equal(im.dropped, 0);
      // Two s16 channels: 2-byte aligned, one after the other, no padding.
      assert.equal(im.scanBytes, 4);
      assert.deepEqual(
        im.channels.map((c) => c.byteOffset),
        [0, 2],
      );
    }
    assert.deepEqual(
      msgs.map((m) => meta(m).seq),
      [meta(msgs[0]).seq, meta(msgs[0]).seq + 1, meta(msgs[0]).seq + 2],
    );
    // msg.iio's keys, in the order docs/nodes.md lists them (built as one fixed literal)
    assert.deepEqual(Object.keys(msgs[0].iio as object), [
      'context',
      'device',
      'deviceName',
      'channels',
      'scanBytes',
      'samples',
      'seq',
      'dropped',
      'skipped',
      'lost',
      'timestamp',
      'samplingFrequency',
      'release',
    ]);
    // Buffer payloads carry release(), for the flow to give the block back.
    const release = (msgs[0].iio as { release?: unknown }).release;
    assert.equal(typeof release, 'function');
    // One channel layout shared by every message of the stream, frozen so that no node
    // can change it under the others.
    assert.equal(meta(msgs[1]).channels, meta(msgs[0]).channels);
    assert.ok(Object.isFrozen(im0.channels) && im0.channels.every((c) => Object.isFrozen(c)));
    // Our own _msgid (Node-RED's generateId is costly): 16 hex digits, one per message.
    const ids = msgs.map((m) => m._msgid as string);
    for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
    assert.equal(new Set(ids).size, ids.length);
    // Decoded, the bytes are the emulator's waveforms: voltage0 a 10 Hz sine of amplitude
    // 16000 (not flat), voltage2 a triangle of amplitude 12000.
    const im = meta(msgs[0]);
    const v0 = msgs.flatMap((m) => readColumn(m.payload as Buffer, im, 'voltage0'));
    assert.ok(Math.max(...v0) - Math.min(...v0) > 100, 'voltage0 varies');
    assert.ok(
      v0.every((v) => Math.abs(v) <= 16000),
      'voltage0 within its amplitude',
    );
    const v2 = msgs.flatMap((m) => readColumn(m.payload as Buffer, im, 'voltage2'));
    assert.ok(
      v2.every((v) => Math.abs(v) <= 12000),
      'voltage2 within its amplitude',
    );
  });

  it('sends per-channel arrays, raw and scaled, equal to decoding the same scans', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      capture('capRaw', { channels: 'voltage1', output: 'channels', values: 'raw' }, [['out']]),
      capture('capBuf', { channels: 'voltage1' }, [['outbuf']]),
      capture('capSi', { channels: 'voltage1', output: 'channels', values: 'si' }, [['outsi']]),
      { id: 'out', type: 'helper' },
      { id: 'outbuf', type: 'helper' },
      { id: 'outsi', type: 'helper' },
    ]);
    const [raws, bufs, sis] = await Promise.all([
      nextMessages('out', 4),
      nextMessages('outbuf', 4),
      nextMessages('outsi', 4),
    ]);
    // The three nodes share one kernel buffer: the same block number carries the same scans.
    const bySeq = (list: TestMsg[]): Map<number, TestMsg> =>
      new Map(list.map((m) => [meta(m).seq, m]));
    const b = bySeq(bufs);
    const s = bySeq(sis);
    let compared = 0;
    for (const r of raws) {
      const seq = meta(r).seq;
      const rb = b.get(seq);
      const rs = s.get(seq);
      if (!rb || !rs) continue;
      assert.equal(meta(rb).scanBytes, 2, 'one s16 channel');
      const fromBuffer = readColumn(rb.payload as Buffer, meta(rb), 'voltage1');
      // voltage1 is a square wave of amplitude 8000: only ±8000.
      assert.ok(
        fromBuffer.every((v) => v === 8000 || v === -8000),
        `voltage1: ${fromBuffer.slice(0, 8).join(' ')}`,
      );
      const raw = (r.payload as Record<string, number[]>).voltage1;
      assert.deepEqual(raw, fromBuffer);
      const si = (rs.payload as Record<string, number[]>).voltage1;
      assert.deepEqual(
        si,
        raw.map((v) => v * ADC_SCALE_MV),
      );
      compared++;
    }
    assert.ok(compared >= 1, 'at least one block compared across the three nodes');
  });

  it('shares one buffer per device between capture nodes (union of channels)', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      capture('a', { channels: 'voltage0' }, [['outa']]),
      capture('b', { channels: 'voltage3', output: 'channels' }, [['outb']]),
      { id: 'outa', type: 'helper' },
      { id: 'outb', type: 'helper' },
    ]);
    const [a, bm] = await Promise.all([nextMessages('outa', 2), nextMessages('outb', 2)]);
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    assert.equal(cfg.handle.hubCount, 1);
    assert.equal(cfg.handle.findHub(ADC)?.subscriberCount, 2);
    // The raw payload carries both channels (the union), and says so.
    assert.deepEqual(
      meta(a[0]).channels.map((c) => c.id),
      ['voltage0', 'voltage3'],
    );
    assert.deepEqual(Object.keys(bm[0].payload as object), ['voltage3']);
  });

  it('sends Dashboard 2 chart points, decimated, with x in ms and a series per channel', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      capture('c', {
        channels: 'voltage0,voltage1',
        output: 'chart',
        chartPoints: 16,
        samples: 128,
        values: 'si',
        interval: 0,
      }),
      { id: 'out', type: 'helper' },
    ]);
    const [m] = await nextMessages('out', 1);
    const pts = m.payload as Array<{ x: number; y: number; series: string }>;
    assert.ok(Array.isArray(pts));
    assert.equal(m.action, 'replace');
    const series = [...new Set(pts.map((p) => p.series))];
    assert.deepEqual(series, ['voltage0', 'voltage1']);
    for (const sname of series) {
      const own = pts.filter((p) => p.series === sname);
      assert.ok(own.length <= 16 && own.length >= 8, `${own.length} points`);
      for (let i = 1; i < own.length; i++) assert.ok(own[i].x >= own[i - 1].x);
      assert.ok(own.every((p) => Number.isFinite(p.y)));
    }
    const now = Date.now();
    assert.ok(Math.abs(pts[pts.length - 1].x - now) < 60000, 'x is a time in ms');
  });

  it('drops blocks beyond "max in flight" and counts them in msg.iio.dropped and the status', async function () {
    // A function node that blocks the event loop makes delivery fall behind the device.
    const FUNCTION = coreNode('function/10-function.js');
    await loadFlow(
      [...IIO_NODES, FUNCTION],
      [
        ctxNode(),
        capture('cap', { channels: 'voltage0', samples: 16, maxInFlight: 1, frequency: 20000 }, [
          ['slow'],
        ]),
        {
          id: 'slow',
          type: 'function',
          func: 'const t = Date.now(); while (Date.now() - t < 30) {} return msg;',
          outputs: 1,
          wires: [['out']],
        },
        { id: 'out', type: 'helper' },
      ],
    );
    const status = statusMatching('cap', (st) => /dropped/.test(st.text ?? ''), 15000);
    const seen: TestMsg[] = [];
    while (seen.length < 40 && !seen.some((m) => meta(m).dropped > 0)) {
      seen.push(...(await nextMessages('out', 1, 15000)));
    }
    const withDrops = seen.find((m) => meta(m).dropped > 0);
    assert.ok(withDrops, 'a message reports drops');
    const st = await status;
    assert.equal(st.fill, 'yellow');
  });

  it('sends a missing device to Catch (ENODEV) and keeps running', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [ctxNode(), { ...capture('cap', {}), device: 'no-such-device', z: 'f' }, ...CATCH_TO_HELPER],
    );
    const [msg] = await nextMessages('caught', 1);
    assert.match(msg.error?.message ?? '', /ENODEV/);
    assert.match(msg.error?.message ?? '', /no-such-device/);
    assert.equal(msg.error?.source?.id, 'cap');
  });

  it('rejects a bad configuration with a catchable error and a red status', async function () {
    await loadFlow(
      [...IIO_NODES, CATCH],
      [ctxNode(), { ...capture('cap', { samples: 'lots' }), z: 'f' }, ...CATCH_TO_HELPER],
    );
    const [msg] = await nextMessages('caught', 1);
    assert.match(msg.error?.message ?? '', /samples per block/);
  });

  it('closes the buffer and the context when the flow stops', async function () {
    await loadFlow(IIO_NODES, [
      ctxNode(),
      capture('cap', { channels: 'voltage0' }),
      { id: 'out', type: 'helper' },
    ]);
    await nextMessages('out', 1);
    const cfg = helper.getNode('ctx') as unknown as IioContextNode;
    const hub = cfg.handle.findHub(ADC)!;
    assert.equal(hub.isStreaming, true);
    const ctx = await cfg.handle.ready();
    await helper.unload();
    assert.equal(hub.isStreaming, false);
    assert.equal(cfg.handle.hubCount, 0);
    assert.equal(ctx.isClosed, true);
  });
});

/** Decodes one channel's raw values from a Buffer payload with only msg.iio. */
/**
 * One channel's raw values, decoded by hand: the emulated ADC's channels are s16
 * little-endian (ad7606-emu), which msg.iio must say; where each one sits in the scan is
 * checked by the tests against the kernel's layout rules.
 */
function readColumn(buf: Buffer, im: Meta, id: string): number[] {
  const c = im.channels.find((x) => x.id === id);
  assert.ok(c, `channel ${id} in msg.iio.channels`);
  assert.equal(c.format, 'le:S16/16>>0', `${id} is the ADC's s16`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const out: number[] = [];
  for (let off = c.byteOffset; off + 2 <= buf.length; off += im.scanBytes)
    out.push(view.getInt16(off, true));
  return out;
}
