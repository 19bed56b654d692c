import { once } from 'node:events';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext, IioError, type Context } from '../../src';
import type { IiodBackend } from '../../src/backends/iiod';
import { Readable } from 'node:stream';
import { iiokit, iiokitBinary } from '../helpers/cli';
import { compareInfo } from '../helpers/info-compare';
import { PEERS, requirePeer, run } from '../helpers/peers';
import { COUNTER_SOURCE, startFakeIiod, type FakeIiod } from './helpers/iiod';

const IN = ['in_voltage0', 'in_voltage1', 'in_voltage2', 'in_voltage3'];

/** Checks the counter pattern of scans holding channels `chans` (of 4): returns restarts. */
function checkCounter(data: Buffer, chans: number[]): number {
  const per = chans.length;
  let restarts = 0;
  let prev = -1;
  for (let off = 0; off + per * 2 <= data.length; off += per * 2) {
    const v = chans.map((_, i) => data.readUInt16LE(off + i * 2));
    // within a scan: value of channel c is (scan*4 + c) mod 32768
    const base = (v[0] - chans[0] + 32768) % 32768;
    assert.equal(base % 4, 0, `scan at ${off}: ${v} is not a scan of the counter`);
    chans.forEach((c, i) => assert.equal(v[i], (base + c) % 32768, `scan at ${off}: ${v}`));
    if (prev >= 0 && base !== (prev + 4) % 32768) restarts++;
    prev = base;
  }
  return restarts;
}

describe('ip: against libiio 0.24 iiod serving fake FIFO-backed devices (local backend)', function () {
  this.timeout(60000);
  let fake: FakeIiod;
  let ctx: Context;
  const out = join(mkdtempSync(join(tmpdir(), 'iiokit-dac-')), 'dac.bin');

  before(async function () {
    requirePeer(this, PEERS.iiod);
    requirePeer(this, PEERS.root);
    fake = await startFakeIiod([
      {
        name: 'fakeadc',
        channels: IN,
        source: COUNTER_SOURCE,
        attrs: { sampling_frequency: '1000' },
      },
      { name: 'fakedac', channels: ['out_voltage0', 'out_voltage1'], sink: out },
    ]);
    ctx = await createContext(fake.uri);
  });
  after(async () => {
    await ctx?.close();
    await fake?.stop();
  });

  it('iiokit info prints what iio_info prints', async () => {
    const theirs = run('iio_info', ['-u', fake.uri]);
    const ours = await iiokit(['info', '-u', fake.uri]);
    const r = compareInfo(theirs.stdout, ours.stdout, { skipBackendVersion: false });
    assert.ok(r.ok, r.firstDifference);
  });

  it('attribute writes reach the device: iio_attr and the sysfs file read them back', async () => {
    const adc = ctx.device('fakeadc');
    await adc.writeAttr('sampling_frequency', 1234);
    assert.equal(
      run('iio_attr', ['-u', fake.uri, '-d', 'fakeadc', 'sampling_frequency']).stdout.trim(),
      '1234',
    );
    const file = await fake.exec('cat', ['/sys/bus/iio/devices/iio:device0/sampling_frequency']);
    // libiio writes the C string with its NUL, and so do we; sysfs parsers stop there
    assert.equal(file.stdout.replace(/\0/g, '').trim(), '1234');
    await adc.channel('voltage2').writeAttr('raw', '-77');
    assert.equal(
      run('iio_attr', ['-u', fake.uri, '-c', 'fakeadc', 'voltage2', 'raw']).stdout.trim(),
      '-77',
    );
    assert.equal(await adc.channel('voltage2').readAttr('raw'), '-77');
    assert.equal(await adc.readAttr('sampling_frequency'), '1234');
  });

  it('read-all returns every attribute of a kind in one request', async () => {
    const b = ctx.backendForInternalUse as IiodBackend;
    const adc = ctx.device('fakeadc');
    const all = await b.readAllAttrs(adc.info, 'channel', adc.info.channels[2]);
    assert.deepEqual(all, [await adc.channel('voltage2').readAttr('raw')]);
    const dev = await b.readAllAttrs(adc.info, 'device');
    assert.deepEqual(dev, ['1234']);
  });

  it('an unknown attribute is ENOENT from iiod, and the connection stays in step', async () => {
    const adc = ctx.device('fakeadc');
    const fakeAttr = { ...adc.attrs[0].ref, attr: { name: 'no_such_attr' } };
    await assert.rejects(
      ctx.backendForInternalUse.readAttr(fakeAttr),
      (e: IioError) => e.code === 'ENOENT',
    );
    assert.equal(await adc.readAttr('sampling_frequency'), '1234');
  });

  it('GETTRIG on a device without trigger support is ENOENT', async () => {
    await assert.rejects(ctx.device('fakeadc').getTrigger(), (e: IioError) => e.code === 'ENOENT');
  });

  it('captures the same scans as iio_readdev (layout, length, continuous data)', async () => {
    // Each reader of the FIFO starts where the generator is, so the two captures are
    // the same counter from different starting points: compare them aligned.
    const theirs = run('sh', [
      '-c',
      `iio_readdev -u ${fake.uri} -b 256 -s 1024 fakeadc | od -An -v -tx1`,
    ]);
    const buf = await ctx.device('fakeadc').createBuffer(256, {
      channels: ['voltage0', 'voltage1', 'voltage2', 'voltage3'],
    });
    const parts: Buffer[] = [];
    for (let i = 0; i < 4; i++) parts.push(Buffer.from(await buf.refill()));
    await buf.close();
    const ours = Buffer.concat(parts);
    const theirBytes = Buffer.from(theirs.stdout.replace(/\s+/g, ''), 'hex');
    assert.equal(theirBytes.length, 1024 * 8);
    assert.equal(ours.length, theirBytes.length);
    assert.equal(checkCounter(ours, [0, 1, 2, 3]), 0);
    assert.equal(checkCounter(theirBytes, [0, 1, 2, 3]), 0);
    const delta = (ours.readUInt16LE(0) - theirBytes.readUInt16LE(0) + 32768) % 32768;
    for (let i = 0; i < ours.length; i += 2) {
      assert.equal(ours.readUInt16LE(i), (theirBytes.readUInt16LE(i) + delta) % 32768);
    }
  });

  it('large blocks, read straight from the socket into the block, keep the data intact', async () => {
    const buf = await ctx.device('fakeadc').createBuffer(65536, {
      channels: ['voltage0', 'voltage1', 'voltage2', 'voltage3'],
    });
    const parts: Buffer[] = [];
    for (let i = 0; i < 6; i++) parts.push(Buffer.from(await buf.refill()));
    await buf.close();
    const all = Buffer.concat(parts);
    assert.equal(all.length, 6 * 65536 * 8);
    assert.equal(checkCounter(all, [0, 1, 2, 3]), 0, 'one continuous counter across blocks');
  });

  it('WRITEBUF reaches the consumer of an output device, byte for byte', async () => {
    const data = randomBytes(4096 * 4);
    const buf = await ctx
      .device('fakedac')
      .createBuffer(4096, { channels: ['voltage0', 'voltage1'], isOutput: true });
    await buf.push(data);
    await buf.close();
    for (let i = 0; i < 200 && (!existsSync(out) || readFileSync(out).length < data.length); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(readFileSync(out).equals(data), 'the FIFO consumer got what we pushed');
  });

  it('iiokit writedev -u ip: and iio_writedev -u ip: deliver the same bytes to the consumer', async () => {
    const data = randomBytes(64 * 4);
    const sizeBefore = readFileSync(out).length;
    const r = await iiokitBinary(
      ['writedev', '-u', fake.uri, '-b', '16', '-s', '64', 'fakedac'],
      Readable.from([data]),
    );
    assert.equal(r.status, 0, r.stderr);
    const theirs = run(
      'sh',
      ['-c', `head -c ${data.length} | iio_writedev -u ${fake.uri} -b 16 -s 64 fakedac`],
      {
        input: data,
      },
    );
    assert.equal(theirs.status, 0, theirs.stderr);
    for (let i = 0; i < 200 && readFileSync(out).length < sizeBefore + 2 * data.length; i++) {
      await new Promise((res) => setTimeout(res, 25));
    }
    const got = readFileSync(out).subarray(sizeBefore);
    assert.ok(got.subarray(0, data.length).equals(data), 'ours reached the consumer');
    assert.ok(got.subarray(data.length).equals(data), "libiio's reached it too, the same");
  });

  it('iiokit readdev -u ip: captures a continuous stream', async () => {
    const r = await iiokitBinary([
      'readdev',
      '-u',
      fake.uri,
      '-b',
      '512',
      '-s',
      '4096',
      'fakeadc',
      'voltage1',
      'voltage3',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.length, 4096 * 4);
    assert.equal(checkCounter(r.stdout, [1, 3]), 0);
  });

  it('the kernel buffers count is set through SET BUFFERS_COUNT', async () => {
    // libiio's local backend sizes the kernel buffer as samples × buffers count (4 unless
    // told): iiod's own write to the sysfs `length` file is the evidence.
    const length = async (): Promise<string> =>
      (await fake.exec('cat', ['/sys/bus/iio/devices/iio:device0/buffer/length'])).stdout
        .replace(/\0/g, '') // libiio writes the C string with its NUL
        .trim();
    for (const blocks of [7, 3]) {
      const buf = await ctx.device('fakeadc').createBuffer(64, { channels: ['voltage0'], blocks });
      try {
        assert.equal((await buf.refill()).length, 64 * 2);
        assert.equal(await length(), String(64 * blocks), `${blocks} buffers of 64 samples`);
      } finally {
        await buf.close();
      }
    }
  });
});

describe('ip: survives what libiio does not: a killed or hung iiod', function () {
  this.timeout(60000);
  let fake: FakeIiod;

  before(async function () {
    requirePeer(this, PEERS.iiod);
    requirePeer(this, PEERS.root);
    fake = await startFakeIiod([
      {
        name: 'fakeadc',
        channels: IN,
        source: COUNTER_SOURCE,
        attrs: { sampling_frequency: '1000' },
      },
    ]);
  });
  after(async () => fake?.stop());

  it('kill -9 of iiod mid-stream, restart: the capture resumes with the loss counted', async () => {
    const ctx = await createContext(fake.uri, { timeoutMs: 2000 });
    const events: string[] = [];
    ctx.on('disconnected', () => events.push('disconnected'));
    ctx.on('reconnected', ({ changed }) => events.push(`reconnected changed=${changed}`));
    const buf = await ctx
      .device('fakeadc')
      .createBuffer(1024, { channels: ['voltage0', 'voltage1', 'voltage2', 'voltage3'] });
    let blocks = 0;
    let lostAfter = 0;
    let afterRestart = 0;
    let restarted = false;
    const reader = (async () => {
      for await (const b of buf.stream()) {
        checkCounter(b.data, [0, 1, 2, 3]);
        blocks++;
        // blocks read before the kill may still be queued: count from the first block
        // that reports the outage
        if (restarted && (lostAfter > 0 || b.lost > 0)) {
          lostAfter += b.lost;
          afterRestart++;
        }
        b.release();
        if (afterRestart >= 5 || blocks > 2000) break;
        if (blocks === 10) {
          fake.killIiod('SIGKILL');
          // once the loss is known (however long a loaded machine takes to notice),
          // attribute calls fail fast while the server is away
          if (!events.includes('disconnected')) await once(ctx, 'disconnected');
          await assert.rejects(
            ctx.device('fakeadc').readAttr('sampling_frequency'),
            (e: IioError) => ['ENOTCONN', 'ECONNRESET', 'ECONNREFUSED'].includes(e.code),
          );
          await fake.restartIiod();
          restarted = true;
        }
      }
    })();
    await reader;
    assert.ok(afterRestart >= 5);
    assert.ok(lostAfter > 0, 'the outage is counted as lost scans');
    assert.ok(buf.lost >= lostAfter);
    assert.deepEqual(events.slice(0, 2), ['disconnected', 'reconnected changed=false']);
    assert.equal(await ctx.device('fakeadc').readAttr('sampling_frequency'), '1000');
    await buf.close();
    await ctx.close();
  });

  it('a hung iiod (SIGSTOP) gives ETIMEDOUT; after SIGCONT later requests get correct answers', async () => {
    const ctx = await createContext(fake.uri, { timeoutMs: 400 });
    const adc = ctx.device('fakeadc');
    try {
      await adc.channel('voltage1').writeAttr('raw', '11');
      await adc.channel('voltage2').writeAttr('raw', '22');
      await fake.freezeIiod();
      try {
        await assert.rejects(
          adc.channel('voltage1').readAttr('raw'),
          (e: IioError) => e.code === 'ETIMEDOUT',
        );
        await assert.rejects(
          adc.readAttr('sampling_frequency'),
          (e: IioError) => e.code === 'ETIMEDOUT',
        );
      } finally {
        fake.killIiod('SIGCONT');
      }
      // A late reply to the timed-out reads must never be taken for these answers.
      assert.equal(await adc.channel('voltage2').readAttr('raw'), '22');
      assert.equal(await adc.channel('voltage1').readAttr('raw'), '11');
      assert.equal(await adc.readAttr('sampling_frequency'), '1000');
      const buf = await adc.createBuffer(256, { channels: ['voltage0'] });
      assert.equal((await buf.refill()).length, 512);
      await fake.freezeIiod();
      try {
        // drain what was already queued, then the refill must time out
        let err: unknown;
        for (let i = 0; i < 200 && !err; i++) await buf.refill().catch((e) => (err = e));
        assert.ok(err instanceof IioError && err.code === 'ETIMEDOUT', String(err));
      } finally {
        fake.killIiod('SIGCONT');
      }
      // iiod's own refill may have timed out while it was stopped (its buffer is then
      // gone): we report that once, reopen, and go on.
      let data: Buffer | undefined;
      for (let i = 0; i < 3 && !data; i++) {
        data = await buf.refill().catch((e: IioError) => {
          assert.equal(e.code, 'ETIMEDOUT');
          return undefined;
        });
      }
      assert.ok(data, 'a refill succeeds after SIGCONT');
      checkCounter(data, [0]);
      await buf.close();
    } finally {
      await ctx.close();
    }
  });
});
