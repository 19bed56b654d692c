/**
 * The public API end to end on `local:` over a FIFO-backed device: createBuffer,
 * refill, channelData (raw and SI), stream, push, cyclic. The test plays the hardware.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createContext } from '../../src/create-context';
import { convertInverse } from '../../src/format/convert';
import type { Context } from '../../src/model/context';
import { makeFifoDevice, type FakeDevice } from '../helpers/fifo-device';

describe('local: buffers through the public API (FIFO-backed device)', function () {
  let dev: FakeDevice;
  let ctx: Context | undefined;

  afterEach(async () => {
    await ctx?.close();
    ctx = undefined;
    dev?.cleanup();
  });

  it('decodes channelData raw and in SI units with the channel scale and offset', async () => {
    dev = makeFifoDevice({
      name: 'adc',
      channels: [
        {
          stem: 'in_voltage0',
          index: 0,
          type: 'le:s16/16>>0',
          attrs: { scale: '0.5', offset: '3' },
        },
        { stem: 'in_voltage1', index: 1, type: 'be:u12/16>>4', attrs: { scale: '2' } },
      ],
    });
    ctx = await createContext('local:', { sysfsRoot: dev.sysfsRoot, devDir: dev.devDir });
    const adc = ctx.device('adc');
    const buf = await adc.createBuffer(8, { channels: ['voltage0', 'voltage1'] });
    assert.equal(buf.scanBytes, 4);
    const v0 = [-32768, -1, 0, 1, 7, 300, 32767, -5];
    const v1 = [0, 1, 2, 4095, 100, 2048, 7, 4000];
    const scans = Buffer.alloc(8 * 4);
    const f0 = adc.channel('voltage0').format!;
    const f1 = adc.channel('voltage1').format!;
    v0.forEach((v, i) => convertInverse(v, scans, i * 4, f0));
    v1.forEach((v, i) => convertInverse(v, scans, i * 4 + 2, f1));
    createWriteStream(dev.devNode).end(scans);
    const data = await buf.refill();
    assert.ok(data.equals(scans));
    assert.deepEqual(buf.channelData('voltage0'), v0);
    assert.deepEqual(buf.channelData('voltage1'), v1);
    assert.deepEqual(
      buf.channelData('voltage0', { si: true }),
      v0.map((v) => (v + 3) * 0.5),
    );
    assert.deepEqual(
      buf.channelData('voltage1', { si: true }),
      v1.map((v) => v * 2),
    );
    assert.deepEqual(buf.scaleOf('voltage0'), { scale: 0.5, offset: 3 });
    await buf.close();
    assert.equal(dev.read('buffer0/enable'), '0');
    await assert.rejects(buf.refill(), /EBADF/);
  });

  it('stream() yields numbered blocks of whole scans until closed', async () => {
    dev = makeFifoDevice({
      name: 'adc',
      channels: [{ stem: 'in_voltage0', index: 0, type: 'le:u16/16>>0' }],
    });
    ctx = await createContext('local:', { sysfsRoot: dev.sysfsRoot, devDir: dev.devDir });
    const buf = await ctx.device('adc').createBuffer(100, { channels: ['voltage0'] });
    const values = Array.from({ length: 1000 }, (_, i) => (i * 37) & 0xffff);
    const raw = Buffer.alloc(2000);
    values.forEach((v, i) => raw.writeUInt16LE(v, i * 2));
    createWriteStream(dev.devNode).end(raw);
    const got: number[] = [];
    const seqs: number[] = [];
    for await (const block of buf.stream()) {
      assert.equal(block.samples, 100);
      seqs.push(block.seq);
      got.push(...(buf.channelData('voltage0', { data: block.data }) as number[]));
      block.release();
      if (got.length === values.length) break;
    }
    assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(got, values);
    await buf.close();
  });

  it('stats(): blocks waiting for JS, held by JS, copies, mode; readable after close', async () => {
    dev = makeFifoDevice({
      name: 'adc',
      channels: [{ stem: 'in_voltage0', index: 0, type: 'le:u16/16>>0' }],
    });
    ctx = await createContext('local:', { sysfsRoot: dev.sysfsRoot, devDir: dev.devDir });
    const buf = await ctx.device('adc').createBuffer(100, { channels: ['voltage0'], blocks: 4 });
    createWriteStream(dev.devNode).end(Buffer.alloc(10 * 200, 7));
    const it = buf.stream()[Symbol.asyncIterator]();
    const held = [];
    for (let i = 0; i < 2; i++) {
      const r = await it.next();
      assert.ok(!r.done);
      held.push(r.value);
    }
    // The thread fills JS's queue (4 places) behind the two blocks held.
    for (let i = 0; i < 500 && (buf.stats().transfer?.waiting ?? 0) < 4; i++)
      await new Promise((r) => setTimeout(r, 10));
    let s = buf.stats();
    assert.equal(s.transfer?.mode, 'fileio', 'a FIFO device has no DMABUF');
    assert.equal(s.transfer?.waiting, 4, 'queue full');
    assert.equal(s.transfer?.held, 2, 'the two blocks taken');
    assert.equal(s.transfer?.blocks, 6, 'handed over');
    assert.equal(s.transfer?.copies, 0);
    assert.equal(s.transfer?.inFlight, 0, 'read() keeps no block in the kernel');
    assert.equal(s.blocks, 2, 'read by stream()');
    assert.equal(s.lost, 0);
    for (const b of held) b.release();
    assert.equal(buf.stats().transfer?.held, 0, 'released');
    for (let i = 2; i < 10; i++) {
      const r = await it.next();
      assert.ok(!r.done);
      r.value.release();
    }
    await it.return?.(undefined);
    s = buf.stats();
    assert.deepEqual([s.blocks, s.transfer?.waiting, s.transfer?.held], [10, 0, 0]);
    await buf.close();
    s = buf.stats();
    assert.equal(s.transfer?.blocks, 10, 'still readable after close');
    assert.equal(s.transfer?.bytes, 2000);
  });

  it('push() plays scans on an output device, cyclic too', async () => {
    dev = makeFifoDevice({
      name: 'dac',
      channels: [
        { stem: 'out_voltage0', index: 0, type: 'le:s16/16>>0' },
        { stem: 'out_voltage1', index: 1, type: 'le:s16/16>>0' },
      ],
    });
    ctx = await createContext('local:', { sysfsRoot: dev.sysfsRoot, devDir: dev.devDir });
    const dac = ctx.device('dac');
    const read = (n: number): Promise<Buffer> =>
      new Promise((resolve) => {
        const p = spawn('head', ['-c', String(n), dev.devNode]);
        const chunks: Buffer[] = [];
        p.stdout.on('data', (c: Buffer) => chunks.push(c));
        p.on('close', () => resolve(Buffer.concat(chunks)));
      });
    const scans = Buffer.alloc(64 * 4);
    for (let i = 0; i < 64; i++) {
      scans.writeInt16LE(i * 100 - 3000, i * 4);
      scans.writeInt16LE(-i, i * 4 + 2);
    }
    let buf = await dac.createBuffer(64, { channels: ['voltage0', 'voltage1'], isOutput: true });
    assert.ok(buf.isOutput);
    const consumer = read(scans.length * 3);
    for (let k = 0; k < 3; k++) await buf.push(scans);
    assert.ok((await consumer).equals(Buffer.concat([scans, scans, scans])));
    await assert.rejects(buf.push(scans.subarray(0, 5)), /EINVAL.*whole scans/);
    await buf.close();

    buf = await dac.createBuffer(64, { channels: ['voltage0', 'voltage1'], cyclic: true });
    const cyclic = read(scans.length * 5);
    await buf.push(scans);
    assert.ok((await cyclic).equals(Buffer.concat(Array(5).fill(scans))));
    await buf.close();
    assert.equal(dev.read('buffer0/enable'), '0');
  });
});
