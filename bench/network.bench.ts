/**
 * Network capture throughput: our ip: client vs libiio's iio_readdev, both reading the
 * same libiio iiod (0.24, local backend) in the same run, from a FIFO-backed fake device
 * (4 x le:s16/16 fed by /dev/zero) in a private mount namespace. Needs root and iiod.
 */
import { spawnSync } from 'node:child_process';
import { createContext } from '../src';
import { startFakeIiod } from '../test/network/helpers/iiod';
import type { BenchRow } from './run';

export const title = 'network capture (ip:, iiod 0.24)';

const SAMPLES = 65536; // iio_readdev -b 65536: 512 KiB per refill
const SCAN = 8;

async function ours(uri: string, bytes: number): Promise<number> {
  const ctx = await createContext(uri);
  try {
    const t0 = process.hrtime.bigint();
    const buf = await ctx.device('fakeadc').createBuffer(SAMPLES, {
      channels: ['voltage0', 'voltage1', 'voltage2', 'voltage3'],
    });
    let got = 0;
    for await (const b of buf.stream()) {
      got += b.data.length;
      b.release();
      if (got >= bytes) break;
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    await buf.close();
    return got / 1e6 / s;
  } finally {
    await ctx.close();
  }
}

function theirs(uri: string, bytes: number, sink: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    'sh',
    ['-c', `iio_readdev -u ${uri} -b ${SAMPLES} -s ${bytes / SCAN} fakeadc ${sink}`],
    { stdio: 'ignore' },
  );
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`iio_readdev failed (${r.status})`);
  return bytes / 1e6 / s;
}

export async function run(): Promise<BenchRow[]> {
  if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v iiod iio_readdev']).status) {
    return [{ case: 'skipped', ours: NaN, unit: 'MB/s', note: 'needs root, iiod and iio_readdev' }];
  }
  const fake = await startFakeIiod([
    {
      name: 'fakeadc',
      channels: ['in_voltage0', 'in_voltage1', 'in_voltage2', 'in_voltage3'],
      source: 'cat /dev/zero',
    },
  ]);
  try {
    const bytes = 512 * 1024 * 1024;
    const a: number[] = [];
    const b: number[] = [];
    const c: number[] = [];
    // alternate, three rounds each; report the medians
    for (let i = 0; i < 3; i++) {
      b.push(theirs(fake.uri, bytes, '> /dev/null'));
      c.push(theirs(fake.uri, bytes, '| cat > /dev/null'));
      a.push(await ours(fake.uri, bytes));
    }
    const median = (x: number[]): number => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)];
    return [
      {
        case: `capture 512 MiB, 512 KiB blocks, 4 x s16, iiod on loopback`,
        ours: median(a),
        reference: median(b),
        referenceName: 'iio_readdev -u ip:',
        unit: 'MB/s',
        note:
          `target ≥ 1.2×. iio_readdev splices the socket into an mmapped memfd and writes ` +
          `it to /dev/null: its samples never reach user space; ours are in a Buffer. ` +
          `Rounds: ours ${a.map((x) => x.toFixed(0)).join('/')}, libiio ${b.map((x) => x.toFixed(0)).join('/')}`,
      },
      {
        case: 'same, libiio piping its samples to a reader',
        ours: median(a),
        reference: median(c),
        referenceName: 'iio_readdev -u ip: | cat',
        unit: 'MB/s',
        note: `rounds libiio ${c.map((x) => x.toFixed(0)).join('/')}`,
      },
    ];
  } finally {
    await fake.stop();
  }
}
