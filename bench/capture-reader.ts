/**
 * The "ours" side of bench/capture.bench.ts, run inside the FIFO namespace:
 * `node dist/bench/capture-reader.js <bytes> <samples per block> [blocks]` captures from
 * the fake device `fakeadc` through the public API (createContext('local:') →
 * createBuffer → stream(), each block released) and prints JSON: bytes, ns, copies,
 * handovers (wake-ups of the JS thread), cpuUs (the process) and threadCpuUs (the
 * streaming thread). The clock covers the buffer's whole life, createBuffer() to close();
 * the context (opened once by an application, however many buffers it streams) and
 * Node's start-up are not counted.
 */
import type { LocalBackendBuffer } from '../src/backends/local/buffer';
import { createContext } from '../src/create-context';

async function main(): Promise<void> {
  const bytes = Number(process.argv[2]);
  const samples = Number(process.argv[3]);
  const ctx = await createContext('local:');
  const dev = ctx.device('fakeadc');
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const blocks = process.argv[4] ? Number(process.argv[4]) : undefined;
  const buf = await dev.createBuffer(samples, { channels: dev.channels.map((c) => c.id), blocks });
  let got = 0;
  for await (const block of buf.stream()) {
    got += block.data.length;
    block.release();
    if (got >= bytes) break;
  }
  const stream = (buf as unknown as { raw: LocalBackendBuffer }).raw.stream;
  await buf.close();
  const ns = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  const s = stream.stats();
  await ctx.close();
  // CPU of the whole process and of the streaming thread alone, in µs
  const report = {
    bytes: got,
    ns,
    copies: s.copies,
    handovers: s.handovers,
    cpuUs: cpu.user + cpu.system,
    threadCpuUs: s.threadCpuUs,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`capture-reader: ${String(err)}\n`);
  process.exitCode = 1;
});
