/**
 * The native streaming layer against a FIFO-backed fake device: the test is the
 * hardware on the other end of the FIFO, so every byte can be checked.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { openLocalBuffer, type LocalBackendBuffer } from '../../src/backends/local/buffer';
import { IioError } from '../../src/errors';
import { ChannelMask } from '../../src/model/channel-mask';
import type { NativeBlock } from '../../src/native/stream';
import { makeFifoDevice, type FakeDevice } from '../helpers/fifo-device';
import { handleOf, nativeTestHooks } from '../helpers/native-hooks';

const TWO_S16 = [
  { stem: 'in_voltage0', index: 0, type: 'le:s16/16>>0' },
  { stem: 'in_voltage1', index: 1, type: 'le:s16/16>>0' },
  { stem: 'in_voltage2', index: 2, type: 'le:u12/16>>4' },
];

/** Plays `data` into the device's FIFO, as the hardware would. */
function feed(dev: FakeDevice, data: Buffer): void {
  const ws = createWriteStream(dev.devNode);
  ws.on('error', () => undefined); // the reader may close first
  ws.end(data);
}

/** A real consumer of an output FIFO: `head -c n`. */
function consume(dev: FakeDevice, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn('head', ['-c', String(n), dev.devNode]);
    const chunks: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.on('error', reject);
    p.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

function addressIn(addrs: bigint[], b: NativeBlock): boolean {
  return addrs.includes(nativeTestHooks().addressOf(b.data));
}

describe('native streaming (FIFO-backed device)', function () {
  let dev: FakeDevice;
  let buf: LocalBackendBuffer | undefined;

  afterEach(async () => {
    await buf?.close();
    buf = undefined;
    dev?.cleanup();
  });

  async function openInput(samples: number, blocks: number, mask = [0, 1], timeoutMs = 2000) {
    dev = makeFifoDevice({ channels: TWO_S16, timeoutMs });
    buf = await openLocalBuffer(dev.handle, {
      samples,
      mask: ChannelMask.of(3, mask),
      cyclic: false,
      isOutput: false,
      blocks,
    });
    return buf;
  }

  it('configures sysfs while streaming and restores every file on close', async () => {
    dev = makeFifoDevice({ channels: TWO_S16, length: 7, watermark: 3 });
    // A channel enabled beforehand but not wanted is disabled, then put back.
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${dev.sysfsDir}/buffer0/in_voltage2_en`, '1\n');
    buf = await openLocalBuffer(dev.handle, {
      samples: 32,
      mask: ChannelMask.of(3, [0, 1]),
      cyclic: false,
      isOutput: false,
      blocks: 3,
    });
    assert.deepEqual(
      ['enable', 'length', 'watermark', 'in_voltage0_en', 'in_voltage1_en', 'in_voltage2_en'].map(
        (f) => dev.read(`buffer0/${f}`),
      ),
      ['1', '96', '32', '1', '1', '0'],
    );
    assert.deepEqual(buf.mask.indices(), [0, 1]);
    assert.equal(buf.scanBytes, 4);
    // A FIFO answers IIO_BUFFER_GET_FD_IOCTL with ENOTTY: the /dev fd serves, like pre-5.11.
    assert.deepEqual(buf.transport, {
      fd: 'dev-node',
      getFdError: 'ENOTTY',
      dmabuf: { tried: false, ok: false },
    });
    await buf.close();
    assert.deepEqual(
      ['enable', 'length', 'watermark', 'in_voltage0_en', 'in_voltage1_en', 'in_voltage2_en'].map(
        (f) => dev.read(`buffer0/${f}`),
      ),
      ['0', '7', '3', '0', '0', '1'],
    );
  });

  it('delivers exactly the bytes the device produced, in pooled blocks (zero copy)', async () => {
    const b = await openInput(256, 4);
    const data = randomBytes(256 * 4 * 40);
    feed(dev, data);
    const addrs = nativeTestHooks().blockAddresses(handleOf(b.stream));
    assert.equal(addrs.length, 4 + 2, 'queued blocks + the one filling + the one in hand');
    const got: Buffer[] = [];
    const objects = new Set<Buffer>();
    for (let i = 0; i < 40; i++) {
      const blk = await b.read();
      assert.equal(blk.data.length, 1024);
      assert.ok(blk.block >= 0, 'a released pool never runs dry');
      assert.ok(addressIn(addrs, blk), `block ${i} is pool memory`);
      got.push(Buffer.from(blk.data));
      objects.add(blk.data);
      blk.release();
    }
    assert.ok(Buffer.concat(got).equals(data));
    // Each block keeps its Buffer object from one lending to the next (no GC churn).
    assert.ok(objects.size <= addrs.length, `${objects.size} Buffer objects for 40 blocks`);
    const s = b.stream.stats();
    assert.equal(s.copies, 0);
    assert.ok(s.lentTotal >= 40);
    assert.ok(s.released >= 40);
    assert.equal(s.mode, 'fileio');
  });

  it('reads several small blocks per readv() while data flows: every byte once, in order', async () => {
    // 1000-byte blocks (250 scans of 4 bytes) do not divide the pipe's pages, so bursts end
    // in a partly filled block that the next read completes.
    const b = await openInput(250, 16);
    const data = randomBytes(1000 * 1024);
    const tail = randomBytes(1000 * 16);
    // Written a page at a time with pauses, so that reads often find less than a burst;
    // then, when told, 16 more blocks, and the FIFO stays open until stdin closes.
    const src = join(tmpdir(), `iiokit-burst-${process.pid}`);
    writeFileSync(src, Buffer.concat([data, tail]));
    const writer = spawn('python3', [
      '-c',
      `import os, sys, time
d = open(sys.argv[1], 'rb').read(); fd = os.open(sys.argv[2], os.O_WRONLY)
n = int(sys.argv[3])
for i in range(0, n, 4096):
    os.write(fd, d[i:min(i + 4096, n)])
    if i % 65536 == 0: time.sleep(0.002)
sys.stdin.readline(); os.write(fd, d[n:]); sys.stdin.read()`,
      src,
      dev.devNode,
      String(data.length),
    ]);
    try {
      const got: Buffer[] = [];
      while (got.length < 1024) {
        const blk = await b.read();
        assert.equal(blk.data.length, 1000);
        got.push(Buffer.from(blk.data));
        blk.release();
      }
      assert.ok(Buffer.concat(got).equals(data), 'no byte lost, repeated or reordered');
      let s = b.stream.stats();
      assert.equal(s.copies, 0, 'blocks a burst did not reach went back to the pool');
      assert.ok(s.reads < s.delivered, `${s.reads} reads for ${s.delivered} blocks: bursts`);
      // Every queue place came back: untaken, the thread queues the full 16 blocks again
      // (places a burst took and did not use, never given back, would leave fewer).
      writer.stdin.write('more\n');
      for (let i = 0; i < 100 && s.lent < 16; i++) {
        await new Promise((r) => setTimeout(r, 20));
        s = b.stream.stats();
      }
      assert.equal(s.lent, 16, 'JS queue refilled to its 16 places');
      const more: Buffer[] = [];
      for (let i = 0; i < 16; i++) {
        const blk = await b.read();
        more.push(Buffer.from(blk.data));
        blk.release();
      }
      assert.ok(Buffer.concat(more).equals(tail));
    } finally {
      writer.stdin.end();
      writer.kill();
      rmSync(src, { force: true });
    }
  });

  it('hands out Buffers that alias the pool: a byte written into the pool shows through', async () => {
    const b = await openInput(16, 2);
    feed(dev, Buffer.alloc(64 * 4, 0x11));
    const blk = await b.read();
    assert.equal(blk.data[5], 0x11);
    nativeTestHooks().poke(handleOf(b.stream), blk.block, 5, 0xab);
    assert.equal(blk.data[5], 0xab, 'the Buffer is the pool block itself, not a copy');
    blk.release();
  });

  it('degrades to counted copies when JS holds every block, and never stalls', async () => {
    const b = await openInput(16, 2);
    const data = randomBytes(64 * 40);
    feed(dev, data);
    const addrs = nativeTestHooks().blockAddresses(handleOf(b.stream));
    const held: NativeBlock[] = [];
    while (held.length < addrs.length) held.push(await b.read());
    assert.ok(held.every((x) => x.block >= 0));
    const got = held.map((x) => Buffer.from(x.data));
    // The pool is dry now: the next blocks are fresh memory, counted as copies.
    for (let i = 0; i < 6; i++) {
      const blk = await b.read();
      assert.equal(blk.block, -1);
      assert.ok(!addressIn(addrs, blk));
      got.push(Buffer.from(blk.data));
      blk.release();
    }
    assert.ok(b.stream.stats().copies >= 6);
    held.forEach((x) => x.release());
    // Blocks back in the pool are used again.
    let pooled = false;
    for (let i = held.length + 6; i < 40; i++) {
      const blk = await b.read();
      pooled ||= blk.block >= 0;
      got.push(Buffer.from(blk.data));
      blk.release();
    }
    assert.ok(pooled, 'released blocks are lent again');
    assert.ok(Buffer.concat(got).equals(data), 'no byte lost or reordered across copies');
  });

  it('returns a forgotten block through its finalizer (the safety net)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const b = await openInput(16, 2);
    feed(dev, randomBytes(64 * 4));
    await (async () => {
      const blk = await b.read();
      assert.ok(blk.block >= 0); // dropped without release()
    })();
    for (let i = 0; i < 20 && b.stream.stats().finalized === 0; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    const s = b.stream.stats();
    assert.equal(s.finalized, 1);
    assert.equal(s.released, 0);
  });

  it('rejects with ETIMEDOUT when no data comes, and goes on when it does', async () => {
    const b = await openInput(8, 2, [0, 1], 150);
    await assert.rejects(
      b.read(),
      (e: IioError) => e.code === 'ETIMEDOUT' && /150 ms/.test(e.message),
    );
    const data = randomBytes(32);
    feed(dev, data);
    let blk = await b.read().catch((e: IioError) => e);
    // A timeout may already have been queued while the test was feeding.
    while (blk instanceof IioError) {
      assert.equal(blk.code, 'ETIMEDOUT');
      blk = await b.read().catch((e: IioError) => e);
    }
    assert.ok(blk.data.equals(data));
    blk.release();
    assert.ok(b.stream.stats().timeouts >= 1);
  });

  it('cancel() wakes a pending read through the eventfd (ECANCELED)', async () => {
    const b = await openInput(8, 2, [0, 1], 0);
    const pending = b.read();
    setTimeout(() => b.cancel(), 20);
    await assert.rejects(pending, (e: IioError) => e.code === 'ECANCELED');
    await assert.rejects(b.read(), (e: IioError) => e.code === 'ECANCELED');
  });

  describe('output', () => {
    const DAC = [
      { stem: 'out_voltage0', index: 0, type: 'le:s16/16>>0' },
      { stem: 'out_voltage1', index: 1, type: 'le:s16/16>>0' },
    ];

    async function openOutput(samples: number, cyclic: boolean) {
      dev = makeFifoDevice({ name: 'fifodac', channels: DAC });
      buf = await openLocalBuffer(dev.handle, {
        samples,
        mask: ChannelMask.of(2, [0, 1]),
        cyclic,
        isOutput: true,
        blocks: 2,
      });
      return buf;
    }

    it('writes exactly the pushed bytes to the device (a real reader: head -c)', async () => {
      const b = await openOutput(64, false);
      assert.equal(dev.read('buffer0/out_voltage0_en'), '1');
      const data = randomBytes(256 * 300);
      const consumer = consume(dev, data.length);
      // Pushes of different sizes, all whole scans, concurrently queued.
      const pushes: Promise<void>[] = [];
      for (let off = 0; off < data.length;) {
        const n = Math.min(data.length - off, 4 * (1 + ((off / 4) % 700)));
        pushes.push(b.write(data.subarray(off, off + n)));
        off += n;
      }
      await Promise.all(pushes);
      const out = await consumer;
      assert.equal(out.length, data.length);
      assert.ok(out.equals(data));
      assert.equal(b.stream.stats().written, data.length);
    });

    it('repeats a cyclic block until closed, and refuses a second push', async () => {
      const b = await openOutput(64, true);
      const block = randomBytes(256);
      const consumer = consume(dev, block.length * 10);
      await b.write(block);
      await assert.rejects(b.write(block), (e: IioError) => e.code === 'EBUSY');
      const out = await consumer;
      assert.ok(out.equals(Buffer.concat(Array(10).fill(block))));
      assert.ok(b.stream.stats().cyclicRepeats >= 9);
      await b.close();
      assert.equal(dev.read('buffer0/enable'), '0');
    });
  });
});
