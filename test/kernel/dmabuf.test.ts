/**
 * The DMABUF input path end to end on the VM's `dma_adc` (Linux 6.12; test/helpers/dma-vm.ts),
 * and its fallback on kfifo devices and on 6.1:
 * - 256 MiB through the library and through `iiokit readdev`, counter continuous, every
 *   payload a view of a DMABUF mapping, no copy; the same through read() when forced;
 * - `iiokit readdev` byte for byte what libiio main's iio_rwdev reads (its local backend
 *   has DMABUF too);
 * - consumers that hold blocks (the device stalls, held Buffers stay intact, any release
 *   order; buf.stats() says where the blocks are), a transfer aborted under the stream
 *   (counted, reported as lost).
 * Teardown: dmabuf-teardown.test.ts; the server: dmabuf-serve.test.ts; output:
 * dmabuf-dac.test.ts. Block sizes are not multiples of 65536 scans, so that a lost, doubled
 * or swapped block breaks the 16-bit counter.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContext } from '../../src/create-context';
import type { IioError } from '../../src/errors';
import type { Block } from '../../src/model/buffer';
import type { Context } from '../../src/model/context';
import { PatternChecker, patternScans } from '../helpers/counter-pattern';
import {
  CH,
  MiB,
  SAMPLES,
  SYS,
  TOTAL_SCANS,
  assertClean,
  assertDetached,
  captureInTerminatedWorker,
  deviceDir,
  dmabufMappings,
  fdTargets,
  kernel,
  raw,
  read,
  runCli,
  sleep,
} from '../helpers/dma-vm';
import { LIBIIO_MAIN, libiioMainTool } from '../helpers/libiio-main';
import { handleOf, nativeTestHooks } from '../helpers/native-hooks';
import { PEERS, requirePeer } from '../helpers/peers';

describe(`kernel ${kernel}: DMABUF input`, function () {
  this.timeout(600000);
  let ctx: Context;

  before(async function () {
    requirePeer(this, PEERS.vm);
    ctx = await createContext('local:', { timeoutMs: 20000 });
  });
  after(async () => ctx?.close());

  describe('fallback to read()/write()', () => {
    it('a kfifo device falls back silently, and refuses a forced DMABUF with the reason', async () => {
      const dev = ctx.device('dummy0');
      await ctx.device('hrtimer0').writeAttr('sampling_frequency', 1000);
      const auto = await dev.createBuffer(16, { channels: ['voltage0'], trigger: 'hrtimer0' });
      try {
        assert.equal(raw(auto).stream.stats().mode, 'fileio');
        assert.equal((await auto.refill()).length, 32);
      } finally {
        await auto.close();
      }
      const fdsBefore = fdTargets();
      await assert.rejects(
        dev.createBuffer(16, { channels: ['voltage0'], trigger: 'hrtimer0', transfer: 'dmabuf' }),
        (e: IioError) => {
          // 6.12's kfifo buffers refuse DMABUFs (EPERM); 6.1's buffer fds have no ioctls.
          assert.equal(e.code, kernel === '6.12' ? 'EPERM' : 'ENOTTY', e.message);
          assert.match(
            e.message,
            kernel === '6.12' ? /does not take DMABUFs .*kfifo/ : /no IIO DMABUF interface/,
          );
          return true;
        },
      );
      assertClean(join(SYS, dev.id), fdsBefore);
    });

    it('iiokit readdev --transfer dmabuf on a kfifo device exits 1 and says why', async () => {
      const r = await runCli([
        'readdev',
        '--transfer',
        'dmabuf',
        '-t',
        'hrtimer0',
        '-b',
        '16',
        '-s',
        '16',
        'dummy0',
        'voltage0',
      ]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /Unable to allocate buffer: /);
      assert.match(r.stderr, /DMABUF transfer was asked for/);
      const bad = await runCli(['readdev', '--transfer', 'fast', 'dummy0']);
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /Invalid transfer mode "fast": auto, dmabuf or fileio/);
    });
  });

  describe('dma_adc (input)', function () {
    let adc: string;
    before(function () {
      if (kernel !== '6.12') this.skip(); // the DMA buffer devices exist on 6.12 only
      adc = deviceDir('dma_adc');
      writeFileSync(join(adc, 'sampling_frequency'), '0');
    });

    it('library: 256 MiB over DMABUF, counter continuous, every payload a DMABUF mapping', async () => {
      const fdsBefore = fdTargets();
      const hooks = nativeTestHooks();
      const buf = await ctx.device('dma_adc').createBuffer(SAMPLES, { channels: CH });
      const lb = raw(buf);
      const checker = new PatternChecker();
      let blocks = 0;
      let outside = 0;
      try {
        assert.deepEqual(lb.transport.dmabuf, { tried: true, ok: true });
        const pool = new Set(hooks.blockAddresses(handleOf(lb.stream)));
        const maps = dmabufMappings();
        assert.ok(maps.length >= pool.size, 'one mapping per DMABUF');
        for await (const b of buf.stream()) {
          const addr = hooks.addressOf(b.data);
          if (!pool.has(addr) || !maps.some(([lo, hi]) => addr >= lo && addr < hi)) outside++;
          const n = Math.min(b.samples, TOTAL_SCANS - checker.scans);
          checker.check(b.data.subarray(0, n * 4));
          b.release();
          blocks++;
          if (checker.scans >= TOTAL_SCANS) break;
        }
        const st = lb.stream.stats();
        const pub = buf.stats();
        assert.equal(pub.transfer?.mode, 'dmabuf', 'the public stats say DMABUF');
        assert.equal(pub.transfer?.copies, 0, 'no block was copied');
        assert.equal(pub.transfer?.transferErrors, 0);
        assert.equal(pub.transfer?.held, 0, 'every block released');
        assert.equal(pub.blocks, blocks);
        assert.equal(outside, 0, 'every Buffer is a view of a DMABUF of the pool');
        // The device completed at least every block we read (and those still queued).
        const done = Number(read(join(adc, 'blocks_done')));
        assert.ok(done >= blocks, `blocks_done ${done} >= ${blocks}`);
        assert.ok(st.completed >= blocks);
      } finally {
        await buf.close();
      }
      assert.equal(checker.scans, TOTAL_SCANS);
      assert.equal(checker.mismatches, 0, String(checker));
      assert.equal(buf.lost, 0);
      assert.equal(buf.stats().transfer?.inFlight, 0, 'nothing with the kernel after close');
      assertClean(adc, fdsBefore);
      await assertDetached(ctx, 'dma_adc');
    });

    it('a Worker terminated while it captures over DMABUF: no crash, no DMABUF left', async () => {
      const r = await captureInTerminatedWorker('dma_adc', SAMPLES, { channels: CH });
      assert.deepEqual([r.code, r.signal], [0, null], r.stderr);
      const { bufferFds, ...left } = JSON.parse(r.line) as { bufferFds: number };
      assert.deepEqual(left, { mode: 'dmabuf', code: 1, threads: [], dmabufFds: [] }, r.stderr);
      // The stream's duplicate is closed; the JS side's own buffer fd stays (no JS ran to close it).
      assert.ok(bufferFds <= 1, r.line);
      // No JS ran to disable the buffer; the next capture stops it and reads from scan 0.
      await assertDetached(ctx, 'dma_adc');
    });

    it('library: forced read() on the same device, counter continuous', async () => {
      const buf = await ctx
        .device('dma_adc')
        .createBuffer(SAMPLES, { channels: CH, transfer: 'fileio' });
      const checker = new PatternChecker();
      try {
        assert.deepEqual(raw(buf).transport.dmabuf, { tried: false, ok: false });
        for await (const b of buf.stream()) {
          checker.check(b.data);
          b.release();
          if (checker.scans >= 16 * SAMPLES) break;
        }
        assert.equal(raw(buf).stream.stats().mode, 'fileio');
      } finally {
        await buf.close();
      }
      assert.equal(checker.mismatches, 0, String(checker));
    });

    it('iiokit readdev: 256 MiB over DMABUF, counter continuous, no copy', async () => {
      const checker = new PatternChecker();
      const r = await runCli(
        ['readdev', '-b', String(SAMPLES), '-s', String(TOTAL_SCANS), 'dma_adc'],
        { onData: (d) => checker.check(d), env: { IIOKIT_DEBUG: '1' } },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(checker.bytes, 256 * MiB);
      assert.equal(checker.mismatches, 0, String(checker));
      assert.match(r.stderr, /DMABUF blocks from \/dev\/dma_heap\/system attached/);
      const m = /closed: transfer dmabuf, (\d+) blocks, \d+ bytes, (\d+) copies/.exec(r.stderr);
      assert.ok(m, r.stderr);
      assert.equal(Number(m[2]), 0, 'no copies');
      const blocks = Math.ceil(TOTAL_SCANS / SAMPLES);
      assert.ok(Number(m[1]) >= blocks);
      // read() would have completed half as many blocks (the kernel's fileio blocks are
      // length / 2 = 2 of ours).
      assert.ok(Number(read(join(adc, 'blocks_done'))) >= blocks);
      assert.equal(read(join(adc, 'buffer0', 'enable')), '0');
    });

    it('iiokit readdev = libiio main iio_rwdev, byte for byte, over DMABUF and over read()', async function () {
      requirePeer(this, LIBIIO_MAIN);
      const scans = 1234567;
      const args = ['-b', '100000', '-s', String(scans), 'dma_adc', 'voltage0', 'voltage1'];
      const { cmd, env } = libiioMainTool('iio_rwdev');
      const theirs = spawnSync(cmd, args, { env, maxBuffer: 64 * MiB, timeout: 300000 });
      assert.equal(theirs.status, 0, theirs.stderr.toString());
      assert.equal(theirs.stdout.length, scans * 4);
      const libiioBlocks = Number(read(join(adc, 'blocks_done')));
      // iio_rwdev moved 100000-scan DMABUF blocks (read() would count 4 x larger ones).
      assert.ok(libiioBlocks >= Math.floor(scans / 100000), `libiio: ${libiioBlocks} blocks`);
      for (const transfer of ['auto', 'fileio']) {
        const chunks: Buffer[] = [];
        const ours = await runCli(['readdev', '--transfer', transfer, ...args], {
          onData: (d) => chunks.push(d),
        });
        assert.equal(ours.status, 0, ours.stderr);
        const bytes = Buffer.concat(chunks);
        assert.equal(bytes.length, scans * 4, transfer);
        assert.ok(bytes.equals(theirs.stdout), `${transfer}: identical bytes`);
      }
      const c = new PatternChecker();
      c.check(theirs.stdout);
      assert.equal(c.mismatches, 0, `and both are the counter: ${c}`);
    });

    it('a consumer that holds blocks: the device stalls (counted), held Buffers stay intact', async () => {
      // Paced: 20000 scans/s, 2000-scan blocks (100 ms each), 4 queue places, 6 DMABUFs.
      writeFileSync(join(adc, 'sampling_frequency'), '20000');
      const buf = await ctx.device('dma_adc').createBuffer(2000, { channels: CH, blocks: 4 });
      const lb = raw(buf);
      const it = buf.stream()[Symbol.asyncIterator]();
      const next = async (): Promise<Block> => {
        const r = await it.next();
        assert.ok(!r.done);
        return r.value;
      };
      const all: Array<{ block: Block; copy: Buffer }> = [];
      try {
        assert.equal(lb.stream.stats().mode, 'dmabuf');
        for (let i = 0; i < 2; i++) {
          const b = await next();
          all.push({ block: b, copy: Buffer.from(b.data) });
        }
        // Take nothing for 2.5 s while holding two blocks: the queue (4) fills, the thread
        // waits 1 s for a DMABUF to come back, then copies the last one rather than lend
        // it, and the device has nothing left to fill.
        await sleep(2500);
        const st = lb.stream.stats();
        assert.ok(st.starved >= 1, `starved ${st.starved}`);
        assert.ok(st.copies >= 1, `copies ${st.copies}`);
        assert.ok(st.lent <= st.poolBlocks - 1, 'one DMABUF always left for the kernel');
        // The same, as the library reports it: 2 held, the queue full (3 DMABUFs and the
        // copy), the last DMABUF with the device, which stalled.
        const pub = buf.stats().transfer;
        assert.equal(pub?.held, 2, 'held by JS');
        assert.equal(pub?.waiting, 4, 'waiting for JS');
        assert.equal(pub?.inFlight, 1, 'with the kernel');
        assert.ok((pub?.stalls ?? 0) >= 1 && (pub?.copies ?? 0) >= 1, JSON.stringify(pub));
        for (const h of all) assert.ok(h.block.data.equals(h.copy), 'held blocks unchanged');
        // Then 20 more, holding up to 5 at a time and releasing them in a shuffled order.
        let held: Array<{ block: Block; copy: Buffer }> = [...all];
        for (let i = 0; i < 20; i++) {
          const b = await next();
          const h = { block: b, copy: Buffer.from(b.data) };
          all.push(h);
          held.push(h);
          if (held.length >= 5) {
            held.sort(() => Math.random() - 0.5);
            for (const x of held.splice(0, 3)) {
              assert.ok(x.block.data.equals(x.copy), `block ${x.block.seq} intact until released`);
              x.block.release();
              x.block.release(); // idempotent
            }
          }
        }
        for (const x of held) assert.ok(x.block.data.equals(x.copy));
        held.forEach((x) => x.block.release());
        held = [];
        // The device counts a stall when the late block finally comes.
        assert.ok(Number(read(join(adc, 'stalls'))) >= 1, 'the device counted a stall');
      } finally {
        await it.return?.(undefined);
        await buf.close();
        writeFileSync(join(adc, 'sampling_frequency'), '0');
      }
      // dma_adc never drops: whatever waited, the counter goes on.
      const checker = new PatternChecker();
      for (const h of all.sort((a, b) => a.block.seq - b.block.seq)) checker.check(h.copy);
      assert.equal(checker.mismatches, 0, String(checker));
      assert.equal(checker.scans, 22 * 2000);
    });

    it('a transfer aborted under the stream is counted and reported as lost', async () => {
      writeFileSync(join(adc, 'sampling_frequency'), '20000');
      const buf = await ctx.device('dma_adc').createBuffer(2000, { channels: CH, blocks: 4 });
      const lb = raw(buf);
      let lostBlock: Block | undefined;
      let first: Buffer | undefined;
      try {
        let n = 0;
        for await (const b of buf.stream()) {
          if (b.lost) {
            lostBlock = b;
            first = Buffer.from(b.data.subarray(0, 8));
            b.release();
            break;
          }
          b.release();
          if (++n === 2) {
            // Someone disables the buffer under us, and enables it again: the transfers in
            // the kernel complete with -EINTR, and the device restarts at scan 0.
            writeFileSync(join(adc, 'buffer0', 'enable'), '0');
            await sleep(50);
            writeFileSync(join(adc, 'buffer0', 'enable'), '1');
          }
          assert.ok(n < 40, 'a block reported lost scans');
        }
        const st = lb.stream.stats();
        assert.ok(st.transferErrors >= 1);
        assert.equal(st.lastTransferError, 4, 'EINTR');
        assert.equal(st.lostScans, st.transferErrors * 2000);
        assert.equal(lostBlock?.lost, st.lostScans);
        assert.equal(buf.lost, st.lostScans);
        assert.equal(buf.stats().lost, st.lostScans);
        assert.equal(buf.stats().transfer?.transferErrors, st.transferErrors);
        assert.ok(first?.equals(patternScans(0, 2)), 'after it, the counter restarts at 0');
      } finally {
        await buf.close();
        writeFileSync(join(adc, 'sampling_frequency'), '0');
      }
    });

    it('cancel mid-stream: the pending read rejects, and close leaves nothing behind', async () => {
      const fdsBefore = fdTargets();
      const buf = await ctx.device('dma_adc').createBuffer(SAMPLES, { channels: CH });
      try {
        await buf.refill();
        await buf.refill();
        writeFileSync(join(adc, 'sampling_frequency'), '1000'); // the next block takes 250 s
        const pending = (async () => {
          for (;;) await buf.refill();
        })();
        await sleep(300);
        buf.cancel();
        await assert.rejects(pending, (e: IioError) => e.code === 'ECANCELED');
      } finally {
        await buf.close();
        writeFileSync(join(adc, 'sampling_frequency'), '0');
      }
      assertClean(adc, fdsBefore);
      await assertDetached(ctx, 'dma_adc');
    });
  });
});
