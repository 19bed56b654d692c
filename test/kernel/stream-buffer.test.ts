/**
 * The buffer layer on the VM's real kernel: buffer fd and DMABUF fallback per kernel,
 * the DMA heap on its own, busy devices, and loopback_dac → loopback_adc through the
 * library (push, capture, decoded values against sysfs) and through `iiokit writedev`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { LocalBackendBuffer } from '../../src/backends/local/buffer';
import { createContext } from '../../src/create-context';
import type { IioError } from '../../src/errors';
import type { IioBuffer } from '../../src/model/buffer';
import type { Context } from '../../src/model/context';
import { loadNative } from '../../src/native';
import { iiokitBinary } from '../helpers/cli';
import { captureInTerminatedWorker } from '../helpers/dma-vm';
import { PEERS, requirePeer } from '../helpers/peers';

const kernel = process.env.IIO_VM_KERNEL ?? '6.1';
const backendBuffer = (b: IioBuffer): LocalBackendBuffer =>
  (b as unknown as { raw: LocalBackendBuffer }).raw;
const sysfs = (p: string): string => readFileSync(p, 'utf8').trim();

describe(`kernel ${kernel}: local buffers`, function () {
  let ctx: Context;

  before(async function () {
    requirePeer(this, PEERS.vm);
    // A loaded host slows the emulated VM down: give blocks time to fill.
    ctx = await createContext('local:', { timeoutMs: 10000 });
    await ctx.device('hrtimer0').writeAttr('sampling_frequency', 1000);
    await ctx.device('hrtimer1').writeAttr('sampling_frequency', 1000);
  });
  after(async () => ctx?.close());

  it('streams through IIO_BUFFER_GET_FD_IOCTL and falls back from DMABUF silently', async () => {
    const buf = await ctx
      .device('dummy0')
      .createBuffer(16, { channels: ['voltage0'], trigger: 'hrtimer0' });
    // (closed in finally: a failing test must not leave the device busy for the next)
    try {
      const t = backendBuffer(buf).transport;
      assert.equal(t.fd, 'buffer-fd');
      // 6.1 buffer fds have no ioctls at all (ENOTTY); 6.12's kfifo refuses DMABUF (EPERM).
      assert.deepEqual(t.dmabuf, {
        tried: true,
        ok: false,
        code: kernel === '6.12' ? 'EPERM' : 'ENOTTY',
        op: 'attach',
      });
      assert.equal(backendBuffer(buf).stream.stats().mode, 'fileio');
      const data = await buf.refill();
      assert.equal(data.length, 32);
    } finally {
      await buf.close();
    }
  });

  it('a Worker terminated while it captures: no crash, its stream thread and fds gone', async () => {
    const r = await captureInTerminatedWorker('dummy0', 16, {
      channels: ['voltage0'],
      trigger: 'hrtimer0',
    });
    assert.deepEqual([r.code, r.signal], [0, null], r.stderr);
    const { bufferFds, ...left } = JSON.parse(r.line) as { bufferFds: number };
    assert.deepEqual(left, { mode: 'fileio', code: 1, threads: [], dmabufFds: [] }, r.stderr);
    // The stream's duplicate is closed; the JS side's own buffer fd stays (no JS ran to close it).
    assert.ok(bufferFds <= 1, r.line);
    // No JS ran to disable the buffer; the next capture stops it and goes on.
    const buf = await ctx
      .device('dummy0')
      .createBuffer(16, { channels: ['voltage0'], trigger: 'hrtimer0' });
    try {
      assert.equal((await buf.refill()).length, 32);
    } finally {
      await buf.close();
    }
  });

  it('a reader that fell behind gets the waiting blocks several per readv(), in order', async () => {
    // voltage0 (2 bytes) + padding + timestamp (8 bytes at offset 8): 16-byte scans, the
    // kernel's layout worked out by hand. 16 scans per block; 16 blocks in the JS queue
    // and in the kfifo (256 scans).
    const dev = ctx.device('dummy0');
    const buf = await dev.createBuffer(16, {
      channels: ['voltage0', 'timestamp'],
      trigger: 'hrtimer0',
      blocks: 16,
    });
    try {
      assert.equal(buf.scanBytes, 16);
      const stream = buf.stream();
      const raw = backendBuffer(buf).stream;
      const stamps: bigint[] = [];
      const take = async (): Promise<void> => {
        const r = await stream.next();
        assert.ok(!r.done);
        for (let i = 0; i < r.value.samples; i++)
          stamps.push(r.value.data.readBigInt64LE(i * 16 + 8));
        r.value.release();
      };
      await take();
      // Stop reading until the JS queue is full (the thread then waits for a place) and
      // the kfifo is full behind it: 16 blocks waiting in the kernel. The emulated CPU
      // keeps no steady 1 kHz, so wait for the state, not for a time. A place JS took
      // while more blocks were queued goes back with the next batch (`owed`): when the
      // thread delivered two blocks before the first take, the queue fills to 15 + 1 owed.
      const avail = `/sys/bus/iio/devices/${dev.id}/buffer0/data_available`;
      const full = (s: { lent: number; owed: number }): boolean => s.lent + s.owed >= 16;
      for (let i = 0; i < 600 && (!full(raw.stats()) || Number(sysfs(avail)) < 256); i++)
        await new Promise((r) => setTimeout(r, 50));
      const s0 = raw.stats();
      assert.equal(s0.lent + s0.owed, 16, 'the JS queue filled up');
      assert.equal(Number(sysfs(avail)), 256, 'the kfifo filled up');
      // Taking the 16 queued blocks gives their places back: the thread refills them from
      // the kfifo's 16 waiting blocks, then waits again, having delivered exactly 16.
      for (let i = 0; i < 16; i++) await take();
      let s = raw.stats();
      for (let i = 0; i < 600 && !full(s); i++) {
        await new Promise((r) => setTimeout(r, 50));
        s = raw.stats();
      }
      // Exactly the places given back meanwhile: the 16 taken, less what JS still owes now,
      // plus what it owed at s0 (places go back four at a time, or all when the queue
      // empties, so `owed` may differ between the two).
      assert.equal(s.delivered - s0.delivered, 16 + s0.owed - s.owed, JSON.stringify({ s0, s }));
      // One read() each without bursts; places come back 4 at a time, so about 4 readv()s.
      assert.ok(s.reads - s0.reads < 16, `${s.reads - s0.reads} reads for 16 waiting blocks`);
      for (let i = 0; i < 16; i++) await take();
      // Each block whole, the hrtimer's scans in order and none twice: a timestamp that
      // does not increase would be a block read twice or out of order. (Lost bytes are
      // checked exactly on the FIFO device: test/local/native-stream.test.ts.)
      assert.equal(stamps.length, 33 * 16);
      const back = stamps.findIndex((t, i) => i > 0 && t <= stamps[i - 1]);
      assert.equal(back, -1, `timestamp ${back} does not increase`);
    } finally {
      await buf.close();
    }
  });

  it('allocates, maps and syncs DMA-heap blocks on its own', () => {
    const r = loadNative().heapCheck('/dev/dma_heap/system', 65536);
    assert.deepEqual(
      r.steps.map((s) => `${s.op}:${s.errno}`),
      [
        'alloc+mmap:0',
        'sync start write:0',
        'sync end write:0',
        'sync start read:0',
        'pattern through second view:0',
        'sync end read:0',
      ],
    );
    assert.ok(r.ok);
  });

  it('says clearly when the device is busy (this process, then another one)', async () => {
    const dev = ctx.device('dummy1');
    const first = await dev.createBuffer(8, { channels: ['voltage0'], trigger: 'hrtimer1' });
    try {
      await assert.rejects(
        dev.createBuffer(8, { channels: ['voltage0'] }),
        (e: IioError) =>
          e.code === 'EBUSY' && /is busy/.test(e.message) && /iio:device1/.test(e.message),
      );
    } finally {
      await first.close();
    }
    // libiio's iio_readdev keeps /dev/iio:device1 open while it waits on a quiet trigger.
    requirePeerSoft(PEERS.iioInfo);
    const holder = spawn('iio_readdev', [
      '-T',
      '0',
      '-t',
      'sysfstrig0',
      '-b',
      '4',
      'dummy1',
      'voltage0',
    ]);
    try {
      // Enabled means libiio has /dev/iio:device1 open (it opens before enabling).
      const enable = '/sys/bus/iio/devices/iio:device1/buffer0/enable';
      for (let i = 0; i < 200 && sysfs(enable) !== '1'; i++)
        await new Promise((r) => setTimeout(r, 50));
      let err: IioError | undefined;
      for (let i = 0; i < 100 && err?.code !== 'EBUSY'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        try {
          const b = await dev.createBuffer(8, { channels: ['voltage0'] });
          await b.close();
        } catch (e) {
          err = e as IioError; // EINVAL (no trigger) until iio_readdev has the device
        }
      }
      assert.ok(err, 'the device was never busy');
      assert.equal(err.code, 'EBUSY');
      assert.match(err.message, /another process .* is using \/dev\/iio:device1/);
    } finally {
      holder.kill('SIGINT');
      await new Promise((r) => holder.on('close', r));
    }
  });

  it('loopback: what the DAC plays is what the ADC captures, and decodes to sysfs values', async () => {
    const dac = ctx.device('loopback_dac');
    const adc = ctx.device('loopback_adc');
    const n = 300;
    const scans = Buffer.alloc(n * 4);
    const want: string[] = [];
    for (let i = 0; i < n; i++) {
      scans.writeInt16LE(1000 + 7 * i, i * 4);
      scans.writeInt16LE(-3 * i - 1, i * 4 + 2);
      want.push(`${1000 + 7 * i},${-3 * i - 1}`);
    }
    const input = await adc.createBuffer(200, {
      channels: ['voltage0', 'voltage1'],
      trigger: 'hrtimer0',
      blocks: 8,
    });
    let raw0: number[];
    let si1: number[];
    try {
      const output = await dac.createBuffer(50, {
        channels: ['voltage0', 'voltage1'],
        isOutput: true,
        trigger: 'hrtimer1',
      });
      const pushed = (async () => {
        try {
          await output.push(scans);
          await output.drain();
        } finally {
          await output.close();
        }
      })();
      const seen = await captureUntil(input, want[n - 1]);
      await pushed;
      const start = seen.indexOf(want[0]);
      assert.ok(start >= 0, 'the first pushed scan was captured');
      assert.deepEqual(seen.slice(start, start + n), want);

      // Nothing new comes now: the ADC repeats the last scan, which sysfs reports as raw.
      await input.refill();
      raw0 = input.channelData('voltage0') as number[];
      si1 = input.channelData('voltage1', { si: true }) as number[];
    } finally {
      await input.close();
    }
    const dir = '/sys/bus/iio/devices/iio:device3';
    const sysRaw0 = Number(sysfs(`${dir}/in_voltage0_raw`));
    const sysRaw1 = Number(sysfs(`${dir}/in_voltage1_raw`));
    const scale = Number(sysfs(`${dir}/in_voltage_scale`));
    assert.equal(sysRaw0, 1000 + 7 * (n - 1));
    assert.ok(raw0.every((v) => v === sysRaw0));
    assert.ok(si1.every((v) => v === sysRaw1 * scale));
  });

  it('loopback: iiokit writedev plays stdin on the DAC', async () => {
    const adc = ctx.device('loopback_adc');
    const n = 64;
    const scans = Buffer.alloc(n * 4);
    const want: string[] = [];
    for (let i = 0; i < n; i++) {
      scans.writeInt16LE(-2000 - 11 * i, i * 4);
      scans.writeInt16LE(5 * i + 3, i * 4 + 2);
      want.push(`${-2000 - 11 * i},${5 * i + 3}`);
    }
    const input = await adc.createBuffer(50, {
      channels: ['voltage0', 'voltage1'],
      trigger: 'hrtimer0',
      blocks: 8,
    });
    let seen: string[];
    try {
      const captured = captureUntil(input, want[n - 1]);
      const r = await iiokitBinary(
        ['writedev', '-t', 'hrtimer1', '-b', '32', 'loopback_dac'],
        Readable.from([scans]),
      );
      assert.equal(r.status, 0, r.stderr);
      seen = await captured;
    } finally {
      await input.close();
    }
    const start = seen.indexOf(want[0]);
    assert.deepEqual(seen.slice(start, start + n), want);
    assert.equal(sysfs('/sys/bus/iio/devices/iio:device2/buffer0/enable'), '0');
  });
});

/** Captures the ADC's scans, repeats removed, until `last` shows up. */
async function captureUntil(input: IioBuffer, last: string): Promise<string[]> {
  const seen: string[] = [];
  for (let blocks = 0; blocks < 400; blocks++) {
    await input.refill();
    const a = input.channelData('voltage0') as number[];
    const b = input.channelData('voltage1') as number[];
    for (let i = 0; i < a.length; i++) {
      const s = `${a[i]},${b[i]}`;
      if (seen[seen.length - 1] !== s) seen.push(s);
    }
    if (seen.includes(last)) return seen;
  }
  throw new Error(`scan ${last} never came back from the ADC`);
}

function requirePeerSoft(peer: { available(): boolean; name: string }): void {
  if (!peer.available()) throw new Error(`missing peer: ${peer.name}`);
}
