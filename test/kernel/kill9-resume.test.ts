/**
 * Standing test (issue 15), in the VM: kill -9 of libiio's iiod serving the real kernel
 * while we stream `loopback_adc` (triggered by hrtimer0): the library and `iiokit readdev
 * -R` resume, the outage is counted, nothing is duplicated. The counter pattern is the
 * kernel's own: every scan carries the trigger's timestamp, one period apart, so a gap of
 * Δ ns is Δ / period − 1 scans the device made while nobody read them.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createContext } from '../../src';
import { PEERS, requirePeer, run } from '../helpers/peers';
import { freePort, waitForPort } from '../network/helpers/iiod';

const RATE = 200;
const PERIOD_NS = 1e9 / RATE;
const BIN = join(__dirname, '../../../bin/iiokit.js');
const TRIGGER = '/sys/bus/iio/devices/trigger0/sampling_frequency';

/** Timestamps of scans of `voltage0, timestamp` (16 bytes: s16, padding, s64). */
function stamps(data: Buffer): bigint[] {
  const out: bigint[] = [];
  for (let off = 0; off + 16 <= data.length; off += 16) out.push(data.readBigInt64LE(off + 8));
  return out;
}

/**
 * The trigger's real period: the mean interval between scans while they flowed (outages,
 * over 20 nominal periods, left out). An emulated CPU's timer is late now and then, so
 * this differs from 1 / sampling_frequency by a few %, and it is what the device made
 * scans at, missed ticks included.
 */
function meanPeriod(ts: bigint[]): number {
  let sum = 0;
  let n = 0;
  for (let i = 1; i < ts.length; i++) {
    const d = Number(ts[i] - ts[i - 1]);
    if (d < 20 * PERIOD_NS) {
      sum += d;
      n++;
    }
  }
  return n ? sum / n : PERIOD_NS;
}

/** Scans missed between two timestamps, by the trigger's period. */
const missed = (a: bigint, b: bigint, period: number): number =>
  Math.round(Number(b - a) / period) - 1;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('kernel: kill -9 of iiod mid-stream: resumed, the outage counted, nothing duplicated', function () {
  this.timeout(900000);
  let iiod: ChildProcess | undefined;
  let port = 0;
  let uri = '';
  let savedRate = '';

  const startIiod = async (): Promise<void> => {
    iiod = spawn('iiod', ['-p', String(port)], { stdio: 'ignore' });
    await waitForPort(port);
  };
  const killIiod = async (): Promise<void> => {
    const p = iiod!;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  };

  before(async function () {
    requirePeer(this, PEERS.vm);
    requirePeer(this, PEERS.iiod);
    port = await freePort();
    uri = `ip:127.0.0.1:${port}`;
    savedRate = run('cat', [TRIGGER]).stdout.trim();
    run('sh', ['-c', `echo ${RATE} > ${TRIGGER}`]);
    await startIiod();
  });
  after(async () => {
    iiod?.kill('SIGKILL');
    const ctx = await createContext('local:').catch(() => undefined);
    await ctx
      ?.device('loopback_adc')
      .setTrigger(null)
      .catch(() => undefined);
    await ctx?.close();
    if (savedRate) run('sh', ['-c', `echo ${savedRate} > ${TRIGGER}`]);
  });

  it('library: two outages, each counted from the timestamps', async () => {
    const ctx = await createContext(uri, { timeoutMs: 20000 });
    const buf = await ctx.device('loopback_adc').createBuffer(50, {
      channels: ['voltage0', 'timestamp'],
      trigger: 'hrtimer0',
    });
    const outages: Array<{ from: bigint; to: bigint; truth: number; counted: number; ms: number }> =
      [];
    const all: bigint[] = [];
    let last: bigint | undefined;
    let blocks = 0;
    let killed = false;
    let restartedAt = 0;
    try {
      for await (const b of buf.stream()) {
        const ts = stamps(b.data);
        b.release();
        all.push(...ts);
        for (let i = 1; i < ts.length; i++) assert.ok(ts[i] > ts[i - 1], 'within a block');
        const gap = last === undefined ? 0 : missed(last, ts[0], PERIOD_NS);
        assert.ok(last === undefined || ts[0] > last, 'duplicated');
        const before = last;
        last = ts[ts.length - 1];
        blocks++;
        if (killed && (b.lost > 0 || gap > RATE / 10)) {
          assert.ok(restartedAt > 0, 'no data before iiod is back');
          outages.push({
            from: before!,
            to: ts[0],
            truth: 0,
            counted: b.lost,
            ms: Date.now() - restartedAt,
          });
          killed = false;
          restartedAt = 0;
          blocks = 0;
          if (outages.length === 2) break;
          continue;
        }
        if (blocks === 6 && !killed) {
          killed = true;
          await killIiod();
          await sleep(1000);
          await startIiod();
          restartedAt = Date.now();
        }
      }
    } finally {
      await buf.close();
      await ctx.close();
    }
    const period = meanPeriod(all);
    for (const o of outages) o.truth = missed(o.from, o.to, period);
    for (const o of outages) {
      assert.ok(
        o.truth > RATE / 2,
        JSON.stringify(outages, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
      );
      // the counted period is the last block's mean: a slow VM's timer jitters
      assert.ok(
        Math.abs(o.counted - o.truth) <= 2 + 0.02 * o.truth,
        `counted ${o.counted}, lost ${o.truth} (period ${period} ns)`,
      );
    }
    const ms = outages.map((o) => o.ms).sort((a, b) => a - b);
    console.log(
      `      outages: ${outages.map((o) => `${o.truth} lost, ${o.counted} counted`).join('; ')}; period ${period.toFixed(0)} ns; restart to first block: median ${ms[Math.floor(ms.length / 2)]} ms`,
    );
  });

  it('iiokit readdev -R: the gap in its output is the count it says', async () => {
    // hrtimer0 at RATE (-t would set it to libiio's 100 Hz)
    const local = await createContext('local:');
    await local.device('loopback_adc').setTrigger('hrtimer0');
    await local.close();
    const c = spawn(
      process.execPath,
      [BIN, 'readdev', '-R', '-u', uri, '-b', '50', 'loopback_adc', 'voltage0', 'timestamp'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out: Buffer[] = [];
    let size = 0;
    let err = '';
    c.stdout.on('data', (d: Buffer) => {
      out.push(d);
      size += d.length;
    });
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const done = new Promise<number | null>((r) => c.on('close', r));
    const waitBytes = async (n: number): Promise<void> => {
      for (let i = 0; i < 6000 && size < n; i++) await sleep(10);
      assert.ok(size >= n, `only ${size} bytes: ${err}`);
    };
    await waitBytes(16 * 300);
    await killIiod();
    await sleep(1000);
    await startIiod();
    await waitBytes(size + 16 * 300);
    c.kill('SIGINT');
    assert.equal(await done, 0, err);
    const ts = stamps(Buffer.concat(out));
    const period = meanPeriod(ts);
    const gaps: Array<{ at: number; lost: number }> = [];
    for (let i = 1; i < ts.length; i++) {
      assert.ok(ts[i] > ts[i - 1], `scan ${i}: duplicated`);
      const m = missed(ts[i - 1], ts[i], period);
      if (m > RATE / 10) gaps.push({ at: i, lost: m });
    }
    const said = [...err.matchAll(/iiokit readdev: (\d+) scans lost after scan (\d+)/g)].map(
      (m) => ({ at: Number(m[2]), lost: Number(m[1]) }),
    );
    assert.equal(gaps.length, 1, `${JSON.stringify(gaps)} ${err}`);
    assert.equal(said.length, 1, err);
    assert.equal(said[0].at, gaps[0].at);
    assert.ok(Math.abs(said[0].lost - gaps[0].lost) <= 2 + 0.02 * gaps[0].lost, err);
  });
});
