/**
 * Capture from a real DMA buffer: the VM's `dma_adc` (Linux 6.12, iio_dma_loopback.ko,
 * a software DMA engine) at sampling_frequency 0 (as fast as the CPU fills), 1 MiB
 * blocks, three readers in interleaved rounds:
 *  - ours over DMABUF: createBuffer(262144 scans) → stream(), every block released
 *    (timed from createBuffer() to close(), in one Node process inside the VM);
 *  - ours over read(): the same with `transfer: 'fileio'`;
 *  - libiio main's `iio_rwdev -b 262144 -s N dma_adc > /dev/null` (its local backend
 *    takes DMABUFs too; timed from process start, a C program's start-up is short).
 * Outside the VM, run() boots it (../shared/iio-vm/run --kernel 6.12) and runs this file
 * inside with `--inside`, which prints the rows as JSON. The VM emulates the CPU: absolute
 * figures are slow, the ratios are what compare. CPU is the process's (user + system),
 * per GB moved; the DMA engine's kernel thread is not counted for anyone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createContext } from '../src/create-context';
import { LIBIIO_MAIN, libiioMainTool } from '../test/helpers/libiio-main';
import type { BenchRow } from './run';

export const title = 'capture: dma_adc, DMA buffer (VM, Linux 6.12)';

const MIB = 1024 * 1024;
const SCANS_PER_BLOCK = 262144; // 1 MiB of 2 x le:s16/16
const ROOT = resolve(__dirname, '..', '..');

interface Sample {
  readonly mbs: number;
  /** CPU seconds per GB moved. */
  readonly cpu: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}

async function ours(transfer: 'dmabuf' | 'fileio', bytes: number): Promise<Sample> {
  const ctx = await createContext('local:', { timeoutMs: 20000 });
  try {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const buf = await ctx
      .device('dma_adc')
      .createBuffer(SCANS_PER_BLOCK, { channels: ['voltage0', 'voltage1'], transfer });
    let got = 0;
    for await (const b of buf.stream()) {
      got += b.data.length;
      b.release();
      if (got >= bytes) break;
    }
    await buf.close();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    return { mbs: got / 1e6 / s, cpu: (c.user + c.system) / 1e6 / (got / 1e9) };
  } finally {
    await ctx.close();
  }
}

function libiio(bytes: number): Sample {
  const { cmd, env } = libiioMainTool('iio_rwdev');
  const args = `-b ${SCANS_PER_BLOCK} -s ${bytes / 4} dma_adc voltage0 voltage1`;
  const t0 = process.hrtime.bigint();
  // bash's `time` gives the child's user and system CPU.
  const r = spawnSync('bash', ['-c', `TIMEFORMAT='%U %S'; time ${cmd} ${args} > /dev/null`], {
    env,
    encoding: 'utf8',
  });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`iio_rwdev: ${r.stderr}`);
  const [user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { mbs: bytes / 1e6 / s, cpu: (user + sys) / (bytes / 1e9) };
}

/** Inside the VM: the rounds, and the rows. */
async function inside(): Promise<BenchRow[]> {
  const mib = Number(process.env.IIOKIT_BENCH_DMABUF_MIB ?? 256);
  const rounds = Number(process.env.IIOKIT_BENCH_ROUNDS ?? 5);
  const bytes = mib * MIB;
  const sys = '/sys/bus/iio/devices';
  const dev = readdirSync(sys).find(
    (d) =>
      d.startsWith('iio:device') && readFileSync(join(sys, d, 'name'), 'utf8').trim() === 'dma_adc',
  );
  if (!dev) throw new Error('no dma_adc in the VM (Linux 6.12 with iio_dma_loopback.ko)');
  writeFileSync(join(sys, dev, 'sampling_frequency'), '0');
  const haveLibiio = LIBIIO_MAIN.available();
  const runs: Record<'dmabuf' | 'fileio' | 'libiio', Sample[]> = {
    dmabuf: [],
    fileio: [],
    libiio: [],
  };
  // A warm-up of each, not counted: the first run pays for page faults and caches.
  await ours('dmabuf', 16 * MIB);
  await ours('fileio', 16 * MIB);
  // Interleaved: a burst of load on the shared machine then hits every reader.
  for (let i = 0; i < rounds; i++) {
    runs.dmabuf.push(await ours('dmabuf', bytes));
    runs.fileio.push(await ours('fileio', bytes));
    if (haveLibiio) runs.libiio.push(libiio(bytes));
  }
  const m = (k: keyof typeof runs): Sample => ({
    mbs: median(runs[k].map((x) => x.mbs)),
    cpu: median(runs[k].map((x) => x.cpu)),
  });
  const list = (k: keyof typeof runs): string => runs[k].map((x) => x.mbs.toFixed(0)).join('/');
  const d = m('dmabuf');
  const f = m('fileio');
  const l = m('libiio');
  const rows: BenchRow[] = [
    {
      case: 'library, 1 MiB blocks: over DMABUF vs over read()',
      ours: d.mbs,
      reference: f.mbs,
      referenceName: 'ours over read()',
      unit: 'MB/s',
      note:
        `target ≥ 1.5×; median of ${rounds} rounds, ${mib} MiB each: DMABUF ${list('dmabuf')}, ` +
        `read() ${list('fileio')}; CPU ${d.cpu.toFixed(2)} vs ${f.cpu.toFixed(2)} s/GB`,
    },
  ];
  rows.push(
    haveLibiio
      ? {
          case: 'library over DMABUF vs libiio main iio_rwdev (DMABUF), 1 MiB blocks',
          ours: d.mbs,
          reference: l.mbs,
          referenceName: 'iio_rwdev',
          unit: 'MB/s',
          note:
            `target ≥ 1×; iio_rwdev timed from process start, to /dev/null; rounds ` +
            `${list('libiio')}; CPU ours ${d.cpu.toFixed(2)}, iio_rwdev ${l.cpu.toFixed(2)} s/GB`,
        }
      : {
          case: 'library over DMABUF vs libiio main iio_rwdev',
          ours: d.mbs,
          unit: 'MB/s',
          note: `skipped the reference: ${LIBIIO_MAIN.name} not found (${LIBIIO_MAIN.install})`,
        },
  );
  return rows;
}

function vmRunner(): string | undefined {
  for (const c of [
    process.env.IIO_VM_RUN,
    join(ROOT, '..', 'shared', 'iio-vm', 'run'),
    '/work/shared/iio-vm/run',
  ])
    if (c && existsSync(c)) return c;
  return undefined;
}

export async function run(): Promise<BenchRow[]> {
  if (process.env.IIO_VM === '1' && process.env.IIO_VM_KERNEL === '6.12') return inside();
  const vm = vmRunner();
  if (!vm)
    return [
      {
        case: 'dma_adc',
        ours: NaN,
        unit: 'MB/s',
        note: 'skipped: the IIO test VM (../shared/iio-vm/run) was not found; set IIO_VM_RUN',
      },
    ];
  const r = spawnSync(vm, ['--kernel', '6.12', '--', process.execPath, __filename, '--inside'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 16 * MIB,
  });
  const line = r.stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('['));
  if (r.status !== 0 || !line) throw new Error(`in the VM: ${r.stderr.slice(-2000)}`);
  return JSON.parse(line) as BenchRow[];
}

if (require.main === module && process.argv.includes('--inside')) {
  inside()
    .then((rows) => process.stdout.write(`${JSON.stringify(rows)}\n`))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
