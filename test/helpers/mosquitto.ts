/**
 * Debian's mosquitto started by a test on a free loopback port, optionally bridged to
 * another one (`topic spBv1.0/# both 1`: what the edge publishes on one broker reaches
 * subscribers of the other, and commands flow back).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Mosquitto {
  readonly port: number;
  readonly pid: number;
  readonly url: string;
  /** What mosquitto printed (it logs to stderr). */
  output(): string;
  stop(): Promise<void>;
}

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

async function waitForPort(port: number, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The bridge connects on its own schedule: publish on the far side until a subscriber here
 * receives it (both directions are configured alike).
 */
async function probeBridge(farPort: number, port: number): Promise<void> {
  const mqtt = require('mqtt') as typeof import('mqtt');
  const here = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
  const far = await mqtt.connectAsync(`mqtt://127.0.0.1:${farPort}`, { reconnectPeriod: 0 });
  try {
    let got = false;
    here.on('message', () => (got = true));
    await here.subscribeAsync('iiokit-bridge-probe/#', { qos: 1 });
    const deadline = Date.now() + 15000;
    while (!got) {
      if (Date.now() > deadline) throw new Error(`the bridge ${port} → ${farPort} carries nothing`);
      await far.publishAsync('iiokit-bridge-probe/x', 'probe', { qos: 1 });
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await here.endAsync(true);
    await far.endAsync(true);
  }
}

/** Starts a broker; with `bridgeTo`, it bridges `spBv1.0/#` both ways to that port. */
export async function startMosquitto(
  options: { bridgeTo?: number; maxQueued?: number; sysInterval?: number; port?: number } = {},
): Promise<Mosquitto> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'iiokit-mosq-'));
  const conf = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    ...(options.maxQueued ? [`max_queued_messages ${options.maxQueued}`] : []),
    ...(options.sysInterval ? [`sys_interval ${options.sysInterval}`] : []),
  ];
  if (options.bridgeTo) {
    lines.push(
      `connection bridge-to-${options.bridgeTo}`,
      `address 127.0.0.1:${options.bridgeTo}`,
      'topic spBv1.0/# both 1',
      'topic iiokit-bridge-probe/# both 1',
      'cleansession true',
      'restart_timeout 1',
      'bridge_protocol_version mqttv311',
      'try_private true',
    );
  }
  writeFileSync(conf, `${lines.join('\n')}\n`);
  const child: ChildProcess = spawn('/usr/sbin/mosquitto', ['-c', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitForPort(port);
  if (options.bridgeTo) await probeBridge(options.bridgeTo, port);
  return {
    port,
    pid: child.pid ?? 0,
    url: `mqtt://127.0.0.1:${port}`,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
