/**
 * Helpers of the server tests: libiio's tools run asynchronously (the server under test
 * lives in this process, so a blocking spawnSync would starve it), a reference iiod, raw
 * protocol conversations.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';

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
