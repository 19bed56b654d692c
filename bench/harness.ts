/**
 * What every bench shares: measuring one run of a command (wall time and the CPU time of
 * its whole process tree), the CPU time of a running process tree (a server), rounds that
 * interleave ours and the reference, and the statistics and rows the table is made of.
 *
 * The machine these benches run on is shared (2 cores, other work running). Three rules
 * follow from that, and every bench keeps them:
 *  - ours and the reference run in alternation, round after round (A B A B …), so a burst
 *    of someone else's load lands on both sides instead of one;
 *  - a ratio is the median of the per-round ratios (each round's pair ran back to back),
 *    and every figure is a median with its spread (min–max over the rounds);
 *  - CPU seconds per GB (user + sys of the process tree) stand beside every rate: on the
 *    ARM boards this runs on CPU is the cost that matters, and it hardly moves with the
 *    load, where throughput swings by 2× and more.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** One measured run of one side. */
export interface Run {
  /** Bytes moved (or processed). */
  readonly bytes: number;
  /** Wall time, ns. */
  readonly wallNs: number;
  /** CPU time (user + sys) of the side's process tree, ns; NaN when unknown. */
  readonly cpuNs: number;
  /** Items handled (messages, samples), when the rate is in items. */
  readonly count?: number;
  /** CPU time of a server process tree during the run, ns (server benches). */
  readonly serverCpuNs?: number;
  /** The round it ran in: ours and the reference are paired by round. */
  readonly round?: number;
}

/** Median, min and max of a series. */
export interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function stat(values: readonly number[]): Stat {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length };
}

/** MB/s of a run (1 MB = 10^6 bytes). */
export const mbps = (r: Run): number => r.bytes / 1e6 / (r.wallNs / 1e9);
/** CPU seconds per GB (10^9 bytes) of a run. */
export const cpuPerGB = (r: Run): number => r.cpuNs / 1e9 / (r.bytes / 1e9);
/** Server CPU seconds per GB of a run. */
export const serverCpuPerGB = (r: Run): number =>
  r.serverCpuNs === undefined ? NaN : r.serverCpuNs / 1e9 / (r.bytes / 1e9);
/** Items (messages, samples) per second of a run. */
export const countPerSec = (r: Run): number => (r.count ?? NaN) / (r.wallNs / 1e9);

/** One side of a row: its rate and CPU cost over the rounds. */
export interface Side {
  readonly name: string;
  readonly rate: Stat;
  /** CPU s/GB of the side's own processes. */
  readonly cpu: Stat;
}

/** What a row must reach: ours / reference (a ratio) or ours alone (an absolute rate). */
export type Goal = { readonly ratio: number } | { readonly atLeast: number };

export interface BenchRow {
  /** What was measured, e.g. `library, 64 KiB blocks vs iio_readdev -b 8192`. */
  readonly case: string;
  /** Unit of the rates (`MB/s`, `msgs/s`, `samples/s`). */
  readonly unit: string;
  readonly ours: Side;
  readonly reference?: Side;
  /** Median of the per-round ratios ours / reference (the rounds ran back to back). */
  readonly ratio?: Stat;
  readonly goal?: Goal;
  /** Anything the reader should know (how it was measured, a skip reason). */
  readonly note?: string;
}

export interface BenchModule {
  readonly title: string;
  run(): Promise<BenchRow[]>;
}

/** A row saying why nothing was measured. */
export function skippedRow(caseName: string, unit: string, why: string): BenchRow {
  const none = stat([]);
  return { case: caseName, unit, ours: { name: 'ours', rate: none, cpu: none }, note: why };
}

/** A row of one figure measured once (no reference, no rounds: e.g. a fleet's latency). */
export function single(caseName: string, value: number, unit: string, note?: string): BenchRow {
  const one = stat([value]);
  return { case: caseName, unit, ours: { name: 'ours', rate: one, cpu: stat([]) }, note };
}

/** A side from its runs: `rate` and `cpu` say what to take from each run. */
export function side(
  name: string,
  runs: readonly Run[],
  rate: (r: Run) => number = mbps,
  cpu: (r: Run) => number = cpuPerGB,
): Side {
  return { name, rate: stat(runs.map(rate)), cpu: stat(runs.map(cpu)) };
}

/**
 * A row comparing two sides measured in the same rounds: runs[i] of both sides ran back
 * to back in round i, so their ratio is measured under the same load.
 */
export function compare(
  caseName: string,
  ours: { name: string; runs: readonly Run[] },
  ref: { name: string; runs: readonly Run[] },
  opts: {
    goal?: Goal;
    note?: string;
    unit?: string;
    rate?: (r: Run) => number;
    cpu?: (r: Run) => number;
  } = {},
): BenchRow {
  const rate = opts.rate ?? mbps;
  const ratios: number[] = [];
  ours.runs.forEach((o, i) => {
    // Same round (a failed run leaves its round out), else the same position.
    const r = o.round !== undefined ? ref.runs.find((x) => x.round === o.round) : ref.runs[i];
    if (r) ratios.push(rate(o) / rate(r));
  });
  return {
    case: caseName,
    unit: opts.unit ?? 'MB/s',
    ours: side(ours.name, ours.runs, rate, opts.cpu),
    reference: side(ref.name, ref.runs, rate, opts.cpu),
    ratio: stat(ratios),
    goal: opts.goal,
    note: opts.note,
  };
}

/** True when the row reaches its goal (undefined: it has none). */
export function meetsGoal(row: BenchRow): boolean | undefined {
  if (!row.goal) return undefined;
  if ('ratio' in row.goal) return (row.ratio?.median ?? NaN) >= row.goal.ratio;
  return row.ours.rate.median >= row.goal.atLeast;
}

/** The measurements of a bench, by side name, in round order. */
export class Series {
  private readonly runs = new Map<string, Run[]>();
  /** Adds a run of side `name` (give it its `round` so that sides pair by round). */
  add(name: string, r: Run): void {
    const list = this.runs.get(name) ?? [];
    list.push(r);
    this.runs.set(name, list);
  }
  get(name: string): Run[] {
    return this.runs.get(name) ?? [];
  }
  get size(): number {
    return this.runs.size;
  }
}

// ---- measuring ----------------------------------------------------------------------------

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on every Linux Node runs on

/** utime + stime + cutime + cstime of one process (all its threads), in ticks. */
function procTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): utime is field 14 → f[11], stime f[12], cutime f[13], cstime f[14]
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0; // gone: its time is in its parent's cutime/cstime once reaped
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (s) for (const c of s.split(' ')) out.push(Number(c));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/**
 * CPU time (user + sys, ns) a process and every live descendant have used so far, plus
 * the descendants already reaped (cutime/cstime): sampled before and after a run, the
 * difference is what the tree spent on it (10 ms resolution, /proc's clock ticks).
 */
export function treeCpuNs(pid: number): number {
  let ticks = 0;
  const stack = [pid];
  const seen = new Set<number>();
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    ticks += procTicks(p);
    stack.push(...childrenOf(p));
  }
  return (ticks * 1e9) / CLK_TCK;
}

/** Result of one measured command. */
export interface CommandRun {
  readonly status: number;
  readonly wallNs: number;
  /** user + sys of every process the command ran (bash's `times`, 1 ms resolution). */
  readonly cpuNs: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a shell command line and measures it from the inside of one bash: wall time by
 * EPOCHREALTIME around it, CPU by `times` (children of that bash, i.e. every process of
 * the command line, each counted once it was waited for). The command's stdout goes to
 * /dev/null unless `keepStdout` (an in-process reader reporting its own figures).
 */
export function measureCommand(
  cmd: string,
  opts: { keepStdout?: boolean; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CommandRun> {
  const sink = opts.keepStdout ? '>&3' : '> /dev/null';
  const script =
    `exec 3>&1 4>&2; s=$EPOCHREALTIME; { ${cmd} ; } ${sink} 2>&4 3>&- 4>&-; rc=$?; ` +
    `e=$EPOCHREALTIME; echo "@@bench $rc $s $e" >&2; times >&2`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
      : undefined;
    child.on('error', reject);
    child.on('close', () => {
      if (timer) clearTimeout(timer);
      const at = err.lastIndexOf('@@bench ');
      if (at < 0) {
        resolve({ status: -1, wallNs: NaN, cpuNs: NaN, stdout: out, stderr: err });
        return;
      }
      const tail = err.slice(at).split('\n');
      const [, rc, s, e] = tail[0].split(' ');
      // `times`: the shell's own user/sys, then its children's: "0m1.234s 0m0.056s"
      const secs = (t: string): number => {
        const m = /^(\d+)m([\d.]+)s$/.exec(t);
        return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
      };
      const kids = (tail[2] ?? '').trim().split(/\s+/);
      resolve({
        status: Number(rc),
        wallNs: Math.round((Number(e) - Number(s)) * 1e9),
        cpuNs: (secs(kids[0]) + secs(kids[1])) * 1e9,
        stdout: out,
        stderr: err.slice(0, at),
      });
    });
  });
}

/**
 * The 1-minute load average, sampled every few seconds while the bench runs: the table
 * says how busy the machine was while it measured.
 */
export class LoadSampler {
  private readonly samples: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  start(everyMs = 5000): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }
  private sample(): void {
    try {
      this.samples.push(Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
    } catch {
      // not Linux: no load figure
    }
  }
  stop(): Stat {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    return stat(this.samples);
  }
}

// ---- rendering ----------------------------------------------------------------------------

/** 3 significant digits, no exponent: 1234 → "1234", 0.4567 → "0.457". */
export function num(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  return n.toFixed(3);
}

/** Rates in samples/s or msgs/s read better in k/M. */
function rateText(n: number, unit: string): string {
  if (!Number.isFinite(n)) return '–';
  if (unit === 'MB/s') return num(n);
  if (Math.abs(n) >= 1e6) return `${num(n / 1e6)}M`;
  if (Math.abs(n) >= 1e3) return `${num(n / 1e3)}k`;
  return num(n);
}

function spreadText(s: Stat, unit: string): string {
  if (!s.n) return '–';
  const med = `${rateText(s.median, unit)} ${unit}`;
  return s.n > 1 ? `${med} (${rateText(s.min, unit)}–${rateText(s.max, unit)})` : med;
}

function cpuText(s: Stat): string {
  if (!s.n) return '–';
  return s.n > 1 ? `${num(s.median)} (${num(s.min)}–${num(s.max)})` : num(s.median);
}

function goalText(row: BenchRow): string {
  if (!row.goal) return '–';
  const ok = meetsGoal(row);
  const want =
    'ratio' in row.goal
      ? `≥ ${row.goal.ratio.toFixed(2)}×`
      : `≥ ${rateText(row.goal.atLeast, row.unit)} ${row.unit}`;
  return `${want} ${ok ? '✓' : '✗'}`;
}

/** One Markdown table of rows (grouped by bench title), the table README.md carries. */
export function renderTable(rows: ReadonlyArray<BenchRow & { group: string }>): string {
  const lines = [
    '| benchmark | case | ours (min–max) | ours CPU s/GB | reference (min–max) | ref. CPU s/GB | ratio (min–max) | goal | note |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  for (const r of rows) {
    const ref = r.reference ? `${spreadText(r.reference.rate, r.unit)} ${r.reference.name}` : '–';
    const ratio =
      r.ratio && r.ratio.n
        ? `${r.ratio.median.toFixed(2)}× (${r.ratio.min.toFixed(2)}–${r.ratio.max.toFixed(2)})`
        : '–';
    lines.push(
      `| ${[
        r.group,
        r.case,
        spreadText(r.ours.rate, r.unit),
        cpuText(r.ours.cpu),
        ref,
        r.reference ? cpuText(r.reference.cpu) : '–',
        ratio,
        goalText(r),
        r.note ?? '',
      ]
        .map(cell)
        .join(' | ')} |`,
    );
  }
  return lines.join('\n');
}
