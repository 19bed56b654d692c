/**
 * `npm run bench`: runs every bench/*.bench.ts module and prints one table of results,
 * each ours-vs-reference pair measured side by side in the same run (ratios, not
 * absolute times, are what compare across machines). Not a test: nothing is asserted.
 *
 * A module exports `title` and `run(): Promise<BenchRow[]>`.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchRow {
  /** What was measured, e.g. `capture 64 KiB blocks, FIFO device`. */
  readonly case: string;
  /** Our figure and its unit. */
  readonly ours: number;
  /** The reference figure (libiio, raw pipe, ...), same unit. */
  readonly reference?: number;
  readonly referenceName?: string;
  readonly unit: string;
  /** Anything the reader should know (skipped reason, target). */
  readonly note?: string;
}

export interface BenchModule {
  readonly title: string;
  run(): Promise<BenchRow[]>;
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const files = readdirSync(__dirname)
    .filter((f) => f.endsWith('.bench.js'))
    .filter((f) => !only.length || only.some((o) => f.includes(o)))
    .sort();
  const rows: Array<BenchRow & { group: string }> = [];
  for (const f of files) {
    const mod = require(join(__dirname, f)) as BenchModule;
    process.stderr.write(`bench: ${mod.title}...\n`);
    try {
      for (const r of await mod.run()) rows.push({ ...r, group: mod.title });
    } catch (err) {
      rows.push({ group: mod.title, case: 'failed', ours: NaN, unit: '', note: String(err) });
    }
  }
  const date = new Date().toISOString().slice(0, 10);
  const fmt = (n: number | undefined): string =>
    n === undefined || Number.isNaN(n) ? '–' : n >= 100 ? n.toFixed(0) : n.toFixed(2);
  console.log(
    `\nBenchmarks measured ${date} on ${require('node:os').cpus().length} cores, Node ${process.version}\n`,
  );
  console.log('| benchmark | case | ours | reference | ratio | note |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    const ref =
      r.reference !== undefined
        ? `${fmt(r.reference)} ${r.unit} (${r.referenceName ?? 'ref'})`
        : '–';
    const ratio = r.reference ? `${(r.ours / r.reference).toFixed(2)}×` : '–';
    console.log(
      `| ${r.group} | ${r.case} | ${fmt(r.ours)} ${r.unit} | ${ref} | ${ratio} | ${r.note ?? ''} |`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
