/**
 * Capture from a FIFO-backed fake device: our library and `iiokit readdev` against libiio
 * 0.24's iio_readdev and a raw `cat` of the same FIFO, interleaved round by round.
 *
 * Everything runs in a private mount namespace (test/helpers/fifo-namespace.ts) where
 * /sys/bus/iio and /dev/iio:device0 are the fake device `fakeadc` (4 × le:s16/16), so
 * iio_readdev opens it as a real one. For each run `dd` writes exactly N bytes of zeros
 * into the FIFO in 128 KiB writes, and one reader takes them:
 *  - raw pipe: `cat` of the FIFO (ends at dd's end of file);
 *  - iio_readdev -b <block> -s <N/8> (timed from its start; its CPU: user + sys);
 *  - ours (library): bench/capture-reader.ts, createBuffer → stream() → release, timed
 *    and CPU-counted inside the process from createBuffer() to close();
 *  - ours (CLI): `iiokit readdev -b <block> -s <N/8>` to /dev/null, timed and counted like
 *    iio_readdev (Node's start-up included). Needs root.
 */
import { join } from 'node:path';
import { NAMESPACE_SETUP } from '../test/helpers/fifo-namespace';
import { which } from '../test/helpers/peers';
import { compare, skippedRow, type BenchRow } from './harness';
import { namespacesAvailable, runPlan, type PlanSide } from './ns-runner';

export const title = 'capture: FIFO-backed device';

const MIB = 1024 * 1024;
const SCAN = 8; // fakeadc: 4 × le:s16/16

function sides(bytes: number, blockBytes: number, tag: string, cli: boolean): PlanSide[] {
  const samples = blockBytes / SCAN;
  const reader = join(__dirname, 'capture-reader.js');
  const bin = join(__dirname, '../../bin/iiokit.js');
  const feed = `dd if=/dev/zero of=/dev/iio:device0 bs=128K count=${bytes / (128 * 1024)} status=none`;
  const out: PlanSide[] = [
    {
      name: `lib-${tag}`,
      cmd: `"${process.execPath}" ${reader} local: fakeadc ${bytes} ${samples}`,
      bytes,
      reports: true,
      feed,
    },
    {
      name: `libiio-${tag}`,
      cmd: `iio_readdev -b ${samples} -s ${bytes / SCAN} fakeadc`,
      bytes,
      feed,
    },
  ];
  if (cli)
    out.push({
      name: `cli-${tag}`,
      cmd: `"${process.execPath}" ${bin} readdev -b ${samples} -s ${bytes / SCAN} fakeadc`,
      bytes,
      feed,
    });
  return out;
}

export async function run(): Promise<BenchRow[]> {
  const why = namespacesAvailable() ?? (which('iio_readdev') ? undefined : 'needs iio_readdev');
  if (why) return [skippedRow('capture', 'MB/s', `skipped: ${why}`)];
  const mib = Number(process.env.IIOKIT_BENCH_MIB ?? 1024);
  const rounds = Number(process.env.IIOKIT_BENCH_ROUNDS ?? 5);
  const big = mib * MIB;
  const small = Math.max(64, Math.floor(mib / 4)) * MIB;
  const res = await runPlan(NAMESPACE_SETUP, {
    rounds,
    sides: [
      {
        name: 'cat',
        cmd: 'cat /dev/iio:device0',
        bytes: big,
        feed: `dd if=/dev/zero of=/dev/iio:device0 bs=128K count=${big / (128 * 1024)} status=none`,
      },
      ...sides(big, 64 * 1024, '64k', true),
      ...sides(small, 4 * 1024, '4k', false),
      ...sides(big, MIB, '1m', true),
    ],
  });
  const s = res.series;
  if (!s.size) return [skippedRow('capture', 'MB/s', `failed: ${res.failures.join('; ')}`)];
  const how = `${rounds} rounds, ${mib} MiB each`;
  const lib = 'library (createBuffer → close)';
  const failed = res.failures.length ? `; failed runs: ${res.failures.join('; ')}` : '';
  const get = (n: string, name: string): { name: string; runs: ReturnType<typeof s.get> } => ({
    name,
    runs: s.get(n),
  });
  return [
    compare('library, 64 KiB blocks vs raw pipe', get('lib-64k', lib), get('cat', 'cat'), {
      goal: { ratio: 0.9 },
      note: `${how}${failed}`,
    }),
    compare(
      'library, 64 KiB blocks vs iio_readdev -b 8192',
      get('lib-64k', lib),
      get('libiio-64k', 'iio_readdev'),
      { goal: { ratio: 1.0 }, note: how },
    ),
    compare(
      'iiokit readdev vs iio_readdev, 64 KiB, to /dev/null',
      get('cli-64k', 'iiokit readdev'),
      get('libiio-64k', 'iio_readdev'),
      { goal: { ratio: 1.0 }, note: `both timed from process start; ${how}` },
    ),
    compare(
      'library, 4 KiB blocks vs iio_readdev -b 512',
      get('lib-4k', lib),
      get('libiio-4k', 'iio_readdev'),
      { goal: { ratio: 1.0 }, note: `${rounds} rounds, ${small / MIB} MiB each` },
    ),
    compare(
      'library, 1 MiB blocks vs iio_readdev -b 131072',
      get('lib-1m', lib),
      get('libiio-1m', 'iio_readdev'),
      { note: how },
    ),
    compare(
      'iiokit readdev vs iio_readdev, 1 MiB, to /dev/null',
      get('cli-1m', 'iiokit readdev'),
      get('libiio-1m', 'iio_readdev'),
      { goal: { ratio: 1.0 }, note: `both timed from process start; ${how}` },
    ),
  ];
}
