/**
 * Helpers of the server tests: libiio's tools run asynchronously (the server under test
 * lives in this process, so a blocking spawnSync would starve it), a reference iiod, raw
 * protocol conversations.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import type { Context } from '../../src';

export interface ToolResult {
  readonly stdout: Buffer;
  readonly stderr: string;
  readonly status: number | null;
}

/** Runs a command without blocking the event loop; kills it after timeoutMs. */
export function runAsync(
  cmd: string,
  args: readonly string[],
  opts: { input?: Buffer | string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), status });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** libiio 0.24's iiod serving a URI, as the reference. */
export async function startIiod(uri: string): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn('iiod', ['-u', uri, '-p', String(port)], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await canConnect(port)); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    // iiod 0.24 can take a minute to honour SIGTERM (its thread pool drains slowly):
    // give it a second, then SIGKILL.
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const hard = setTimeout(() => child.kill('SIGKILL'), 1000);
        child.once('exit', () => {
          clearTimeout(hard);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Sends `data` on a new connection and collects the replies until they end with `until`
 * (when given), or the server is quiet for `idleMs`, or closes; then hangs up. The first
 * reply may take `firstMs` (default `idleMs`): a busy machine can be slow to answer at all.
 */
export function converse(
  port: number,
  data: Buffer | string,
  idleMs = 300,
  maxMs = 20000,
  until?: string,
  firstMs = idleMs,
): Promise<{ reply: Buffer; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let idle: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      clearTimeout(max);
      s.destroy();
      resolve({ reply: Buffer.concat(chunks), closedByServer });
    };
    const arm = (ms = idleMs): void => {
      clearTimeout(idle);
      idle = setTimeout(() => finish(false), ms);
    };
    const max = setTimeout(() => finish(false), maxMs);
    s.on('connect', () => {
      s.write(data);
      arm(Math.max(idleMs, firstMs));
    });
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      // The marker may also end an earlier reply (a HELP inside the conversation) when a
      // TCP segment happens to end there: wait a little for more before calling it the end.
      if (until && Buffer.concat(chunks).toString('latin1').endsWith(until))
        arm(Math.min(idleMs, 500));
      else arm();
    });
    s.on('close', () => finish(true));
    s.on('error', (e) => {
      if (!done && !chunks.length) {
        done = true;
        clearTimeout(idle);
        clearTimeout(max);
        reject(e);
      }
    });
  });
}

/** The python3 that has Debian's libiio bindings (`import iio`), if any. */
export { pythonWithIio } from '../helpers/peers';

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A scan of `value (s16 at byte 0), timestamp (s64 at byte 8)`: 16 bytes. */
export interface Scan16 {
  readonly v: number;
  readonly ts: bigint;
}

/** Splits a capture of `value, timestamp` scans (16 bytes each). */
export function scans16(data: Buffer): Scan16[] {
  const out: Scan16[] = [];
  for (let off = 0; off + 16 <= data.length; off += 16) {
    out.push({ v: data.readInt16LE(off), ts: data.readBigInt64LE(off + 8) });
  }
  return out;
}

/**
 * Checks a captured ramp: wherever two scans are one sample period apart (timestamps),
 * the value went up by exactly one (mod 2^16). Returns how many pairs were contiguous.
 */
export function checkRamp(s: readonly Scan16[], periodNs: number): number {
  let contiguous = 0;
  for (let i = 1; i < s.length; i++) {
    const dt = Number(s[i].ts - s[i - 1].ts);
    assert.ok(dt > 0, `timestamps go forward (scan ${i})`);
    if (Math.abs(dt - periodNs) <= 2) {
      contiguous++;
      assert.equal((s[i].v - s[i - 1].v) & 0xffff, 1, `ramp step at scan ${i}`);
    }
  }
  return contiguous;
}

/** ad7606-emu at 2 kS/s with ramps on voltage0 and voltage2, voltage2 `apart` ahead. */
export async function twoRamps(ctx: Context, apart: number): Promise<void> {
  const adc = ctx.findDevice('ad7606-emu')!;
  await adc.writeAttr('sampling_frequency', 2000);
  for (const [id, offset] of [
    ['voltage0', 0],
    ['voltage2', apart],
  ] as const) {
    const ch = adc.findChannel(id)!;
    await ch.writeAttr('waveform', 'ramp');
    await ch.writeAttr('waveform_offset', offset);
  }
}

/**
 * Two readers of twoRamps' device, one on voltage0 and one on voltage2 (each with the
 * timestamp), ran at once: each got `n` well-formed scans of its own channel, and the scans
 * both saw (same timestamp) are the same sample, voltage2 `apart` ahead of voltage0.
 */
export function checkTwoReaders(a: ToolResult, b: ToolResult, n: number, apart: number): void {
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  const sa = scans16(a.stdout);
  const sb = scans16(b.stdout);
  assert.equal(sa.length, n);
  assert.equal(sb.length, n);
  assert.ok(checkRamp(sa, 500000) >= n - 10);
  assert.ok(checkRamp(sb, 500000) >= n - 10);
  const byTs = new Map(sa.map((x) => [x.ts, x.v]));
  let common = 0;
  for (const x of sb) {
    const v = byTs.get(x.ts);
    if (v === undefined) continue;
    common++;
    assert.equal((x.v - v) & 0xffff, apart, 'each reader got its own channel of the same scan');
  }
  assert.ok(common > 1000, `${common} scans seen by both readers`);
}
