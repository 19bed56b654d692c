/**
 * A fleet of Sparkplug B edge nodes on one broker: 200 edge nodes (each an `emu:` context:
 * an ADC at 1 kHz, an accelerometer at 100 Hz, a DAC and a trigger, published with a 1 s
 * interval) in a few worker processes (bench/sparkplug-worker.ts), one mosquitto, and the
 * test host (test/helpers/sparkplug-host.ts) subscribed to everything, decoding and
 * checking every message. Measured over the same window: the broker's messages in and out
 * per second ($SYS counters), ours (published by the edge nodes, and received by the
 * host), CPU per edge node, mosquitto's CPU, and the end-to-end latency from a sample's
 * timestamp (the device's timestamp channel, CLOCK_REALTIME) to the host's receipt, median
 * and 99th percentile. Not a test: nothing is asserted; protocol violations are reported.
 *
 * IIOKIT_SPARKPLUG_EDGES (200), IIOKIT_SPARKPLUG_WORKERS (4), IIOKIT_SPARKPLUG_SECONDS (30).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startMosquitto } from '../test/helpers/mosquitto';
import { SparkplugHost } from '../test/helpers/sparkplug-host';
import { single, skippedRow, type BenchRow } from './harness';

export const title = 'sparkplug: 200 edge nodes, one broker';

interface WorkerResult {
  edges: number;
  seconds: number;
  cpuSeconds: number;
  messages: number;
  rssMiB: number;
  skipped: number;
  streamErrors: number;
}

const EDGES = Number(process.env.IIOKIT_SPARKPLUG_EDGES ?? 200);
const WORKERS = Number(process.env.IIOKIT_SPARKPLUG_WORKERS ?? 4);
const SECONDS = Number(process.env.IIOKIT_SPARKPLUG_SECONDS ?? 30);
const INTERVAL_MS = 1000;

/** CPU seconds a process has used (utime + stime from /proc). */
function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

class Worker {
  readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];

  constructor(url: string, count: number, first: number) {
    this.child = spawn(
      process.execPath,
      [
        join(__dirname, 'sparkplug-worker.js'),
        url,
        String(count),
        String(first),
        String(INTERVAL_MS),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      this.lines.push(l);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  async line(pred: (l: string) => boolean, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = this.lines.find(pred);
      if (l) return l;
      if (this.child.exitCode !== null) throw new Error(`worker exited (${this.child.exitCode})`);
      if (Date.now() > deadline) throw new Error('worker did not answer in time');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 500);
      });
    }
  }

  send(l: string): void {
    this.child.stdin!.write(`${l}\n`);
  }

  exited(): Promise<void> {
    if (this.child.exitCode !== null) return Promise.resolve();
    return new Promise((r) => this.child.once('exit', () => r()));
  }
}

export async function run(): Promise<BenchRow[]> {
  if (!existsSync('/usr/sbin/mosquitto')) {
    return [skippedRow('fleet', 'msgs/s', 'skipped: mosquitto is not installed')];
  }
  const broker = await startMosquitto({ sysInterval: 1 });
  const host = await SparkplugHost.connect(broker.url);
  host.keepData = false;
  const sys = new Map<string, number>();
  await host.client.subscribeAsync('$SYS/broker/messages/+', { qos: 0 });
  host.client.on('message', (topic, payload) => {
    if (topic.startsWith('$SYS/')) sys.set(topic, Number(payload.toString()));
  });
  let measuring = false;
  const latencies: number[] = [];
  host.onDataMetric = (name, timestamp, receivedAt) => {
    if (measuring && timestamp !== undefined && name.endsWith('/Value'))
      latencies.push(receivedAt - timestamp);
  };
  const workers: Worker[] = [];
  try {
    const per = Math.ceil(EDGES / WORKERS);
    for (let first = 0; first < EDGES; first += per) {
      workers.push(new Worker(broker.url, Math.min(per, EDGES - first), first));
    }
    await Promise.all(workers.map((w) => w.line((l) => l === 'ready', 120000)));
    // Let every stream settle into its block rhythm.
    await new Promise((r) => setTimeout(r, 10000));
    const sysAt = async (): Promise<{ received: number; sent: number }> => {
      // $SYS is published every second: take the next values.
      sys.clear();
      while (!sys.has('$SYS/broker/messages/received') || !sys.has('$SYS/broker/messages/sent'))
        await new Promise((r) => setTimeout(r, 50));
      return {
        received: sys.get('$SYS/broker/messages/received')!,
        sent: sys.get('$SYS/broker/messages/sent')!,
      };
    };
    const sys0 = await sysAt();
    const brokerCpu0 = procCpuSeconds(broker.pid);
    const hostLog0 = host.log.length;
    const t0 = performance.now();
    measuring = true;
    for (const w of workers) w.send('start');
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    for (const w of workers) w.send('stop');
    measuring = false;
    const results = await Promise.all(
      workers.map(
        async (w) => JSON.parse(await w.line((l) => l.startsWith('{'), 30000)) as WorkerResult,
      ),
    );
    const seconds = (performance.now() - t0) / 1000;
    const sys1 = await sysAt();
    const sysSeconds = seconds + 1; // the $SYS samples bracket the window to within a second
    const brokerCpu = procCpuSeconds(broker.pid) - brokerCpu0;
    const hostMsgs = host.log.length - hostLog0;
    await Promise.all(workers.map((w) => w.exited()));
    const edges = results.reduce((a, r) => a + r.edges, 0);
    const cpu = results.reduce((a, r) => a + r.cpuSeconds, 0);
    const ours = results.reduce((a, r) => a + r.messages, 0) / seconds;
    const skipped = results.reduce((a, r) => a + r.skipped, 0);
    const streamErrors = results.reduce((a, r) => a + r.streamErrors, 0);
    const rss = results.reduce((a, r) => a + r.rssMiB, 0);
    latencies.sort((a, b) => a - b);
    const violations = host.violations.length;
    const note = `${edges} edge nodes in ${results.length} processes, interval ${INTERVAL_MS} ms, ${SECONDS} s window`;
    return [
      single(
        'broker: messages in',
        (sys1.received - sys0.received) / sysSeconds,
        'msgs/s',
        'mosquitto $SYS/broker/messages/received (includes $SYS and the host’s own)',
      ),
      single(
        'broker: messages out',
        (sys1.sent - sys0.sent) / sysSeconds,
        'msgs/s',
        'mosquitto $SYS/broker/messages/sent',
      ),
      single('edge nodes: messages published', ours, 'msgs/s', note),
      single(
        'host: Sparkplug messages received and checked',
        hostMsgs / seconds,
        'msgs/s',
        `${violations} protocol violations; ${skipped} data intervals skipped (broker behind); ${streamErrors} stream errors`,
      ),
      single(
        'CPU per edge node',
        (cpu / edges / seconds) * 1000,
        'ms CPU/s',
        `emu data generation included; ${(cpu / seconds).toFixed(2)} cores for all; ${(rss / edges).toFixed(1)} MiB RSS per edge node`,
      ),
      single('CPU of mosquitto', (brokerCpu / seconds) * 1000, 'ms CPU/s'),
      single(
        'latency sample → host, median',
        percentile(latencies, 50),
        'ms',
        `${latencies.length} Value metrics; sample time from the device's timestamp channel`,
      ),
      single('latency sample → host, p99', percentile(latencies, 99), 'ms'),
    ];
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await host.close();
    await broker.stop();
  }
}
