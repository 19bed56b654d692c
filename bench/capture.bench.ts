/**
 * Capture throughput from a FIFO-backed fake device, ours against libiio 0.24's
 * iio_readdev and against a raw `cat` of the same FIFO, all in one run.
 *
 * Everything runs in a private mount namespace (test/helpers/fifo-namespace.ts) where
 * /sys/bus/iio and /dev/iio:device0 are the fake device, so iio_readdev opens it as a
 * real one. For each measurement `dd` writes exactly N bytes of zeros into the FIFO in
 * 128 KiB writes, and one reader takes them:
 *  - raw pipe: `cat` of the FIFO (ends at dd's end of file);
 *  - iio_readdev -b <block> -s <N/8>;
 *  - ours (library): createContext('local:') → createBuffer → stream(), every block
 *    released (bench/capture-reader.ts; timed inside the process from createBuffer() to
 *    close(): the context and Node's start-up are not counted);
 *  - ours (CLI): `iiokit readdev -b <block> -s <N/8>` to /dev/null, timed like iio_readdev
 *    (Node's start-up included).
 * Rounds alternate the readers and the median round of each counts: the machine is
 * shared, and a burst of load then hits every reader instead of one. Needs root.
 */
import { join } from 'node:path';
import { namespaceAvailable, runInNamespace } from '../test/helpers/fifo-namespace';
import { which } from '../test/helpers/peers';
import type { BenchRow } from './run';

export const title = 'capture: FIFO-backed device';

const MIB = 1024 * 1024;
const SCAN = 8; // fakeadc: 4 x le:s16/16

interface Case {
  readonly name: string;
  readonly command: string;
  readonly inProcess?: boolean;
}

function cases(bytes: number, blockBytes: number, tag: string): Case[] {
  const samples = blockBytes / SCAN;
  const reader = join(__dirname, 'capture-reader.js');
  const cli = join(__dirname, '../../bin/iiokit.js');
  return [
    {
      name: `ours-lib-${tag}`,
      command: `${process.execPath} ${reader} ${bytes} ${samples}`,
      inProcess: true,
    },
    {
      name: `ours-cli-${tag}`,
      command: `${process.execPath} ${cli} readdev -b ${samples} -s ${bytes / SCAN} fakeadc`,
    },
    { name: `libiio-${tag}`, command: `iio_readdev -b ${samples} -s ${bytes / SCAN} fakeadc` },
  ];
}

export async function run(): Promise<BenchRow[]> {
  if (!namespaceAvailable())
    return [
      {
        case: 'capture',
        ours: NaN,
        unit: 'MB/s',
        note: 'skipped: needs root and unshare (a private mount namespace)',
      },
    ];
  if (!which('iio_readdev'))
    return [
      {
        case: 'capture',
        ours: NaN,
        unit: 'MB/s',
        note: 'skipped: iio_readdev (libiio-utils) is not installed',
      },
    ];
  const mib = Number(process.env.IIOKIT_BENCH_MIB ?? 1024);
  const rounds = Number(process.env.IIOKIT_BENCH_ROUNDS ?? 5);
  const big = mib * MIB;
  const small = Math.max(64, Math.floor(mib / 4)) * MIB;
  const plan: Array<Case & { bytes: number }> = [
    { name: 'cat', command: 'cat /dev/iio:device0', bytes: big },
    ...cases(big, 64 * 1024, '64k').map((c) => ({ ...c, bytes: big })),
    ...cases(small, 4 * 1024, '4k').map((c) => ({ ...c, bytes: small })),
    ...cases(big, MIB, '1m').map((c) => ({ ...c, bytes: big })),
  ];
  // One line per measurement: `<name> <ns>` (external clock) or `<name> {json}` (in-process).
  let script = 'ns() { date +%s%N; }\n';
  for (let r = 0; r < rounds; r++) {
    for (const c of plan) {
      script += `dd if=/dev/zero of=/dev/iio:device0 bs=128K count=${c.bytes / (128 * 1024)} status=none & w=$!\n`;
      if (c.inProcess) script += `echo "${c.name} $(${c.command})"\n`;
      else script += `s=$(ns); ${c.command} > /dev/null 2>&1; echo "${c.name} $(( $(ns) - s ))"\n`;
      script += 'wait $w\n';
    }
  }
  const res = runInNamespace(script, {}, 30 * 60 * 1000);
  const seen = new Map<string, number[]>();
  for (const line of res.stdout.split('\n')) {
    const m = /^(\S+) (.+)$/.exec(line.trim());
    if (!m) continue;
    const c = plan.find((p) => p.name === m[1]);
    if (!c) continue;
    const ns = m[2].startsWith('{') ? (JSON.parse(m[2]) as { ns: number }).ns : Number(m[2]);
    if (!(ns > 0)) continue;
    seen.set(c.name, [...(seen.get(c.name) ?? []), c.bytes / 1e6 / (ns / 1e9)]);
  }
  if (!seen.size)
    return [
      {
        case: 'capture',
        ours: NaN,
        unit: 'MB/s',
        note: `failed: ${res.stderr.trim().slice(-300)}`,
      },
    ];
  // The median: a shared machine's bursts of load land on some rounds of every reader.
  const get = (n: string): number => {
    const v = [...(seen.get(n) ?? [])].sort((a, b) => a - b);
    if (!v.length) return NaN;
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  const note = `median of ${rounds} rounds, ${mib} MiB each`;
  return [
    {
      case: 'library, 64 KiB blocks vs raw pipe',
      ours: get('ours-lib-64k'),
      reference: get('cat'),
      referenceName: 'cat',
      unit: 'MB/s',
      note: `target ≥ 0.8×; ${note}`,
    },
    {
      case: 'library, 64 KiB blocks vs iio_readdev -b 8192',
      ours: get('ours-lib-64k'),
      reference: get('libiio-64k'),
      referenceName: 'iio_readdev',
      unit: 'MB/s',
      note: `target ≥ 1×; ${note}`,
    },
    {
      case: 'iiokit readdev vs iio_readdev, 64 KiB, to /dev/null',
      ours: get('ours-cli-64k'),
      reference: get('libiio-64k'),
      referenceName: 'iio_readdev',
      unit: 'MB/s',
      note: `both timed from process start; ${note}`,
    },
    {
      case: 'library, 4 KiB blocks vs iio_readdev -b 512',
      ours: get('ours-lib-4k'),
      reference: get('libiio-4k'),
      referenceName: 'iio_readdev',
      unit: 'MB/s',
      note: `${small / MIB} MiB each`,
    },
    {
      case: 'library, 1 MiB blocks vs iio_readdev -b 131072',
      ours: get('ours-lib-1m'),
      reference: get('libiio-1m'),
      referenceName: 'iio_readdev',
      unit: 'MB/s',
      note,
    },
    {
      case: 'iiokit readdev vs iio_readdev, 1 MiB, to /dev/null',
      ours: get('ours-cli-1m'),
      reference: get('libiio-1m'),
      referenceName: 'iio_readdev',
      unit: 'MB/s',
      note,
    },
  ];
}
