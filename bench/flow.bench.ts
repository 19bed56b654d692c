/**
 * Flow throughput: iio-capture → one function node in a real Node-RED 4 runtime, at
 * 4 KiB and 64 KiB blocks, against the same block source read by a plain stream loop
 * (no Node-RED) in the same run. Also counts payload copies: a payload that is not the
 * very Buffer the source handed out was copied somewhere (target: none). Target
 * throughput at 64 KiB: ≥ 1 GB/s. Each case runs in its own process (bench/flow-worker.ts).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { BenchRow } from './run';

export const title = 'nodes: capture → function flow';

interface WorkerResult {
  blockBytes: number;
  ours: { mbps: number; msgs: number; copies: number; delivered: number; dropped: number };
  reference: { mbps: number; msgs: number };
}

function runCase(blockBytes: number): WorkerResult {
  const r = spawnSync(process.execPath, [join(__dirname, 'flow-worker.js'), String(blockBytes)], {
    encoding: 'utf8',
    timeout: 120000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) {
    throw new Error(`flow worker (${blockBytes} B) failed: ${r.stderr || r.stdout}`);
  }
  return JSON.parse(line) as WorkerResult;
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const bytes of [4096, 65536]) {
    const r = runCase(bytes);
    const kib = `${bytes / 1024} KiB blocks`;
    const copies = `${r.ours.copies} of ${r.ours.delivered} payloads copied, ${r.ours.dropped} dropped`;
    rows.push({
      case: `${kib}: throughput`,
      ours: r.ours.mbps,
      reference: r.reference.mbps,
      referenceName: 'stream loop, no Node-RED',
      unit: 'MB/s',
      note: bytes === 65536 ? `target ≥ 1000 MB/s; ${copies}` : copies,
    });
    rows.push({
      case: `${kib}: messages`,
      ours: r.ours.msgs,
      reference: r.reference.msgs,
      referenceName: 'stream loop, no Node-RED',
      unit: 'msgs/s',
    });
  }
  return rows;
}
