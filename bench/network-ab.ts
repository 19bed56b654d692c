/**
 * Paired A/B of `ip:` capture builds, in the network bench's setup (iiod 0.24 on loopback
 * serving the FIFO-backed fakeadc, 512 KiB blocks):
 *
 *   node dist/bench/network-ab.js <rounds> <MiB> <name>=<repo dir>[,ENV=value...] ...
 *
 * Each side runs bench/capture-reader.js of its own build (a worktree of main beside yours,
 * or the same build with an env switch) once per round, in a rotating order; `libiio` and
 * `libiio-pipe` as the dir run `iio_readdev > /dev/null` and `iio_readdev | cat`. Prints,
 * per side, the medians and spread of MB/s, the reader's CPU s/GB and iiod's CPU s/GB, and
 * for each side against the first the median of the per-round ratios and in how many rounds
 * it was lower: on a shared 2-core machine single rounds vary by ±30 %, pairs by round much
 * less. Not part of `npm run bench` (it writes nothing). Needs root, iiod and iio_readdev.
 */
import { join } from 'node:path';
import { NAMESPACE_SETUP } from '../test/helpers/fifo-namespace';
import { cpuPerGB, mbps, num, serverCpuPerGB, stat, type Run } from './harness';
import { namespacesAvailable, runPlan, type PlanSide } from './ns-runner';

const SAMPLES = 65536;
const SCAN = 8;
const PORT = 39863;

function side(spec: string, uri: string, bytes: number): PlanSide {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`"${spec}": want name=dir[,ENV=value...]`);
  const name = spec.slice(0, eq);
  const [dir, ...vars] = spec.slice(eq + 1).split(',');
  const env: NodeJS.ProcessEnv = {};
  for (const v of vars) {
    const k = v.indexOf('=');
    if (k <= 0) throw new Error(`"${v}": want ENV=value`);
    env[v.slice(0, k)] = v.slice(k + 1);
  }
  const rd = `iio_readdev -u ${uri} -b ${SAMPLES} -s ${bytes / SCAN} fakeadc`;
  const common = { name, bytes, env, server: 'iiod' };
  if (dir === 'libiio') return { ...common, cmd: rd };
  if (dir === 'libiio-pipe') return { ...common, cmd: `${rd} | cat` };
  const reader = join(dir, 'dist/bench/capture-reader.js');
  return {
    ...common,
    cmd: `"${process.execPath}" ${reader} ${uri} fakeadc ${bytes} ${SAMPLES}`,
    reports: true,
  };
}

function line(label: string, values: number[]): string {
  const s = stat(values);
  return `${label} ${num(s.median)} [${num(s.min)}–${num(s.max)}]`;
}

async function main(): Promise<void> {
  const [roundsArg, mibArg, ...specs] = process.argv.slice(2);
  const rounds = Number(roundsArg);
  const bytes = Number(mibArg) * 1024 * 1024;
  if (!(rounds > 0) || !(bytes > 0) || !specs.length) {
    throw new Error('usage: network-ab.js <rounds> <MiB> name=dir[,ENV=value...] ...');
  }
  // as bench/run.ts: no CA bundle parsed at every Node start (nothing here uses TLS)
  delete process.env.NODE_EXTRA_CA_CERTS;
  const why = namespacesAvailable();
  if (why) throw new Error(why);
  const uri = `ip:127.0.0.1:${PORT}`;
  const sides = specs.map((s) => side(s, uri, bytes));
  const res = await runPlan(NAMESPACE_SETUP, {
    rounds,
    background: 'while :; do cat /dev/zero > /dev/iio:device0 2>/dev/null; done',
    servers: [{ name: 'iiod', cmd: `iiod -p ${PORT}`, port: PORT }],
    sides,
  });
  const out: string[] = [];
  for (const s of sides) {
    const runs = res.series.get(s.name);
    out.push(
      `${s.name} (${runs.length} runs): ${line('MB/s', runs.map(mbps))}, ` +
        `${line('CPU s/GB', runs.map(cpuPerGB))}, ${line('iiod s/GB', runs.map(serverCpuPerGB))}`,
    );
  }
  const first = sides[0].name;
  const byRound = (name: string): Map<number, Run> =>
    new Map(res.series.get(name).map((r) => [r.round ?? -1, r]));
  const a = byRound(first);
  for (const s of sides.slice(1)) {
    const pairs = [...byRound(s.name)].filter(([k]) => a.has(k)).map(([k, r]) => [a.get(k)!, r]);
    const ratio = (label: string, f: (r: Run) => number): string => {
      const v = pairs.map(([x, y]) => f(y) / f(x)).filter((x) => Number.isFinite(x));
      return `${label} ${num(stat(v).median)} (lower in ${v.filter((x) => x < 1).length}/${v.length})`;
    };
    out.push(
      `${s.name}/${first} by round: ${ratio('MB/s', mbps)}, ${ratio('CPU', cpuPerGB)}, ` +
        `${ratio('iiod', serverCpuPerGB)}`,
    );
  }
  if (res.failures.length) out.push(`failed: ${res.failures.join('; ')}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`network-ab: ${String(err)}\n`);
  process.exitCode = 1;
});
