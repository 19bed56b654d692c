/**
 * One process of the Sparkplug fleet benchmark (bench/sparkplug.bench.ts): N edge nodes,
 * each on its own `emu:` context (ADC at 1 kHz, accelerometer at 100 Hz, DAC, trigger),
 * all on one broker. Prints `ready` once every edge node is online, measures CPU and
 * messages between `start` and `stop` lines on stdin, prints the result as JSON, then
 * stops every edge node (NDEATH, DISCONNECT) and exits.
 *
 *   node dist/bench/sparkplug-worker.js <broker url> <count> <first index> <interval ms>
 */
import { createInterface } from 'node:readline';
import { ContextHandle } from '../src/nodes/context-handle';
import { SparkplugEdge } from '../src/nodes/sparkplug/edge';
import { catalogueTranslate } from '../src/nodes/sparkplug/messages';

async function main(): Promise<void> {
  const [url, countText, firstText, intervalText] = process.argv.slice(2);
  const count = Number(countText);
  const first = Number(firstText);
  const t = catalogueTranslate();
  const edges: SparkplugEdge[] = [];
  const handles: ContextHandle[] = [];
  for (let i = 0; i < count; i++) {
    const id = `edge-${String(first + i).padStart(3, '0')}`;
    const handle = new ContextHandle({ uri: 'emu:', reconnectMs: 1000 });
    const edge = new SparkplugEdge(handle, {
      brokerUrl: url,
      clientId: `bench-${id}`,
      keepaliveS: 30,
      groupId: 'Bench',
      edgeNodeId: id,
      devices: [],
      intervalMs: Number(intervalText),
      t,
      log: (level, text) => process.stderr.write(`${id} ${level}: ${text}\n`),
    });
    handles.push(handle);
    edges.push(edge);
    edge.start();
  }
  while (!edges.every((e) => e.isOnline)) await new Promise((r) => setTimeout(r, 100));
  process.stdout.write('ready\n');
  let cpu0 = process.cpuUsage();
  let msgs0 = 0;
  let t0 = 0;
  const total = (): number => edges.reduce((a, e) => a + e.stats.messages, 0);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'start') {
      cpu0 = process.cpuUsage();
      msgs0 = total();
      t0 = performance.now();
    } else if (line === 'stop') {
      const cpu = process.cpuUsage(cpu0);
      const seconds = (performance.now() - t0) / 1000;
      const s = edges.reduce(
        (a, e) => ({
          skipped: a.skipped + e.stats.skipped,
          streamErrors: a.streamErrors + e.stats.streamErrors,
        }),
        { skipped: 0, streamErrors: 0 },
      );
      process.stdout.write(
        `${JSON.stringify({
          edges: count,
          seconds,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          messages: total() - msgs0,
          rssMiB: process.memoryUsage().rss / 2 ** 20,
          ...s,
        })}\n`,
      );
      break;
    }
  }
  await Promise.all(edges.map((e) => e.stop()));
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
