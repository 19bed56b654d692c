/**
 * The library side of the capture and network benches ("ours"), run as its own process:
 * `node dist/bench/capture-reader.js <uri> <device> <bytes> <samples per block> [blocks]`
 * captures through the public API (createContext → createBuffer → stream(), every block
 * released) and prints one JSON line: bytes, ns, cpuUs (the whole process: JS thread,
 * streaming thread, libuv), the CPU ms of each thread (from /proc) and for local: the
 * stream's own counters (copies, handovers = wake-ups of the JS thread).
 *
 * The clock and the CPU count cover the buffer's whole life, createBuffer() to close():
 * the context (opened once by an application, however many buffers it streams) and
 * Node's start-up are not counted.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createContext } from '../src/create-context';

/** CPU ms (user + sys) of each thread of this process, by `name/tid`, from /proc. */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out.set(`${name}/${tid}`, (Number(f[11]) + Number(f[12])) * 10);
    }
  } catch {
    // not Linux
  }
  return out;
}

interface StreamStats {
  copies: number;
  handovers: number;
  reads?: number;
}

async function main(): Promise<void> {
  const [uri, device] = process.argv.slice(2, 4);
  const bytes = Number(process.argv[4]);
  const samples = Number(process.argv[5]);
  const blocks = process.argv[6] ? Number(process.argv[6]) : undefined;
  const ctx = await createContext(uri);
  const dev = ctx.device(device);
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const threads0 = threadCpu();
  const buf = await dev.createBuffer(samples, {
    channels: dev.channels.filter((c) => c.isScanElement && !c.isOutput).map((c) => c.id),
    blocks,
  });
  let got = 0;
  for await (const block of buf.stream()) {
    got += block.data.length;
    block.release();
    if (got >= bytes) break;
  }
  // local: only (bench introspection, not API): the native stream's counters
  const raw = (buf as unknown as { raw: { stream?: { stats(): StreamStats } } }).raw;
  const s = raw.stream?.stats();
  // Per thread, before close() ends the streaming thread (10 ms resolution).
  const threads: Record<string, number> = {};
  for (const [k, v] of threadCpu())
    if (v - (threads0.get(k) ?? 0) > 0) threads[k] = v - (threads0.get(k) ?? 0);
  await buf.close();
  const ns = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  await ctx.close();
  const report = {
    bytes: got,
    ns,
    cpuUs: cpu.user + cpu.system,
    ...(s ? { copies: s.copies, handovers: s.handovers, reads: s.reads } : {}),
    threadsMs: threads,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`capture-reader: ${String(err)}\n`);
  process.exitCode = 1;
});
