/**
 * Our server against libiio's iiod, the same FIFO-backed fake device (4 × le:s16/16 fed
 * from /dev/zero) in a private mount and PID namespace, each read by the client of the
 * same libiio generation, interleaved round by round:
 *  - libiio 0.24: iio_readdev -b 65536 through iiod 0.24 and through our server;
 *  - libiio 1.0 (../shared/libiio-main): iio_rwdev -b 65536 through its iiod and through
 *    our server (the client speaks 1.0's binary protocol where the server does, else it
 *    falls back to ASCII: the row works either way);
 *  - our server with an in-memory device (the server path alone), read by iio_readdev.
 * Our server serves the device through `local:` (native buffers), or where the native
 * module is not built through a JavaScript stand-in reading the same FIFO
 * (bench/server-fifo-serve.ts; the note says which). The CPU columns are the servers'
 * (user + sys of the server's process tree during each run, from /proc); the clients'
 * CPU is in the note.
 */
import { join } from 'node:path';
import { NAMESPACE_SETUP } from '../test/helpers/fifo-namespace';
import { which } from '../test/helpers/peers';
import {
  compare,
  cpuPerGB,
  num,
  serverCpuPerGB,
  skippedRow,
  stat,
  type BenchRow,
  type Run,
} from './harness';
import { libiioMain } from './libiio-main';
import { namespacesAvailable, runPlan, type PlanServer, type PlanSide } from './ns-runner';

export const title = 'server: ours vs iiod';

const SAMPLES = 65536;
const SCAN = 8;
const PORTS = { iiod: 39871, ours: 39872, mem: 39873, iiod1: 39874 };

export async function run(): Promise<BenchRow[]> {
  const why =
    namespacesAvailable() ??
    (['iiod', 'iio_readdev'].every((c) => which(c)) ? undefined : 'needs iiod and iio_readdev');
  if (why) return [skippedRow('server', 'MB/s', `skipped: ${why}`)];
  const mib = Number(process.env.IIOKIT_BENCH_MIB ?? 1024);
  const rounds = Number(process.env.IIOKIT_BENCH_ROUNDS ?? 5);
  const bytes = mib * 1024 * 1024;
  const main = libiioMain();
  const serve = (port: number, mode: string): string =>
    `"${process.execPath}" ${join(__dirname, 'server-fifo-serve.js')} ${port} ${PORTS.iiod} ${mode}`;
  const servers: PlanServer[] = [
    { name: 'iiod', cmd: `iiod -p ${PORTS.iiod}`, port: PORTS.iiod },
    { name: 'ours', cmd: serve(PORTS.ours, 'auto'), port: PORTS.ours },
    { name: 'mem', cmd: serve(PORTS.mem, 'memory'), port: PORTS.mem },
  ];
  const rd = (port: number): string =>
    `iio_readdev -u ip:127.0.0.1:${port} -b ${SAMPLES} -s ${bytes / SCAN} fakeadc`;
  const sides: PlanSide[] = [
    { name: 'rd-iiod', cmd: rd(PORTS.iiod), bytes, server: 'iiod' },
    { name: 'rd-ours', cmd: rd(PORTS.ours), bytes, server: 'ours' },
    { name: 'rd-mem', cmd: rd(PORTS.mem), bytes, server: 'mem' },
  ];
  if (main) {
    servers.push({
      name: 'iiod1',
      cmd: `${main.sbin('iiod')} -p ${PORTS.iiod1}`,
      port: PORTS.iiod1,
      env: main.env,
    });
    const rw = (port: number): string =>
      `${main.bin('iio_rwdev')} -u ip:127.0.0.1:${port} -b ${SAMPLES} -s ${bytes / SCAN} fakeadc`;
    sides.push(
      { name: 'rw-iiod1', cmd: rw(PORTS.iiod1), bytes, server: 'iiod1', env: main.env },
      { name: 'rw-ours', cmd: rw(PORTS.ours), bytes, server: 'ours', env: main.env },
    );
  }
  const res = await runPlan(NAMESPACE_SETUP, {
    rounds,
    background: 'while :; do cat /dev/zero > /dev/iio:device0 2>/dev/null; done',
    servers,
    sides,
  });
  const s = res.series;
  if (!s.size) return [skippedRow('server', 'MB/s', `failed: ${res.failures.join('; ')}`)];
  const mode = /^mode (\w+)$/.exec(res.logs.get('ours')?.[0] ?? '')?.[1] ?? '?';
  const how =
    mode === 'local'
      ? 'ours serves it through local: (native buffers)'
      : `ours reads the FIFO from JavaScript (stand-in: local: buffers not available, mode ${mode})`;
  const client = (n: string): string => num(stat(s.get(n).map(cpuPerGB)).median);
  const failed = res.failures.length ? `; failed runs: ${res.failures.join('; ')}` : '';
  const runs = (n: string, name: string): { name: string; runs: Run[] } => ({
    name,
    runs: s.get(n),
  });
  const rows: BenchRow[] = [
    compare(
      `iio_readdev -b ${SAMPLES}, ${mib} MiB, FIFO device`,
      runs('rd-ours', 'our server'),
      runs('rd-iiod', 'iiod 0.24'),
      {
        goal: { ratio: 1.5 },
        cpu: serverCpuPerGB,
        note:
          `CPU: the servers'; iio_readdev's own s/GB with ours ${client('rd-ours')}, ` +
          `with iiod ${client('rd-iiod')}; ${how}; ${rounds} rounds${failed}`,
      },
    ),
    compare(
      'same, our server with an in-memory device (server path only) vs iiod on the FIFO',
      runs('rd-mem', 'our server, memory device'),
      runs('rd-iiod', 'iiod 0.24'),
      { cpu: serverCpuPerGB, note: 'no device read cost on our side: not the same device' },
    ),
  ];
  if (main) {
    rows.push(
      compare(
        `libiio 1.0: iio_rwdev -b ${SAMPLES}, ${mib} MiB, FIFO device`,
        runs('rw-ours', 'our server'),
        runs('rw-iiod1', 'iiod 1.0'),
        {
          goal: { ratio: 1.2 },
          cpu: serverCpuPerGB,
          note:
            `CPU: the servers'; iio_rwdev's own s/GB with ours ${client('rw-ours')}, ` +
            `with iiod 1.0 ${client('rw-iiod1')}`,
        },
      ),
    );
  } else {
    rows.push(skippedRow('libiio 1.0: iio_rwdev', 'MB/s', 'skipped: no libiio main in ../shared'));
  }
  return rows;
}
