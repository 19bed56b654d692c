/**
 * Runs a bench plan inside a private mount + PID namespace (FIFO-backed fake devices, as
 * test/helpers/fifo-namespace.ts and ../shared/bench/libiio-anchor.sh build them), round
 * after round, each side once per round in a rotating order, and prints one `@@run {json}`
 * line per measurement. Used through runPlan() (outside the namespace); this file is also
 * the program run inside it: `node ns-runner.js <plan.json>`.
 *
 * Inside, /proc is the namespace's own (unshare --mount-proc), so a server's PID is what
 * treeCpuNs() reads, and everything started here ends with the namespace.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureCommand, treeCpuNs, Series, type Run } from './harness';

/** A long-running process the sides talk to (iiod, our server). */
export interface PlanServer {
  readonly name: string;
  /** Shell command line; it must listen on `port`. */
  readonly cmd: string;
  readonly port: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** One side: a command run once per round. */
export interface PlanSide {
  readonly name: string;
  /** Shell command line (its stdout goes to /dev/null unless `reports`). */
  readonly cmd: string;
  /** Bytes it moves. */
  readonly bytes: number;
  /**
   * The command prints one JSON line `{ bytes, ns, cpuUs }` measured inside its process
   * (a library reader: its own window, Node's start-up not counted); those figures count.
   */
  readonly reports?: boolean;
  /** Shell command run beside it for its duration (e.g. `dd` feeding exactly `bytes`). */
  readonly feed?: string;
  /** Name of the server whose CPU time during the run is recorded. */
  readonly server?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface Plan {
  readonly rounds: number;
  /** Shell command started once, in the background, before anything (a device feeder). */
  readonly background?: string;
  readonly servers?: readonly PlanServer[];
  readonly sides: readonly PlanSide[];
  /** Per command, ms. */
  readonly timeoutMs?: number;
}

/** What one side's measurement printed (`@@run` lines). */
interface RunLine {
  readonly side: string;
  readonly round: number;
  readonly status: number;
  readonly run: Run;
  readonly stderr: string;
}

function waitPort(port: number, tries = 300): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = (left: number): void => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (left <= 0) reject(new Error(`nothing listens on port ${port}`));
        else setTimeout(() => attempt(left - 1), 100);
      });
    };
    attempt(tries);
  });
}

async function inner(planFile: string): Promise<void> {
  const plan = JSON.parse(readFileSync(planFile, 'utf8')) as Plan;
  const timeoutMs = plan.timeoutMs ?? 180000;
  const started: ChildProcess[] = [];
  if (plan.background) {
    started.push(spawn('bash', ['-c', plan.background], { stdio: 'ignore' }));
  }
  const servers = new Map<string, ChildProcess>();
  for (const s of plan.servers ?? []) {
    const p = spawn('bash', ['-c', `exec ${s.cmd}`], {
      env: { ...process.env, ...s.env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    // Its first lines (what it serves through) go to the outside as `@@log name line`.
    let lines = 0;
    p.stdout!.on('data', (d: Buffer) => {
      for (const l of d.toString().split('\n')) {
        if (l && lines++ < 20) process.stdout.write(`@@log ${s.name} ${l}\n`);
      }
    });
    started.push(p);
    servers.set(s.name, p);
  }
  for (const s of plan.servers ?? []) await waitPort(s.port);
  const sides = plan.sides;
  for (let round = 0; round < plan.rounds; round++) {
    // A rotating order: no side always runs first, or always right after another.
    for (let k = 0; k < sides.length; k++) {
      const sd = sides[(k + round) % sides.length];
      const feed = sd.feed ? spawn('bash', ['-c', sd.feed], { stdio: 'ignore' }) : undefined;
      // (listened to at once: a feeder may end before the reader does)
      const fed = feed && new Promise((res) => feed.once('close', res));
      const srv = sd.server ? servers.get(sd.server) : undefined;
      const s0 = srv?.pid ? treeCpuNs(srv.pid) : undefined;
      const r = await measureCommand(sd.cmd, {
        keepStdout: sd.reports,
        env: sd.env,
        timeoutMs,
      });
      const s1 = srv?.pid ? treeCpuNs(srv.pid) : undefined;
      if (feed) {
        const t = setTimeout(() => feed.kill('SIGKILL'), 5000);
        await fed;
        clearTimeout(t);
      }
      let run: Run = { bytes: sd.bytes, wallNs: r.wallNs, cpuNs: r.cpuNs };
      if (sd.reports) {
        const line = r.stdout.trim().split('\n').pop() ?? '';
        try {
          const rep = JSON.parse(line) as { bytes: number; ns: number; cpuUs: number };
          run = { bytes: rep.bytes, wallNs: rep.ns, cpuNs: rep.cpuUs * 1000 };
        } catch {
          run = { ...run, wallNs: NaN };
        }
      }
      if (s0 !== undefined && s1 !== undefined) run = { ...run, serverCpuNs: s1 - s0 };
      const out: RunLine = {
        side: sd.name,
        round,
        status: r.status,
        run,
        stderr: r.status === 0 ? '' : r.stderr.slice(-400),
      };
      process.stdout.write(`@@run ${JSON.stringify(out)}\n`);
    }
  }
  for (const p of started) p.kill('SIGKILL');
}

/** True when plans can run here: root, and unshare with --mount-proc. */
export function namespacesAvailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (private mount and PID namespace)';
  const r = spawnSync('unshare', ['-m', '-p', '-f', '--mount-proc', 'true']);
  if (r.status !== 0) return 'needs unshare with mount and PID namespaces';
  return undefined;
}

/** The outcome of a plan: every side's runs in round order, and the failures seen. */
export interface PlanResult {
  readonly series: Series;
  readonly failures: string[];
  /** The first lines each server printed, by server name. */
  readonly logs: Map<string, string[]>;
}

/**
 * Runs `plan` in a fresh namespace after the bash `setup` (which builds the fake devices).
 * Failed runs are left out of the series and listed in `failures`.
 */
export function runPlan(setup: string, plan: Plan): Promise<PlanResult> {
  const dir = mkdtempSync(join(tmpdir(), 'iiokit-bench-'));
  const planFile = join(dir, 'plan.json');
  writeFileSync(planFile, JSON.stringify(plan));
  const script = `${setup}\n"${process.execPath}" "${__filename}" "${planFile}"\n`;
  const child = spawn(
    'unshare',
    ['-m', '-p', '-f', '--mount-proc', '--propagation', 'private', 'bash', '-c', script],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    // progress on stderr: one dot per measurement
    for (const _ of d.toString().matchAll(/@@run /g)) process.stderr.write('.');
  });
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      process.stderr.write('\n');
      rmSync(dir, { recursive: true, force: true });
      const series = new Series();
      const failures: string[] = [];
      const logs = new Map<string, string[]>();
      for (const line of out.split('\n')) {
        const log = /^@@log (\S+) (.*)$/.exec(line);
        if (log) logs.set(log[1], [...(logs.get(log[1]) ?? []), log[2]]);
        if (!line.startsWith('@@run ')) continue;
        const r = JSON.parse(line.slice(6)) as RunLine;
        // IIOKIT_BENCH_RAW=file: every run, one JSON line each, for a closer look
        if (process.env.IIOKIT_BENCH_RAW)
          appendFileSync(process.env.IIOKIT_BENCH_RAW, `${line.slice(6)}\n`);
        if (r.status === 0 && Number.isFinite(r.run.wallNs) && r.run.wallNs > 0)
          series.add(r.side, { ...r.run, round: r.round });
        else failures.push(`${r.side} round ${r.round}: exit ${r.status} ${r.stderr.trim()}`);
      }
      if (code !== 0) failures.push(`namespace exited ${code}: ${err.trim().slice(-400)}`);
      resolve({ series, failures, logs });
    });
  });
}

if (require.main === module) {
  let finished = false;
  // A promise nobody settles would end the process quietly with status 0: say so instead.
  process.on('exit', (code) => {
    if (!finished && code === 0) {
      process.stderr.write('ns-runner: ended before the plan was done\n');
      process.exitCode = 1;
    }
  });
  inner(process.argv[2]).then(
    () => {
      finished = true;
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`ns-runner: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
