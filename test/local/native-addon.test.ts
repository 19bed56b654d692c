/**
 * The native module's own contract, on FIFOs (the test holds the other end): argument
 * checks, the stream's own copy of its fd, a thread that cannot start, a callback that
 * throws, a push that times out half-way, batching options and the test-only entry.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IioError } from '../../src/errors';
import { loadNative, nativeModuleStatus, type NativeDelivery } from '../../src/native';
import { NativeStream } from '../../src/native/stream';
import { nativeTestHooks } from '../helpers/native-hooks';
import { PEERS, requirePeer, which, type Peer } from '../helpers/peers';

const NATIVE_JS = join(__dirname, '../../src/native');
const WHERE = { uri: 'local:', device: 'fifo' };

const prlimit: Peer = {
  name: 'prlimit (util-linux)',
  install: 'apt-get install -y util-linux',
  available: () => !!which('prlimit'),
};

interface Fifo {
  readonly path: string;
  /** Read end (non-blocking) and write end. */
  readonly r: number;
  readonly w: number;
  close(): void;
}

const open: Fifo[] = [];

function fifo(): Fifo {
  const dir = mkdtempSync(join(tmpdir(), 'iiokit-addon-'));
  const path = join(dir, 'f');
  execFileSync('mkfifo', [path]);
  const r = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const w = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  let closed = false;
  const f: Fifo = {
    path,
    r,
    w,
    close() {
      if (closed) return;
      closed = true;
      for (const fd of [r, w]) {
        try {
          closeSync(fd);
        } catch {
          // closed by the test itself
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  open.push(f);
  return f;
}

/** Everything the FIFO holds now (its read end is non-blocking). */
function drainFifo(fd: number): Buffer {
  const parts: Buffer[] = [];
  const chunk = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, chunk, 0, chunk.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw e;
    }
    if (n <= 0) break;
    parts.push(Buffer.from(chunk.subarray(0, n)));
  }
  return Buffer.concat(parts);
}

/** Runs a script with node; resolves with its stdout lines as they come and its end. */
function child(
  script: string,
  args: string[],
  opts: { uid?: number; gid?: number } = {},
): {
  pid: number;
  line(): Promise<string>;
  send(s: string): void;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
} {
  const dir = mkdtempSync(join(tmpdir(), 'iiokit-child-'));
  chmodSync(dir, 0o755);
  const file = join(dir, 'child.js');
  writeFileSync(file, script, { mode: 0o644 });
  const p = spawn(process.execPath, [file, ...args], { ...opts, stdio: 'pipe' });
  let out = '';
  let stderr = '';
  const waiting: Array<(l: string) => void> = [];
  const lines: string[] = [];
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    let i: number;
    while ((i = out.indexOf('\n')) >= 0) {
      const l = out.slice(0, i);
      out = out.slice(i + 1);
      const w = waiting.shift();
      if (w) w(l);
      else lines.push(l);
    }
  });
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  p.stdin.on('error', () => undefined);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) =>
      p.on('close', (code, signal) => {
        rmSync(dir, { recursive: true, force: true });
        for (const w of waiting.splice(0)) w(`(child ended: ${signal ?? code}) ${stderr}`);
        resolve({ code, signal, stderr });
      }),
  );
  return {
    pid: p.pid!,
    line: () =>
      lines.length
        ? Promise.resolve(lines.shift()!)
        : p.exitCode !== null || p.signalCode !== null
          ? Promise.resolve(`(child ended: ${p.signalCode ?? p.exitCode}) ${stderr}`)
          : new Promise((resolve) => waiting.push(resolve)),
    send: (s) => p.stdin.write(s),
    done,
  };
}

describe('native module: its own contract', function () {
  this.timeout(30000);
  afterEach(() => {
    for (const f of open.splice(0)) f.close();
  });

  it('checks every numeric argument: a TypeError or RangeError naming it', () => {
    const addon = loadNative();
    const f = fifo();
    const base = { fd: f.r, output: false, blockBytes: 16, unitBytes: 16, blocks: 2, timeoutMs: 0 };
    const stream = new addon.Stream(base);
    const buf = Buffer.alloc(16);
    const cases: Array<[string, () => unknown, ErrorConstructor, RegExp]> = [
      ['open flags NaN', () => addon.open('/dev/null', NaN), RangeError, /flags/],
      ['open flags -1', () => addon.open('/dev/null', -1), RangeError, /flags/],
      ['open flags "0"', () => addon.open('/dev/null', '0' as never), TypeError, /flags/],
      ['close -1', () => addon.close(-1), RangeError, /fd/],
      // Int32 conversion would have closed fd 999999 (or stdout, for 1.5).
      ['close 999999.5', () => addon.close(999999.5), RangeError, /fd/],
      ['close 2^32+999999', () => addon.close(2 ** 32 + 999999), RangeError, /fd/],
      ['getBufferFd NaN', () => addon.getBufferFd(NaN, 0), RangeError, /fd/],
      ['getBufferFd index -1', () => addon.getBufferFd(f.r, -1), RangeError, /index/],
      ['getEventFd Infinity', () => addon.getEventFd(Infinity), RangeError, /fd/],
      ['heapCheck bytes 1.5', () => addon.heapCheck('/nonexistent', 1.5), RangeError, /bytes/],
      ['heapCheck bytes NaN', () => addon.heapCheck('/nonexistent', NaN), RangeError, /bytes/],
      ['Stream fd NaN', () => new addon.Stream({ ...base, fd: NaN }), RangeError, /fd/],
      ['Stream fd "3"', () => new addon.Stream({ ...base, fd: '3' as never }), TypeError, /fd/],
      [
        'Stream blockBytes -64',
        () => new addon.Stream({ ...base, blockBytes: -64 }),
        RangeError,
        /blockBytes/,
      ],
      [
        'Stream blockBytes 2^53',
        () => new addon.Stream({ ...base, blockBytes: 2 ** 53 }),
        RangeError,
        /blockBytes/,
      ],
      [
        'Stream unitBytes 0.5',
        () => new addon.Stream({ ...base, unitBytes: 0.5 }),
        RangeError,
        /unitBytes/,
      ],
      ['Stream blocks NaN', () => new addon.Stream({ ...base, blocks: NaN }), RangeError, /blocks/],
      ['Stream blocks 4.5', () => new addon.Stream({ ...base, blocks: 4.5 }), RangeError, /blocks/],
      [
        'Stream timeoutMs -1',
        () => new addon.Stream({ ...base, timeoutMs: -1 }),
        RangeError,
        /timeoutMs/,
      ],
      [
        'Stream timeoutMs NaN',
        () => new addon.Stream({ ...base, timeoutMs: NaN }),
        RangeError,
        /timeoutMs/,
      ],
      [
        'Stream output "yes"',
        () => new addon.Stream({ ...base, output: 'yes' as never }),
        TypeError,
        /output/,
      ],
      [
        'Stream batchHoldUs -1',
        () => new addon.Stream({ ...base, batchHoldUs: -1 }),
        RangeError,
        /batchHoldUs/,
      ],
      [
        'Stream batchMaxBlocks 0',
        () => new addon.Stream({ ...base, batchMaxBlocks: 0 }),
        RangeError,
        /batchMaxBlocks/,
      ],
      ['credit -1', () => stream.credit(-1), RangeError, /\bn\b/],
      ['credit NaN', () => stream.credit(NaN), RangeError, /\bn\b/],
      ['credit 1.5', () => stream.credit(1.5), RangeError, /\bn\b/],
      ['release NaN', () => stream.release(NaN, 0), RangeError, /block/],
      ['release gen -1', () => stream.release(0, -1), RangeError, /gen/],
      [
        'release gen missing',
        () => (stream.release as (b: number) => boolean)(0),
        TypeError,
        /gen/,
      ],
      ['write id NaN', () => stream.write(buf, NaN), RangeError, /id/],
    ];
    const wrong: string[] = [];
    for (const [what, fn, type, name] of cases) {
      try {
        fn();
        wrong.push(`${what}: no error`);
      } catch (e) {
        if (!(e instanceof type) || !name.test((e as Error).message))
          wrong.push(`${what}: ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
    stream.close();
    assert.deepEqual(wrong, []);
  });

  it('streams from its own copy of the fd: closing ours (and reusing its number) changes nothing', async () => {
    const a = fifo();
    const s = new NativeStream(
      loadNative(),
      { fd: a.r, output: false, blockBytes: 16, unitBytes: 16, blocks: 2, timeoutMs: 0 },
      WHERE,
    );
    try {
      s.start();
      closeSync(a.r);
      // The lowest free number is the one just closed: another FIFO's read end most likely
      // takes it, and a stream on the number would read that FIFO.
      const b = fifo();
      writeSync(b.w, Buffer.alloc(16, 0xbb));
      writeSync(a.w, Buffer.alloc(16, 0xaa));
      const blk = await s.read();
      assert.equal(blk.data.toString('hex'), 'aa'.repeat(16), 'the block came from the first FIFO');
      blk.release();
      assert.equal(
        drainFifo(b.r).toString('hex'),
        'bb'.repeat(16),
        'the other FIFO kept its bytes',
      );
    } finally {
      s.close();
    }
  });

  it('reports a thread that cannot start as an EAGAIN error, and can start later', async function () {
    requirePeer(this, PEERS.root);
    requirePeer(this, prlimit);
    // RLIMIT_NPROC counts threads per user and does not bind root: the child runs as
    // nobody, and the test lowers its limit once the child is up.
    const f = fifo();
    chmodSync(join(f.path, '..'), 0o755);
    chmodSync(f.path, 0o666);
    // nobody may not be able to reach the checkout (under /root, say): a copy of the addon.
    const status = nativeModuleStatus();
    assert.ok(status.loaded);
    const copy = join(mkdtempSync(join(tmpdir(), 'iiokit-addon-copy-')), 'iiokit.node');
    chmodSync(join(copy, '..'), 0o755);
    copyFileSync(status.file, copy);
    chmodSync(copy, 0o755);
    try {
      const c = child(
        `
        const fs = require('fs');
        const addon = require(${JSON.stringify(copy)});
        const r = fs.openSync(process.argv[2], fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
        const w = fs.openSync(process.argv[2], fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
        const s = new addon.Stream({ fd: r, output: false, blockBytes: 16, unitBytes: 16, blocks: 2, timeoutMs: 0 });
        const got = [];
        const cb = (kind, data) => { if (kind === 0) got.push(Buffer.from(data).toString('hex')); return false; };
        const attempt = () => {
          try { s.start(cb); return 'started'; } catch (e) { return { name: e.name, message: e.message, errno: e.errno }; }
        };
        let step = 0;
        process.stdin.on('data', () => {
          step++;
          if (step === 1) {
            process.stdout.write(JSON.stringify(attempt()) + '\\n');
          } else if (step === 2) {
            const second = attempt();
            fs.writeSync(w, Buffer.alloc(16, 9));
            let n = 0;
            const t = setInterval(() => {
              if (!got.length && ++n < 500) return;
              clearInterval(t);
              s.close();
              process.stdout.write(JSON.stringify({ second, got }) + '\\n');
              process.exit(0);
            }, 10);
          }
        });
        process.stdout.write('ready\\n');
        `,
        [f.path],
        { uid: 65534, gid: 65534 },
      );
      assert.equal(await c.line(), 'ready');
      // prlimit(2) on another process needs the same uids (or CAP_SYS_RESOURCE, which a
      // container's root may lack): it runs as nobody too.
      const limit = (soft: string): void => {
        execFileSync('prlimit', ['--pid', String(c.pid), `--nproc=${soft}:`], {
          uid: 65534,
          gid: 65534,
        });
      };
      const before = /^Max processes\s+(\S+)/m.exec(readFileSync(`/proc/${c.pid}/limits`, 'utf8'));
      assert.ok(before, 'the child has an RLIMIT_NPROC');
      limit('1');
      c.send('go\n');
      const first = await c.line();
      let parsed: { errno?: number; message?: string } | undefined;
      try {
        parsed = JSON.parse(first) as { errno?: number; message?: string };
      } catch {
        assert.fail(`start() with no thread to spare: ${first}`);
      }
      assert.equal(parsed.errno, 11, first);
      assert.match(parsed.message ?? '', /start/);
      limit(before[1]);
      c.send('go\n');
      const second = JSON.parse(await c.line()) as { second: unknown; got: string[] };
      assert.equal(second.second, 'started', 'nothing was left half-started');
      assert.deepEqual(second.got, ['09'.repeat(16)]);
      const end = await c.done;
      assert.equal(end.signal, null, end.stderr);
      assert.equal(end.code, 0, end.stderr);
    } finally {
      rmSync(join(copy, '..'), { recursive: true, force: true });
    }
  });

  it('gives the credit back and reports the error when its callback throws', async () => {
    // In a child: the thrown errors must reach process 'uncaughtException', which mocha
    // would take as failures of its own.
    const f = fifo();
    const c = child(
      `
      const fs = require('fs');
      const addon = require(${JSON.stringify(NATIVE_JS)}).loadNative();
      const r = fs.openSync(process.argv[2], fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const w = fs.openSync(process.argv[2], fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      const s = new addon.Stream({ fd: r, output: false, blockBytes: 16, unitBytes: 16, blocks: 2, timeoutMs: 0 });
      let blocks = 0;
      let reported = 0;
      process.on('uncaughtException', (e) => {
        if (!/thrown by the callback/.test(e.message)) throw e;
        reported++;
      });
      s.start((kind) => {
        if (kind !== 0) return false;
        blocks++;
        throw new Error('thrown by the callback ' + blocks);
      });
      // Six blocks for a queue of two: without the credit back the thread stops at two.
      fs.writeSync(w, Buffer.alloc(16 * 6, 7));
      let n = 0;
      const t = setInterval(() => {
        if (blocks < 6 && ++n < 300) return;
        clearInterval(t);
        s.close();
        process.stdout.write(JSON.stringify({ blocks, reported }) + '\\n');
      }, 10);
      `,
      [f.path],
    );
    const line = await c.line();
    const end = await c.done;
    assert.equal(end.signal, null, end.stderr);
    assert.deepEqual(JSON.parse(line), { blocks: 6, reported: 6 }, end.stderr);
  });

  // A Worker terminated (or whose env ends) while its stream runs: the env's teardown
  // disposes of what the thread-safe function still queues (at least the end) after its
  // finalizer ran; that must neither crash the process nor leave the thread or its fd.
  // `busy`: the Worker's callback is running (a loop) when it is terminated, so the call
  // into JS fails under the addon's feet.
  const workerCases: Array<{ name: string; mode: string; options: string; busy?: boolean }> = [
    {
      name: 'input',
      mode: 'input',
      options: `{ output: false, blockBytes: 16, unitBytes: 16, blocks: 4, timeoutMs: 0 }`,
    },
    {
      name: 'input, its callback running,',
      mode: 'input',
      options: `{ output: false, blockBytes: 16, unitBytes: 16, blocks: 4, timeoutMs: 0 }`,
      busy: true,
    },
    {
      name: 'events',
      mode: 'events',
      options: `{ output: false, blockBytes: 64, unitBytes: 16, blocks: 4, timeoutMs: 0, partial: true }`,
    },
    {
      name: 'output',
      mode: 'output',
      options: `{ output: true, blockBytes: 4096, unitBytes: 16, blocks: 4, timeoutMs: 0 }`,
    },
  ];
  for (const { name, mode, options, busy } of workerCases) {
    it(`${name}: a Worker terminated while its stream runs ends it without crashing the process`, async () => {
      const f = fifo();
      const c = child(
        `
        const { Worker } = require('worker_threads');
        const fs = require('fs');
        const [path, mode] = process.argv.slice(2);
        // The main thread holds both ends (O_RDWR): it feeds the worker's input, drains its output.
        const mine = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
        const w = new Worker(\`
          const fs = require('fs');
          const { parentPort, workerData } = require('worker_threads');
          const addon = require(\${JSON.stringify(${JSON.stringify(NATIVE_JS)})}).loadNative();
          const output = workerData.mode === 'output';
          const fd = fs.openSync(workerData.path, (output ? fs.constants.O_WRONLY : fs.constants.O_RDONLY) | fs.constants.O_NONBLOCK);
          const s = new addon.Stream({ fd, ...${options} });
          // The stream works on its own duplicate: after the Worker, nothing of it may stay open.
          fs.closeSync(fd);
          let n = 0;
          let pending = 0;
          s.start((kind, a, idx, gen) => {
            if (kind === 0) s.release(idx, gen);
            if (kind === 2) pending--;
            if ((kind === 0 || kind === 2) && ++n === 8) {
              parentPort.postMessage('busy');
              if (${busy === true}) for (;;);
            }
            return kind === 0;
          });
          if (output)
            setInterval(() => {
              for (; pending < 8; pending++) s.write(Buffer.alloc(4096, 1), n + pending);
            }, 1);
        \`, { eval: true, workerData: { path, mode } });
        const junk = Buffer.alloc(4096);
        const feed = setInterval(() => {
          try {
            if (mode === 'output') fs.readSync(mine, junk, 0, junk.length, null);
            else fs.writeSync(mine, junk.subarray(0, 64));
          } catch {}
        }, 1);
        w.on('message', () =>
          w.terminate().then((code) => {
            // The process runs on: what the Worker's stream left behind shows here.
            const names = (dir, read) =>
              fs.readdirSync(dir).map((e) => { try { return read(dir + '/' + e); } catch { return ''; } });
            const threads = names('/proc/self/task', (p) => fs.readFileSync(p + '/comm', 'utf8').trim())
              .filter((t) => t.startsWith('iiokit'));
            const fifoFds = names('/proc/self/fd', (p) => fs.readlinkSync(p)).filter((l) => l === path).length;
            process.stdout.write('terminated ' + code + ' ' + JSON.stringify({ threads, fifoFds }) + '\\n');
            clearInterval(feed);
            fs.closeSync(mine);
          }),
        );
        `,
        [f.path, mode],
      );
      const line = await c.line();
      const end = await c.done;
      // Only the main thread's own end of the FIFO is open; no streaming thread is left.
      assert.equal(line, 'terminated 1 {"threads":[],"fifoFds":1}', end.stderr);
      assert.deepEqual([end.code, end.signal], [0, null], end.stderr);
    });
  }

  it('reports what a push that times out half-way queued (the device plays it)', async () => {
    const f = fifo();
    const s = new NativeStream(
      loadNative(),
      { fd: f.w, output: true, blockBytes: 4, unitBytes: 4, blocks: 2, timeoutMs: 200 },
      WHERE,
    );
    try {
      s.start();
      // A pipe holds 64 KiB: a quarter of the push fits, then nobody reads.
      const data = randomBytes(256 * 1024);
      const err = await s.write(data).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof IioError, `rejected with an IioError: ${String(err)}`);
      assert.equal(err.code, 'ETIMEDOUT');
      const played = drainFifo(f.r);
      assert.ok(played.length > 0 && played.length < data.length, `${played.length} bytes`);
      assert.ok(played.equals(data.subarray(0, played.length)), 'the start of the push');
      assert.match(err.message, new RegExp(`\\b${played.length} of ${data.length} bytes`));
      assert.equal(s.stats().written, played.length);
    } finally {
      s.close();
    }
  });

  it('batches hand-overs as its options say (most blocks per wake-up, longest hold)', async () => {
    const addon = loadNative();
    const run = async (batchMaxBlocks: number): Promise<number> => {
      const f = fifo();
      const h = new addon.Stream({
        fd: f.r,
        output: false,
        blockBytes: 64,
        unitBytes: 64,
        blocks: 16,
        timeoutMs: 0,
        batchHoldUs: 300000,
        batchMaxBlocks,
      });
      const got: Buffer[] = [];
      let wake: (() => void) | undefined;
      h.start((...d: NativeDelivery) => {
        if (d[0] === 0) {
          got.push(Buffer.from(d[1]));
          h.release(d[2], d[3]);
          if (got.length === 8) wake?.();
        }
        return false;
      });
      const data = randomBytes(64 * 8);
      writeSync(f.w, data); // one atomic write: all eight blocks are there at once
      if (got.length < 8) await new Promise<void>((r) => (wake = r));
      const handovers = h.stats().handovers;
      h.close();
      assert.ok(Buffer.concat(got).equals(data));
      return handovers;
    };
    // One block per wake-up: eight hand-overs.
    assert.equal(await run(1), 8);
    // The first block goes at once (nothing came just before it), then four together,
    // then the last three once the hold time is up.
    assert.equal(await run(4), 3);
  });

  it('sizes the default JS queue to about 2 MiB of blocks (4..64)', () => {
    const addon = loadNative();
    const poolBlocks = (blockBytes: number): number => {
      const f = fifo();
      const s = new NativeStream(
        addon,
        { fd: f.r, output: false, blockBytes, unitBytes: 16, timeoutMs: 0 },
        WHERE,
      );
      s.start();
      const n = s.stats().poolBlocks;
      s.close();
      return n;
    };
    // The pool is the queue plus two blocks (the one filling, the one in hand).
    assert.equal(poolBlocks(65536), (2 * 1024 * 1024) / 65536 + 2);
    assert.equal(poolBlocks(1024), 64 + 2);
    assert.equal(poolBlocks(1024 * 1024), 4 + 2);
  });

  it('keeps its test hooks out of the production interface', () => {
    const addon = loadNative() as unknown as Record<string, unknown>;
    assert.equal(addon.addressOf, undefined, 'no addressOf export');
    const proto = (addon.Stream as { prototype: object }).prototype;
    assert.ok(!('poke' in proto), 'no Stream.poke');
    assert.ok(!('blockAddresses' in proto), 'no Stream.blockAddresses');
    const saved = process.env.IIOKIT_TEST_HOOKS;
    delete process.env.IIOKIT_TEST_HOOKS;
    try {
      assert.throws(() => (addon.testHooks as () => unknown)(), /IIOKIT_TEST_HOOKS=1/);
    } finally {
      if (saved !== undefined) process.env.IIOKIT_TEST_HOOKS = saved;
    }
    const hooks = nativeTestHooks();
    const b = Buffer.alloc(8);
    assert.equal(typeof hooks.addressOf(b), 'bigint');
  });
});
