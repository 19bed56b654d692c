/**
 * Flow throughput: iio-capture → one function node in a real Node-RED 4 runtime, against
 * the bare Node-RED hop (a minimal source node → the same function node) and the
 * library's own stream loop, at 4 KiB and 64 KiB blocks (bench/flow-worker.ts).
 *
 * The three sides run in processes of their own, started once; in each round each side
 * in turn is continued (SIGCONT), given 200 ms, measured for 1 s, and stopped again
 * (SIGSTOP), so that the sides alternate round by round and never run at the same time.
 * CPU: the measured process's user + sys during its window. Also counts payload copies:
 * a payload that is not the very Buffer the source handed out was copied somewhere.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { compare, countPerSec, num, stat, type BenchRow, type Run } from './harness';

export const title = 'nodes: capture → function flow';

interface Report {
  bytes: number;
  msgs: number;
  ns: number;
  cpuUs: number;
  copies: number;
  delivered: number;
  dropped: number;
}

class Worker {
  private readonly proc: ChildProcess;
  private readonly ready: Promise<void>;
  private answer: ((r: Report) => void) | undefined;
  last: Report | undefined;

  constructor(blockBytes: number, mode: string) {
    this.proc = fork(join(__dirname, 'flow-worker.js'), [String(blockBytes), mode], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let err = '';
    this.proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    this.ready = new Promise((resolve, reject) => {
      this.proc.on('message', (m: Report | { ready: true }) => {
        if ('ready' in m) resolve();
        else {
          this.last = m;
          this.answer?.(m);
        }
      });
      this.proc.once('exit', (code) =>
        reject(new Error(`flow worker ${mode} exited ${code}: ${err}`)),
      );
    });
  }

  /** Started and streaming, then stopped until measured. */
  async start(): Promise<void> {
    await this.ready;
    this.proc.kill('SIGSTOP');
  }

  async measure(ms: number): Promise<Report> {
    this.proc.kill('SIGCONT');
    await new Promise((r) => setTimeout(r, 200));
    const r = await new Promise<Report>((resolve) => {
      this.answer = resolve;
      this.proc.send({ measure: ms });
    });
    this.proc.kill('SIGSTOP');
    return r;
  }

  stop(): void {
    this.proc.kill('SIGKILL');
  }
}

async function measureSize(blockBytes: number, rounds: number): Promise<BenchRow[]> {
  const modes =
    blockBytes === 65536
      ? ['capture', 'hop']
      : ['capture', 'hop', 'capture-sink', 'hop-sink', 'loop'];
  const workers = new Map<string, Worker>();
  const runs = new Map<string, Run[]>(modes.map((m) => [m, []]));
  try {
    for (const m of modes) {
      const w = new Worker(blockBytes, m);
      workers.set(m, w);
      await w.start(); // one at a time: a starting Node-RED takes a core
    }
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < modes.length; k++) {
        const m = modes[(k + round) % modes.length];
        const r = await workers.get(m)!.measure(1000);
        runs.get(m)!.push({
          bytes: r.bytes,
          count: r.msgs,
          wallNs: r.ns,
          cpuNs: r.cpuUs * 1000,
          round,
        });
      }
    }
  } finally {
    for (const w of workers.values()) w.stop();
  }
  for (const [m, r] of runs) {
    const rate = stat(r.map(countPerSec));
    const cpu = stat(r.map((x) => x.cpuNs / 1000 / (x.count ?? NaN)));
    process.stderr.write(
      `  ${blockBytes} B ${m}: ${num(rate.median / 1000)}k msgs/s, ${num(cpu.median)} µs CPU/msg\n`,
    );
  }
  const last = workers.get('capture')!.last;
  const copies = last
    ? `${last.copies} of ${last.delivered} payloads copied, ${last.dropped} dropped`
    : '';
  const kib = `${blockBytes / 1024} KiB blocks`;
  const loop = stat((runs.get('loop') ?? []).map(countPerSec)).median;
  const side = (m: string, name: string): { name: string; runs: Run[] } => ({
    name,
    runs: runs.get(m)!,
  });
  const how = `${rounds} rounds of 1 s; CPU: the Node-RED process`;
  if (blockBytes === 65536) {
    return [
      compare(
        `${kib}: capture → function`,
        side('capture', 'capture → function'),
        side('hop', 'bare hop → function'),
        { goal: { atLeast: 1000 }, note: `${how}; ${copies}` },
      ),
    ];
  }
  return [
    compare(
      `${kib}: capture → function`,
      side('capture', 'capture → function'),
      side('hop', 'bare hop → function'),
      {
        unit: 'msgs/s',
        rate: countPerSec,
        goal: { atLeast: 200000 },
        note: `${how}; ${copies}`,
      },
    ),
    compare(
      `${kib}: capture → minimal node`,
      side('capture-sink', 'capture → minimal node'),
      side('hop-sink', 'bare hop → minimal node'),
      {
        unit: 'msgs/s',
        rate: countPerSec,
        note: `what the function node costs aside; library stream loop alone: ${num(loop / 1000)}k msgs/s`,
      },
    ),
  ];
}

export async function run(): Promise<BenchRow[]> {
  const rounds = Number(process.env.IIOKIT_BENCH_ROUNDS ?? 5);
  return [...(await measureSize(4096, rounds)), ...(await measureSize(65536, rounds))];
}
