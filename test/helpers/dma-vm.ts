/**
 * What the DMABUF kernel tests (test/kernel/dmabuf*.test.ts) share: the VM's DMA buffer
 * devices (Linux 6.12: `dma_adc`, `dma_dac`, iio_dma_loopback.ko, whose samples are a
 * counter: scan n = n, ~n), the proofs (fds, DMABUF mappings, a fresh read() capture after
 * every DMABUF was detached) and the CLI in a child process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { LocalBackendBuffer } from '../../src/backends/local/buffer';
import type { IioBuffer } from '../../src/model/buffer';
import type { Context } from '../../src/model/context';
import { PatternChecker, patternScans } from './counter-pattern';

export const kernel = process.env.IIO_VM_KERNEL ?? '6.1';
export const SYS = '/sys/bus/iio/devices';
export const ROOT = resolve(__dirname, '..', '..', '..');
export const CLI = join(ROOT, 'bin', 'iiokit.js');
export const MiB = 1024 * 1024;
/** About 1 MiB of scans, and not a multiple of 65536 (see above). */
export const SAMPLES = 250000;
export const TOTAL_SCANS = (256 * MiB) / 4;
/** Both channels of dma_adc / dma_dac: 4 bytes per scan. */
export const CH = ['voltage0', 'voltage1'];

export const read = (p: string): string => readFileSync(p, 'utf8').trim();
export const raw = (b: IioBuffer): LocalBackendBuffer =>
  (b as unknown as { raw: LocalBackendBuffer }).raw;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function deviceDir(name: string): string {
  const d = readdirSync(SYS).find(
    (e) => e.startsWith('iio:device') && read(join(SYS, e, 'name')) === name,
  );
  assert.ok(d, `${name} in ${SYS}`);
  return join(SYS, d);
}

/** What this process's fds point at (those that can be read). */
export function fdTargets(pid: number | 'self' = 'self'): string[] {
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
export function dmabufMappings(): Array<[bigint, bigint]> {
  return read('/proc/self/maps')
    .split('\n')
    .filter((l) => l.endsWith(' /dmabuf:'))
    .map((l) => {
      const [a, b] = l.split(' ')[0].split('-');
      return [BigInt(`0x${a}`), BigInt(`0x${b}`)];
    });
}

/** Nothing of the stream is left: fds as before it opened, no DMABUF or fence fd, disabled. */
export function assertClean(dev: string, fdsBefore: string[]): void {
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
export async function assertDetached(ctx: Context, device: string): Promise<void> {
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
export function runCli(
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
export function patternStream(count: number, first = 0): Readable {
  const chunk = 65000;
  return Readable.from(
    (function* () {
      for (let done = 0; done < count; done += chunk)
        yield patternScans(first + done, Math.min(chunk, count - done));
    })(),
  );
}

/**
 * A capture in a Worker of a child process, terminated while it streams: what the process
 * says once terminate() resolved (the transfer mode, streaming threads, DMABUF and fence fds
 * and IIO buffer fds left) and how it ended. The stream's own duplicate of the buffer fd
 * must be closed; the buffer fd the JS side opened stays open, since no JS runs to close it
 * (docs/native.md), so at most one is left.
 */
export function captureInTerminatedWorker(
  device: string,
  samples: number,
  options: Record<string, unknown>,
): Promise<{ line: string; code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const lib = join(ROOT, 'dist', 'src', 'create-context');
  const script = `
    const { Worker } = require('worker_threads');
    const fs = require('fs');
    const w = new Worker(\`
      const { parentPort } = require('worker_threads');
      const { createContext } = require(${JSON.stringify(lib)});
      (async () => {
        const ctx = await createContext('local:', { timeoutMs: 20000 });
        const buf = await ctx.device(${JSON.stringify(device)}).createBuffer(${samples}, ${JSON.stringify(options)});
        let n = 0;
        for await (const b of buf.stream()) {
          b.release();
          if (++n === 4) parentPort.postMessage(buf.stats().transfer?.mode ?? 'none');
        }
      })().catch((e) => parentPort.postMessage('error: ' + e.message));
    \`, { eval: true });
    let mode = '';
    w.on('message', (m) => {
      if (mode) return;
      mode = m;
      w.terminate().then((code) => {
        const names = (dir, read) =>
          fs.readdirSync(dir).map((e) => { try { return read(dir + '/' + e); } catch { return ''; } });
        const threads = names('/proc/self/task', (p) => fs.readFileSync(p + '/comm', 'utf8').trim())
          .filter((t) => t.startsWith('iiokit'));
        const fds = names('/proc/self/fd', (p) => fs.readlinkSync(p));
        const dmabufFds = fds.filter((t) => /^\\/dmabuf:|sync_file/.test(t));
        const bufferFds = fds.filter((t) => t === 'anon_inode:iio:buffer').length;
        process.stdout.write(JSON.stringify({ mode, code, threads, dmabufFds, bufferFds }) + '\\n');
      });
    });
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((res) =>
    child.on('close', (code, signal) => res({ line: out.trim(), code, signal, stderr })),
  );
}
