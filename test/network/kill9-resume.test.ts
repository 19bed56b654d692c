/**
 * kill -9 of iiod mid-stream, on a FIFO-backed device with a clock of its own (scan s is
 * made at s / rate whether read or not: helpers/iiod.ts CLOCK_SOURCE), in a private mount
 * namespace: the library and `iiokit readdev -R` resume and count every lost scan — the
 * counter pattern says how many really were — and nothing is duplicated; `iiokit readdev`
 * without -R stops as libiio's iio_readdev does (issue 15, items 7 and 8, and the
 * standing kill -9 test). Prints the median time from the restart to the first block.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createContext } from '../../src';
import { PEERS, requirePeer } from '../helpers/peers';
import { CLOCK_SOURCE, startFakeIiod, type FakeIiod } from './helpers/iiod';

const RATE = 20000;
const BIN = join(__dirname, '../../../bin/iiokit.js');

/** Scan counters of a block of `voltage0, voltage1[, timestamp]` (4 or 16 bytes a scan). */
function counters(data: Buffer, scanBytes: number): number[] {
  const out: number[] = [];
  for (let off = 0; off + scanBytes <= data.length; off += scanBytes) {
    const s = data.readUInt16LE(off) | (data.readUInt16LE(off + 2) << 16);
    if (scanBytes === 16) {
      // the timestamp is the same clock: it must agree with the counter
      const ts = data.readBigInt64LE(off + 8);
      assert.equal(ts, 10n ** 12n + BigInt(Math.trunc((s * 1e9) / RATE)), `scan ${s}`);
    }
    out.push(s >>> 0);
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('kill -9 of iiod mid-stream: resumed, every lost scan counted, nothing duplicated', function () {
  this.timeout(300000);
  let fake: FakeIiod;

  before(async function () {
    requirePeer(this, PEERS.iiod);
    requirePeer(this, PEERS.root);
    fake = await startFakeIiod([
      {
        name: 'clockadc',
        channels: ['in_voltage0', 'in_voltage1', 'in_timestamp'],
        source: CLOCK_SOURCE,
        attrs: { sampling_frequency: String(RATE) },
      },
    ]);
  });
  after(async () => fake?.stop());

  for (const method of ['timestamps', 'the device rate'] as const) {
    it(`library, counted from ${method}: three outages`, async () => {
      const withTs = method === 'timestamps';
      const ctx = await createContext(fake.uri, { timeoutMs: 5000 });
      const samples = 1000;
      const buf = await ctx.device('clockadc').createBuffer(samples, {
        channels: withTs ? ['voltage0', 'voltage1', 'timestamp'] : ['voltage0', 'voltage1'],
      });
      const scanBytes = buf.scanBytes;
      assert.equal(scanBytes, withTs ? 16 : 4);
      const outages: Array<{ truth: number; counted: number; firstBlockMs: number }> = [];
      let prev = -1;
      let blocks = 0;
      let restartedAt = 0;
      let killed = false;
      try {
        for await (const b of buf.stream()) {
          const c = counters(b.data, scanBytes);
          b.release();
          for (let i = 1; i < c.length; i++) assert.equal(c[i], c[i - 1] + 1, 'within a block');
          const jump = prev < 0 ? 0 : c[0] - prev - 1;
          assert.ok(prev < 0 || c[0] > prev, `scan ${c[0]} after ${prev}: duplicated`);
          prev = c[c.length - 1];
          blocks++;
          // blocks read before the kill may still be queued: the outage shows as a gap
          if (killed && (jump > 0 || b.lost > 0)) {
            assert.ok(restartedAt > 0, 'no data before iiod is back');
            outages.push({ truth: jump, counted: b.lost, firstBlockMs: Date.now() - restartedAt });
            killed = false;
            restartedAt = 0;
            blocks = 0;
            if (outages.length === 3) break;
            continue;
          }
          assert.equal(jump, 0, 'no gap while iiod runs');
          assert.equal(b.lost, 0, 'no loss counted while iiod runs');
          if (blocks === 15 && !killed) {
            fake.killIiod('SIGKILL');
            killed = true;
            // a real outage: the device runs on for a while with nobody reading
            void sleep(300 + 400 * outages.length).then(async () => {
              await fake.restartIiod();
              restartedAt = Date.now();
            });
          }
        }
      } finally {
        await buf.close();
        await ctx.close();
      }
      for (const o of outages) {
        assert.ok(o.truth > 0, JSON.stringify(outages));
        if (withTs) assert.equal(o.counted, o.truth, JSON.stringify(outages));
        else {
          // the first chunk after the outage and the last before it each arrive up to a
          // block (plus scheduling) after their scans were made
          const tolerance = 2 * samples + 0.02 * o.truth;
          assert.ok(
            Math.abs(o.counted - o.truth) <= tolerance,
            `counted ${o.counted}, lost ${o.truth} (±${tolerance}): ${JSON.stringify(outages)}`,
          );
        }
      }
      console.log(
        `      outages (${method}): ${outages.map((o) => `${o.truth} lost, ${o.counted} counted`).join('; ')}; ` +
          `restart to first block: median ${median(outages.map((o) => o.firstBlockMs))} ms`,
      );
    });
  }

  it('iiokit readdev stops as iio_readdev does (refill failed, status 0), saying how many scans it wrote', async function () {
    requirePeer(this, PEERS.iioInfo);
    const args = ['-u', fake.uri, '-b', '1000', 'clockadc', 'voltage0', 'voltage1', 'timestamp'];
    const run = (
      cmd: string,
      argv: string[],
    ): {
      started: Promise<void>;
      done: Promise<{ status: number | null; out: Buffer; err: string }>;
    } => {
      const c = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      let size = 0;
      let started: () => void = () => undefined;
      const startedP = new Promise<void>((r) => (started = r));
      c.stdout.on('data', (d: Buffer) => {
        out.push(d);
        size += d.length;
        if (size > 64 * 1024) started();
      });
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      return {
        started: startedP,
        done: new Promise((resolve) =>
          c.on('close', (status) => resolve({ status, out: Buffer.concat(out), err })),
        ),
      };
    };
    // iiod restarts the device's buffer when a reader joins (a gap for those already
    // reading): libiio's first, then ours, whose data must then be continuous
    const theirs = run('iio_readdev', args);
    await theirs.started;
    const ours = run(process.execPath, [BIN, 'readdev', ...args]);
    await ours.started;
    fake.killIiod('SIGKILL');
    const [o, t] = await Promise.all([ours.done, theirs.done]);
    await fake.restartIiod();
    assert.equal(t.status, 0, t.err);
    assert.equal(o.status, t.status, o.err);
    const line = (s: string): string | undefined =>
      s.split('\n').find((l) => l.startsWith('Unable to refill buffer'));
    // EOF or a reset, depending on what iiod had not read yet when it died: libiio says
    // which, and so do we
    const lost = /^Unable to refill buffer: (Broken pipe \(32\)|Connection reset by peer \(104\))$/;
    assert.match(line(t.err) ?? '', lost, t.err);
    assert.match(line(o.err) ?? '', lost, o.err);
    // what it wrote is continuous, and it says how much that was
    const c = counters(o.out, 16);
    // (iiod restarts its buffer once more as our reader joins: one gap in the first blocks)
    for (let i = 2000; i < c.length; i++) assert.equal(c[i], c[i - 1] + 1, `scan ${i}`);
    const m = /the connection to the server was lost after (\d+) scans; stopped/.exec(o.err);
    assert.ok(m, o.err);
    assert.equal(Number(m[1]), c.length);
  });

  it('iiokit readdev -R resumes: each gap in its output is the count it says on stderr', async () => {
    const c = spawn(
      process.execPath,
      [
        BIN,
        'readdev',
        '-R',
        '-u',
        fake.uri,
        '-b',
        '1000',
        'clockadc',
        'voltage0',
        'voltage1',
        'timestamp',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out: Buffer[] = [];
    let size = 0;
    let err = '';
    const waitBytes = async (n: number): Promise<void> => {
      for (let i = 0; i < 2000 && size < n; i++) await sleep(10);
      assert.ok(size >= n, `only ${size} bytes: ${err}`);
    };
    c.stdout.on('data', (d: Buffer) => {
      out.push(d);
      size += d.length;
    });
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const done = new Promise<number | null>((r) => c.on('close', r));
    for (let cycle = 0; cycle < 2; cycle++) {
      await waitBytes(size + 64 * 1024);
      fake.killIiod('SIGKILL');
      await sleep(500);
      await fake.restartIiod();
    }
    await waitBytes(size + 64 * 1024);
    c.kill('SIGINT');
    assert.equal(await done, 0, err);
    const cs = counters(Buffer.concat(out), 16);
    const gaps: Array<{ at: number; lost: number }> = [];
    for (let i = 1; i < cs.length; i++) {
      assert.ok(cs[i] > cs[i - 1], `scan ${cs[i]} after ${cs[i - 1]}: duplicated`);
      if (cs[i] !== cs[i - 1] + 1) gaps.push({ at: i, lost: cs[i] - cs[i - 1] - 1 });
    }
    const said = [...err.matchAll(/iiokit readdev: (\d+) scans lost after scan (\d+)/g)].map(
      (m) => ({ at: Number(m[2]), lost: Number(m[1]) }),
    );
    assert.equal(gaps.length, 2, err);
    assert.deepEqual(said, gaps, err);
    const total = gaps.reduce((n, g) => n + g.lost, 0);
    assert.match(err, new RegExp(`${total} scans lost in all, ${cs.length} written`));
  });
});
