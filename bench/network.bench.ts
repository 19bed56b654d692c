/**
 * Network capture: our ip: client against libiio 0.24's iio_readdev, both reading the same
 * iiod 0.24 (local backend) on loopback, from a FIFO-backed fake device (4 × le:s16/16 fed
 * from /dev/zero) in a private mount namespace, interleaved round by round:
 *  - ours: bench/capture-reader.ts on `ip:` (createBuffer → stream() → release, timed and
 *    CPU-counted inside its process from createBuffer() to close());
 *  - iio_readdev -u ip: … > /dev/null (libiio splices the socket into a memfd: its samples
 *    never reach user space);
 *  - iio_readdev -u ip: … | cat > /dev/null (libiio handing its samples on; CPU of both).
 * The iiod's own CPU during each run is in the note. Needs root, iiod and iio_readdev.
 */
import { join } from 'node:path';
import { NAMESPACE_SETUP } from '../test/helpers/fifo-namespace';
import { which } from '../test/helpers/peers';
import { compare, serverCpuPerGB, skippedRow, stat, num, type BenchRow } from './harness';
import { namespacesAvailable, runPlan } from './ns-runner';

export const title = 'network capture (ip:, iiod 0.24)';

const SAMPLES = 65536; // iio_readdev -b 65536: 512 KiB per refill
const SCAN = 8;
const PORT = 39861;

export async function run(): Promise<BenchRow[]> {
  const why =
    namespacesAvailable() ??
    (['iiod', 'iio_readdev'].every((c) => which(c)) ? undefined : 'needs iiod and iio_readdev');
  if (why) return [skippedRow('capture over ip:', 'MB/s', `skipped: ${why}`)];
  const mib = Number(process.env.IIOKIT_BENCH_MIB ?? 1024) / 2;
  const rounds = Number(process.env.IIOKIT_BENCH_ROUNDS ?? 5);
  const bytes = mib * 1024 * 1024;
  const uri = `ip:127.0.0.1:${PORT}`;
  const rd = `iio_readdev -u ${uri} -b ${SAMPLES} -s ${bytes / SCAN} fakeadc`;
  const res = await runPlan(NAMESPACE_SETUP, {
    rounds,
    background: 'while :; do cat /dev/zero > /dev/iio:device0 2>/dev/null; done',
    servers: [{ name: 'iiod', cmd: `iiod -p ${PORT}`, port: PORT }],
    sides: [
      {
        name: 'ours',
        cmd: `"${process.execPath}" ${join(__dirname, 'capture-reader.js')} ${uri} fakeadc ${bytes} ${SAMPLES}`,
        bytes,
        reports: true,
        server: 'iiod',
      },
      { name: 'libiio', cmd: rd, bytes, server: 'iiod' },
      { name: 'libiio-pipe', cmd: `${rd} | cat`, bytes, server: 'iiod' },
    ],
  });
  const s = res.series;
  if (!s.size)
    return [skippedRow('capture over ip:', 'MB/s', `failed: ${res.failures.join('; ')}`)];
  const iiodCpu = (n: string): string => num(stat(s.get(n).map(serverCpuPerGB)).median);
  const failed = res.failures.length ? `; failed runs: ${res.failures.join('; ')}` : '';
  const ours = { name: 'ip: library', runs: s.get('ours') };
  return [
    compare(
      `capture ${mib} MiB, 512 KiB blocks, iiod 0.24 on loopback`,
      ours,
      { name: 'iio_readdev -u ip: > /dev/null', runs: s.get('libiio') },
      {
        goal: { ratio: 1.0 },
        note:
          `${rounds} rounds; iiod CPU s/GB while serving ours ${iiodCpu('ours')}, ` +
          `iio_readdev ${iiodCpu('libiio')}${failed}`,
      },
    ),
    compare(
      'same, libiio piping its samples to a reader',
      ours,
      { name: 'iio_readdev -u ip: | cat', runs: s.get('libiio-pipe') },
      { goal: { ratio: 1.2 }, note: 'reference CPU: iio_readdev and cat' },
    ),
  ];
}
