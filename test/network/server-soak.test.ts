/**
 * Standing test (issue 15): `iiokit serve` under fuzzed lines, slow readers, readers that
 * never read, OPENs asking for all the memory there is and an idle-connection flood, all
 * at once and for a bounded count of rounds. A fresh libiio client (iio_info) must be
 * answered every round, and the server's RSS must stay under the stated bound:
 *
 *   baseline + the memory budget (-m 64 MiB: every buffer and device stream)
 *            + 64 connections × 2 MiB (unread input 1 MiB, a WRITE value 1 MiB)
 *            + 64 MiB (V8's heap growth and the allocator's slack)
 *
 * Everything runs on loopback; the server is a child process so its RSS is its own.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { PEERS, requirePeer } from '../helpers/peers';
import { prng, runAsync } from './server-helpers';

const BIN = join(__dirname, '../../../bin/iiokit.js');
const MiB = 1024 * 1024;
const BUDGET = 64 * MiB;
const BOUND = BUDGET + 64 * 2 * MiB + 64 * MiB;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Fuzz lines: the protocol's words in random order and arity, absurd numbers, bytes. */
function fuzzLine(r: () => number): Buffer {
  const words = [
    'OPEN',
    'CLOSE',
    'READ',
    'WRITE',
    'READBUF',
    'WRITEBUF',
    'GETTRIG',
    'SETTRIG',
    'TIMEOUT',
    'PRINT',
    'ZPRINT',
    'VERSION',
    'HELP',
    'SET',
    'BUFFERS_COUNT',
    'iio:device0',
    'iio:device1',
    'iio:device2',
    'trigger0',
    'voltage0',
    'INPUT',
    'OUTPUT',
    'DEBUG',
    'BUFFER',
    'CYCLIC',
    'sampling_frequency',
    'raw',
    '-1',
    '0',
    '1',
    '16',
    '4294967296',
    '99999999999999999999',
    '0000001f',
    'ffffffff',
    '',
  ];
  const pick = (): string => words[Math.floor(r() * words.length)];
  const n = 1 + Math.floor(r() * 6);
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (r() < 0.1) {
      const b = Buffer.alloc(1 + Math.floor(r() * 12));
      for (let k = 0; k < b.length; k++) b[k] = Math.floor(r() * 256);
      parts.push(b);
    } else parts.push(Buffer.from(pick(), 'latin1'));
    parts.push(Buffer.from(' '));
  }
  parts.push(Buffer.from(r() < 0.5 ? '\r\n' : '\n'));
  return Buffer.concat(parts);
}

describe('iiokit serve under fuzz, slow readers and an idle flood: bounded RSS, always answering', function () {
  this.timeout(300000);
  let server: ChildProcess | undefined;
  const sockets = new Set<Socket>();

  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('close', r));
      server.kill('SIGKILL');
      await exited;
    }
  });

  it(`stays under baseline + ${BOUND / MiB} MiB and answers iio_info every round`, async function () {
    requirePeer(this, PEERS.iioInfo);
    server = spawn(process.execPath, [BIN, 'serve', '-u', 'emu:', '-p', '0', '-m', '64'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    server.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20000)));
    const uri = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no start line: ${log}`)), 30000);
      server!.stderr!.on('data', () => {
        const m = /at (ip:127\.0\.0\.1:(\d+))/.exec(log);
        if (m) {
          clearTimeout(t);
          resolve(m[1]);
        }
      });
    });
    const port = Number(uri.split(':').pop());
    const pid = server.pid!;
    const open = (): Socket => {
      const s = connect({ port, host: '127.0.0.1' });
      s.on('error', () => undefined);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      return s;
    };

    // the device fast enough that an unbounded queue would show within the test
    let r = await runAsync('iio_attr', [
      '-u',
      uri,
      '-d',
      'ad7606-emu',
      'sampling_frequency',
      '200000',
    ]);
    assert.equal(r.status, 0, r.stderr);
    r = await runAsync('iio_info', ['-u', uri]);
    assert.equal(r.status, 0, r.stderr);
    const baseline = rssOf(pid);
    let peak = baseline;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssOf(pid));
      } catch {
        // gone: the status check below says it
      }
    }, 50);
    let running = true;
    try {
      // idle flood: 200 sockets that never say anything, replaced as the server evicts them
      let idleOpened = 0;
      const idle = (): void => {
        if (!running || idleOpened >= 1000) return;
        idleOpened++;
        open().on('close', () => setTimeout(idle, 20));
      };
      for (let i = 0; i < 200; i++) idle();

      // slow readers: one chunk now and then, each on its own channel (demultiplexed copies)
      const masks = ['00000001', '00000002', '00000004', '00000008'];
      for (const m of masks) {
        const s = open();
        s.write(`OPEN iio:device0 65536 ${m}\r\nREADBUF iio:device0 4000000000\r\n`);
        s.pause();
        const tick = setInterval(() => {
          if (!running || s.destroyed) return clearInterval(tick);
          s.once('data', () => s.pause());
          s.resume();
        }, 200);
      }
      // readers that never read at all
      for (let i = 0; i < 2; i++) {
        const s = open();
        s.write('OPEN iio:device0 1048576 0000001f\r\nREADBUF iio:device0 4000000000\r\n');
        s.pause();
      }
      // OPENs asking for everything: 64 MiB each, most refused (-ENOMEM)
      const refusals: string[] = [];
      for (let i = 0; i < 3; i++) {
        const s = open();
        s.on('data', (d: Buffer) => refusals.push(...d.toString().split('\n').filter(Boolean)));
        s.write('OPEN iio:device0 4194304 0000001f\r\n'.repeat(8));
      }
      // fuzz: 5000 lines over 25 connections, replies read and dropped
      const rand = prng(15);
      let fuzzed = 0;
      const fuzzer = (): void => {
        if (!running || fuzzed >= 5000) return;
        const s = open();
        s.on('data', () => undefined);
        const lines: Buffer[] = [];
        for (let i = 0; i < 200; i++) lines.push(fuzzLine(rand));
        fuzzed += 200;
        s.end(Buffer.concat(lines));
        s.on('close', () => setTimeout(fuzzer, 10));
      };
      for (let i = 0; i < 3; i++) fuzzer();

      // a fresh libiio client, every round
      for (let round = 0; round < 12; round++) {
        await new Promise((res) => setTimeout(res, 500));
        const info = await runAsync('iio_info', ['-u', uri], { timeoutMs: 60000 });
        assert.equal(info.status, 0, `round ${round}: ${info.stderr}\n${log}`);
        assert.match(info.stdout.toString(), /iio:device0: ad7606-emu/);
      }
      assert.ok(refusals.includes('-12'), `an OPEN past the budget is -ENOMEM: ${refusals}`);
      assert.ok(fuzzed >= 1000, `${fuzzed} fuzz lines sent`);
    } finally {
      running = false;
      clearInterval(sampler);
    }
    const grew = peak - baseline;
    console.log(
      `      server RSS: baseline ${(baseline / MiB).toFixed(0)} MiB, peak +${(grew / MiB).toFixed(0)} MiB (bound +${BOUND / MiB} MiB)`,
    );
    assert.ok(grew <= BOUND, `RSS grew by ${(grew / MiB).toFixed(1)} MiB`);
    // and it stops cleanly, saying what it did
    for (const s of sockets) s.destroy();
    const exit = new Promise<number | null>((res) => server!.once('close', res));
    server.kill('SIGINT');
    assert.equal(await exit, 0, log);
    assert.match(log, /stopped after \d+ connections \(\d+ refused\)/);
  });
});
