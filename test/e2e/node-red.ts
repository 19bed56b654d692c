/**
 * Runs a real Node-RED (the npm start launcher) on a temporary user directory and an
 * ephemeral port, for end-to-end tests that talk to it over HTTP (admin API, editor,
 * dashboard) like a user or a script would.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareUserDir, runNodeRed, type FlowNode } from '../../scripts/start';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningNodeRed {
  readonly url: string;
  readonly port: number;
  readonly userDir: string;
  readonly child: ChildProcess;
  /** Everything Node-RED printed so far. */
  log(): string;
  stop(): Promise<void>;
}

/** Starts Node-RED with the given flows (default: the examples) and waits until it serves. */
export async function startNodeRed(flows?: FlowNode[]): Promise<RunningNodeRed> {
  const port = await freePort();
  const userDir = mkdtempSync(join(tmpdir(), 'iiokit-nr-'));
  const settings = prepareUserDir(userDir, {
    port,
    host: '127.0.0.1',
    ...(flows ? { flows } : {}),
  });
  const child = runNodeRed(userDir, settings, 'pipe');
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Node-RED exited (${child.exitCode}):\n${out}`);
    try {
      const r = await fetch(`${url}/flows`);
      if (r.ok && /Started flows/.test(out)) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Node-RED did not start in 60 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    port,
    userDir,
    child,
    log: () => out,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 15000);
        await exited;
        clearTimeout(t);
      }
      rmSync(userDir, { recursive: true, force: true });
    },
  };
}
