/**
 * The DMABUF path end to end on the VM's DMA buffers (Linux 6.12: `dma_adc`, `dma_dac`,
 * iio_dma_loopback.ko, whose samples are a counter: scan n = n, ~n), and its fallback on
 * kfifo devices and on 6.1:
 * - 256 MiB through the library and through `iiokit readdev`, counter continuous, every
 *   payload a view of a DMABUF mapping, no copy; the same through read() when forced;
 * - `iiokit readdev` byte for byte what libiio main's iio_rwdev reads (its local backend
 *   has DMABUF too);
 * - `iiokit writedev` into dma_dac, plain and cyclic: the device counts 0 mismatches;
 * - consumers that hold blocks (the device stalls, held Buffers stay intact, any release
 *   order), a transfer aborted under the stream (counted, reported as lost);
 * - cancel, close with blocks held, an uncaught throw, process.exit() and SIGINT leave the
 *   buffer disabled, the DMABUFs detached and no fd open.
 * Block sizes are not multiples of 65536 scans, so that a lost, doubled or swapped block
 * breaks the 16-bit counter.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { LocalBackendBuffer } from '../../src/backends/local/buffer';
import { createContext } from '../../src/create-context';
import type { IioError } from '../../src/errors';
import type { Block, IioBuffer } from '../../src/model/buffer';
import type { Context } from '../../src/model/context';
import { Device } from '../../src/model/device';
import { serveContext } from '../../src/server';
import { PatternChecker, patternScans } from '../helpers/counter-pattern';
import { LIBIIO_MAIN, libiioMainTool } from '../helpers/libiio-main';
import { handleOf, nativeTestHooks } from '../helpers/native-hooks';
import { PEERS, requirePeer } from '../helpers/peers';

const kernel = process.env.IIO_VM_KERNEL ?? '6.1';
const SYS = '/sys/bus/iio/devices';
const ROOT = resolve(__dirname, '..', '..', '..');
const CLI = join(ROOT, 'bin', 'iiokit.js');
const MiB = 1024 * 1024;
/** About 1 MiB of scans, and not a multiple of 65536 (see above). */
const SAMPLES = 250000;
const TOTAL_SCANS = (256 * MiB) / 4;
/** Both channels of dma_adc / dma_dac: 4 bytes per scan. */
const CH = ['voltage0', 'voltage1'];

const read = (p: string): string => readFileSync(p, 'utf8').trim();
const raw = (b: IioBuffer): LocalBackendBuffer => (b as unknown as { raw: LocalBackendBuffer }).raw;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function deviceDir(name: string): string {
  const d = readdirSync(SYS).find(
    (e) => e.startsWith('iio:device') && read(join(SYS, e, 'name')) === name,
  );
  assert.ok(d, `${name} in ${SYS}`);
  return join(SYS, d);
}

/** What this process's fds point at (those that can be read). */
function fdTargets(pid: number | 'self' = 'self'): string[] {
  const dir = `/proc/${pid}/fd`;
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    try {
      out.push(readlinkSync(join(dir, f)));
    } catch {
      // the directory's own fd, gone by now
    }
  }
  return out.sort();
}

/** Address ranges of this process's DMABUF mappings (/proc/self/maps). */
function dmabufMappings(): Array<[bigint, bigint]> {
  return read('/proc/self/maps')
    .split('\n')
    .filter((l) => l.endsWith(' /dmabuf:'))
    .map((l) => {
      const [a, b] = l.split(' ')[0].split('-');
      return [BigInt(`0x${a}`), BigInt(`0x${b}`)];
    });
}

/** Nothing of the stream is left: fds as before it opened, no DMABUF or fence fd, disabled. */
function assertClean(dev: string, fdsBefore: string[]): void {
  assert.equal(read(join(dev, 'buffer0', 'enable')), '0', 'buffer disabled');
  const now = fdTargets();
  assert.deepEqual(
    now.filter((t) => /^\/dmabuf:|sync_file|iio:/.test(t)),
    [],
    'no DMABUF, fence or IIO fd open',
  );
  assert.deepEqual(now, fdsBefore, 'the same fds as before the buffer opened');
}

/**
 * Proof that no DMABUF is attached any more: read() works only once every DMABUF was
 * detached (attached ones keep the DMA buffer in DMABUF mode, where read() never returns).
 */
async function assertDetached(ctx: Context, device: string): Promise<void> {
  const b = await ctx
    .device(device)
    .createBuffer(4096, { channels: CH, transfer: 'fileio', blocks: 4 });
  try {
    assert.equal(raw(b).stream.stats().mode, 'fileio');
    const data = await b.refill();
    const c = new PatternChecker();
    c.check(data);
    assert.equal(c.mismatches, 0, `a fresh read() capture starts at scan 0: ${c}`);
  } finally {
    await b.close();
  }
}

/** Runs the CLI in a child process; stdout goes to `onData`. */
function runCli(
  args: string[],
  opts: { onData?: (b: Buffer) => void; stdin?: Readable; env?: NodeJS.ProcessEnv } = {},
): Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => opts.onData?.(d));
  if (opts.stdin) opts.stdin.pipe(child.stdin);
  else child.stdin.end();
  return new Promise((res) =>
    child.on('close', (status, signal) => res({ status, signal, stderr })),
  );
}

/** The pattern from scan `first`, `count` scans, in chunks: a writedev's stdin. */
function patternStream(count: number, first = 0): Readable {
  const chunk = 65000;
  return Readable.from(
    (function* () {
      for (let done = 0; done < count; done += chunk)
        yield patternScans(first + done, Math.min(chunk, count - done));
    })(),
  );
}

describe(`kernel ${kernel}: DMABUF`, function () {
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

    it('close with blocks held by JS: they stay readable, nothing is left open', async () => {
      const fdsBefore = fdTargets();
      // In a function of its own, so that nothing reaches the buffer or its blocks after.
      const scenario = async (): Promise<void> => {
        const buf = await ctx.device('dma_adc').createBuffer(SAMPLES, { channels: CH });
        const held: Array<{ block: Block; copy: Buffer }> = [];
        const it = buf.stream()[Symbol.asyncIterator]();
        for (let i = 0; i < 3; i++) {
          const r = await it.next();
          assert.ok(!r.done);
          held.push({ block: r.value, copy: Buffer.from(r.value.data) });
        }
        await buf.close();
        assertClean(adc, fdsBefore);
        for (const h of held) assert.ok(h.block.data.equals(h.copy), 'held blocks unchanged');
        const c = new PatternChecker();
        for (const h of held) c.check(h.block.data);
        assert.equal(c.mismatches, 0, String(c));
        await it.return(undefined);
      };
      await scenario();
      await assertDetached(ctx, 'dma_adc');
      // Once JS lets go, the collector unmaps the DMABUFs.
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      for (let i = 0; i < 20 && dmabufMappings().length; i++) {
        gc();
        await sleep(50);
      }
      assert.deepEqual(dmabufMappings(), [], 'no DMABUF mapped any more');
    });

    const HOW = {
      throw: 'a throw in the consumer (unhandled rejection)',
      callback: 'a throw in a callback (uncaught exception)',
      exit: 'process.exit()',
      SIGINT: 'SIGINT',
    } as const;
    for (const how of Object.keys(HOW) as Array<keyof typeof HOW>) {
      it(`${HOW[how]} with blocks held: disabled, detached, no fd left`, async () => {
        const script = `
          const fs = require('fs');
          const { createContext } = require(${JSON.stringify(join(ROOT, 'dist', 'src', 'index.js'))});
          (async () => {
            const ctx = await createContext('local:', { timeoutMs: 20000 });
            const buf = await ctx.device('dma_adc').createBuffer(65000, { channels: ['voltage0', 'voltage1'] });
            // After the library's own exit hook (registered when the buffer opened).
            process.on('exit', () => {
              const fds = fs.readdirSync('/proc/self/fd').map((f) => {
                try { return fs.readlinkSync('/proc/self/fd/' + f); } catch { return ''; }
              });
              fs.writeSync(1, JSON.stringify(fds) + '\\n');
            });
            const held = [];
            for await (const b of buf.stream()) { held.push(b); if (held.length === 3) break; }
            const how = ${JSON.stringify(how)};
            if (how === 'throw') throw new Error('consumer bug');
            if (how === 'callback') setImmediate(() => { throw new Error('consumer bug'); });
            if (how === 'exit') process.exit(3);
            fs.writeSync(2, 'ready\\n');
            setInterval(() => held.length, 1000);
          })();
        `;
        const child = spawn(process.execPath, ['-e', script], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          if (how === 'SIGINT' && err.includes('ready')) child.kill('SIGINT');
        });
        const [status, signal] = await new Promise<[number | null, string | null]>((r) =>
          child.on('close', (s, sig) => r([s, sig])),
        );
        if (how === 'SIGINT') assert.equal(signal, 'SIGINT', err);
        else {
          assert.equal(status, how === 'exit' ? 3 : 1, err);
          if (how !== 'exit') assert.match(err, /consumer bug/);
          const fds = JSON.parse(out.trim().split('\n').pop() ?? '[]') as string[];
          assert.deepEqual(
            fds.filter((t) => /^\/dmabuf:|sync_file|iio:/.test(t)),
            [],
            'its exit hook closed every DMABUF, fence and IIO fd',
          );
        }
        assert.equal(read(join(adc, 'buffer0', 'enable')), '0');
        await assertDetached(ctx, 'dma_adc');
      });
    }
  });

  describe('iiokit serve -u local:', function () {
    before(function () {
      if (kernel !== '6.12') this.skip();
    });

    it('libiio 0.24 reads dma_adc through our server: counter continuous, DMABUF to socket, no copy', async function () {
      requirePeer(this, PEERS.iioInfo);
      // The buffers the server opens, to read their streams' counters after.
      const opened: IioBuffer[] = [];
      const create = Device.prototype.createBuffer;
      Device.prototype.createBuffer = async function (this: Device, ...args) {
        const b = await create.apply(this, args);
        opened.push(b);
        return b;
      };
      // What the server hands its sockets: every block's bytes should be the DMABUF's own
      // memory (no copy in JS between the stream and the socket).
      const hooks = nativeTestHooks();
      let maps = dmabufMappings();
      const inDmabuf = (addr: bigint): boolean => {
        const hit = (): boolean => maps.some(([lo, hi]) => addr >= lo && addr < hi);
        if (hit()) return true;
        maps = dmabufMappings();
        return hit();
      };
      const sent = { chunks: 0, bytes: 0, outside: 0 };
      const write = Socket.prototype.write;
      const own = Object.prototype.hasOwnProperty.call(Socket.prototype, 'write');
      Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
        if (Buffer.isBuffer(chunk) && chunk.length >= 64 * 1024) {
          sent.chunks++;
          sent.bytes += chunk.length;
          if (!inDmabuf(hooks.addressOf(chunk))) sent.outside++;
        }
        return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      } as typeof write;
      const server = await serveContext(ctx, { port: 0 });
      const scans = (64 * MiB) / 4;
      const checker = new PatternChecker();
      try {
        const child = spawn('iio_readdev', [
          '-u',
          `ip:127.0.0.1:${server.port}`,
          '-b',
          String(SAMPLES),
          '-s',
          String(scans),
          'dma_adc',
          'voltage0',
          'voltage1',
        ]);
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.stdout.on('data', (d: Buffer) => checker.check(d));
        const status = await new Promise<number | null>((r) => child.on('close', r));
        assert.equal(status, 0, stderr);
      } finally {
        Device.prototype.createBuffer = create;
        if (own) Socket.prototype.write = write;
        else delete (Socket.prototype as { write?: unknown }).write;
        await server.close();
      }
      assert.equal(checker.bytes, scans * 4);
      assert.equal(checker.mismatches, 0, String(checker));
      assert.equal(opened.length, 1);
      const st = raw(opened[0]).stream.stats();
      assert.equal(st.mode, 'dmabuf');
      assert.equal(st.copies, 0, 'every block went from its DMABUF to the socket');
      assert.ok(st.delivered >= Math.floor(scans / SAMPLES));
      // Every payload byte the sockets got was handed over as a view of a DMABUF.
      assert.ok(sent.bytes >= scans * 4, `${sent.bytes} bytes in ${sent.chunks} writes`);
      assert.equal(sent.outside, 0, 'no payload copied in JS on its way to the socket');
    });
  });

  describe('dma_dac (output)', function () {
    let dac: string;
    before(function () {
      if (kernel !== '6.12') this.skip();
      dac = deviceDir('dma_dac');
      writeFileSync(join(dac, 'sampling_frequency'), '0');
    });

    it('iiokit writedev: 64 MiB over DMABUF, the device counts 0 mismatches', async () => {
      const scans = (64 * MiB) / 4 + 12345; // and a last, shorter push
      const r = await runCli(['writedev', '-b', String(SAMPLES), '-s', String(scans), 'dma_dac'], {
        stdin: patternStream(scans),
        env: { IIOKIT_DEBUG: '1' },
      });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /closed: transfer dmabuf, .*, \d+ written, /);
      assert.equal(read(join(dac, 'mismatches')), '0');
      assert.equal(read(join(dac, 'first_mismatch')), '-1');
      assert.equal(Number(read(join(dac, 'scans_consumed'))), scans, 'every scan played');
      assert.equal(Number(read(join(dac, 'blocks_done'))), Math.ceil(scans / SAMPLES));
      assert.equal(read(join(dac, 'buffer0', 'enable')), '0');
    });

    it('iiokit writedev -c: one DMABUF repeated until SIGINT, 0 mismatches', async () => {
      const child = spawn(
        process.execPath,
        [CLI, 'writedev', '-c', '-b', '65536', 'dma_dac', 'voltage0', 'voltage1'],
        { env: { ...process.env, IIOKIT_DEBUG: '1' }, stdio: ['pipe', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.on('error', () => undefined); // it reads one block, then may close stdin
      child.stdin.end(patternScans(0, 65536));
      const closed = new Promise<number | null>((r) => child.on('close', (s) => r(s)));
      // Its DMABUF is attached before the enable, and the device's counters reset at the
      // enable: wait for the debug line, the enable, then the scans.
      let consumed = 0;
      for (let i = 0; i < 1200 && consumed < 4 * 65536; i++) {
        await sleep(100);
        if (!/DMABUF blocks .* attached/.test(stderr)) continue;
        if (read(join(dac, 'buffer0', 'enable')) !== '1') continue;
        consumed = Number(read(join(dac, 'scans_consumed')));
      }
      assert.ok(consumed >= 4 * 65536, `repeated: ${consumed} scans played`);
      child.kill('SIGINT');
      assert.equal(await closed, 0, stderr);
      assert.match(stderr, /closed: transfer dmabuf, .* 1 enqueued/);
      assert.equal(read(join(dac, 'mismatches')), '0');
      assert.ok(Number(read(join(dac, 'scans_consumed'))) >= consumed);
      assert.equal(read(join(dac, 'blocks_done')), '0', 'a cyclic DMABUF never completes');
      assert.equal(read(join(dac, 'buffer0', 'enable')), '0');
    });

    it('library: forced write() plays whole kernel blocks; drain() says it cannot tell', async () => {
      const buf = await ctx
        .device('dma_dac')
        .createBuffer(1000, { channels: CH, isOutput: true, transfer: 'fileio' });
      try {
        assert.equal(raw(buf).stream.stats().mode, 'fileio');
        // length = 4 blocks: the DMA core plays two kernel blocks of 2000 scans, each once full.
        for (let i = 0; i < 4; i++) await buf.push(patternScans(i * 1000, 1000));
        for (let i = 0; i < 100 && Number(read(join(dac, 'scans_consumed'))) < 4000; i++)
          await sleep(50);
        assert.equal(Number(read(join(dac, 'scans_consumed'))), 4000);
        assert.equal(read(join(dac, 'mismatches')), '0');
        await assert.rejects(buf.drain(), (e: IioError) => {
          assert.equal(e.code, 'ENOTSUP');
          assert.match(e.message, /data_available counts free space/);
          return true;
        });
      } finally {
        await buf.close();
      }
    });

    it('library: push() and drain() over DMABUF; an aborted transfer makes drain() fail', async () => {
      const fdsBefore = fdTargets();
      const buf = await ctx
        .device('dma_dac')
        .createBuffer(50000, { channels: CH, isOutput: true, blocks: 4 });
      try {
        assert.equal(raw(buf).stream.stats().mode, 'dmabuf');
        await buf.push(patternScans(0, 50000));
        await buf.push(patternScans(50000, 30000));
        await buf.drain();
        assert.equal(Number(read(join(dac, 'scans_consumed'))), 80000);
        assert.equal(read(join(dac, 'mismatches')), '0');
        // Paced (1000 scans/s), then disabled under the stream: the transfer is aborted.
        writeFileSync(join(dac, 'sampling_frequency'), '1000');
        await buf.push(patternScans(0, 50000));
        await sleep(200);
        writeFileSync(join(dac, 'buffer0', 'enable'), '0');
        await assert.rejects(buf.drain(), (e: IioError) => e.code === 'EIO');
        assert.ok(raw(buf).stream.stats().transferErrors >= 1);
      } finally {
        await buf.close();
        writeFileSync(join(dac, 'sampling_frequency'), '0');
      }
      assertClean(dac, fdsBefore);
    });
  });
});
