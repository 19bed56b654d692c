/**
 * `npm run bench [name ...]`: runs every bench/*.bench.ts module (or those whose file name
 * contains one of the names) and prints one table: for each row ours and the reference
 * (medians of interleaved rounds, with their spread), the CPU seconds per GB of each, the
 * ratio and the goal. Not a test: nothing is asserted.
 *
 * A full run (no names) also writes the table, with the date, the machine and the load
 * average during the run, into README.md between the `bench:table` markers, so the README
 * carries exactly what the code printed. A module exports `title` and `run()`.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import {
  LoadSampler,
  meetsGoal,
  num,
  renderTable,
  skippedRow,
  type BenchModule,
  type BenchRow,
} from './harness';

export type { BenchModule, BenchRow } from './harness';

const README = join(__dirname, '../../README.md');
const START = '<!-- bench:table:start (written by `npm run bench`; do not edit) -->';
const END = '<!-- bench:table:end -->';

/** Replaces what stands between the markers in `text` (the markers stay). */
export function replaceBetweenMarkers(text: string, body: string): string {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${START} … ${END} section`);
  return `${text.slice(0, a + START.length)}\n${body}\n${text.slice(b)}`;
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  // Some machines (this one) set NODE_EXTRA_CA_CERTS: every Node process then parses a CA
  // bundle before running any code, 50-60 ms of CPU that rows timed from process start
  // (iiokit readdev) would pay and iio_readdev would not. Nothing here uses TLS.
  delete process.env.NODE_EXTRA_CA_CERTS;
  const files = readdirSync(__dirname)
    .filter((f) => f.endsWith('.bench.js'))
    .filter((f) => !only.length || only.some((o) => f.includes(o)))
    .sort();
  const load = new LoadSampler();
  load.start();
  const t0 = Date.now();
  const rows: Array<BenchRow & { group: string }> = [];
  for (const f of files) {
    const mod = require(join(__dirname, f)) as BenchModule;
    process.stderr.write(`bench: ${mod.title}...\n`);
    try {
      for (const r of await mod.run()) rows.push({ ...r, group: mod.title });
    } catch (err) {
      rows.push({ ...skippedRow('failed', '', `failed: ${String(err)}`), group: mod.title });
    }
  }
  const la = load.stop();
  const minutes = ((Date.now() - t0) / 60000).toFixed(0);
  const when = new Date().toISOString().replace('T', ' ').slice(0, 16);
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, Linux ${release()}`;
  const header =
    `Measured ${when} UTC by \`npm run bench\` on ${machine}, Node ${process.version}; ` +
    `load average (1 min) during the ${minutes}-minute run: median ${num(la.median)}, ` +
    `${num(la.min)}–${num(la.max)}.`;
  const goals = rows.filter((r) => r.goal);
  const met = goals.filter((r) => meetsGoal(r)).length;
  const summary = `${met} of ${goals.length} rows at their goal.`;
  const table = renderTable(rows);
  console.log(`\n${header} ${summary}\n\n${table}\n`);
  if (only.length) {
    process.stderr.write('bench: a partial run; README.md left as it is\n');
    return;
  }
  const text = readFileSync(README, 'utf8');
  writeFileSync(README, replaceBetweenMarkers(text, `\n${header} ${summary}\n\n${table}\n`));
  process.stderr.write('bench: README.md updated\n');
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
