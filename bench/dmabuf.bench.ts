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
 * figures are slow, the ratios are what compare. CPU is the process's (user + system;
 * iio_rwdev's by bash's `times`), per GB moved; the DMA engine's kernel thread is not
 * counted for anyone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createContext } from '../src/create-context';
import { compare, measureCommand, skippedRow, type BenchRow, type Run } from './harness';
import { libiioMain } from './libiio-main';

export const title = 'capture: dma_adc, DMA buffer (VM, Linux 6.12)';

const MIB = 1024 * 1024;
const SCANS_PER_BLOCK = 262144; // 1 MiB of 2 x le:s16/16
const ROOT = resolve(__dirname, '..', '..');

/** One run of our library, timed and CPU-counted inside this process. */
async function ours(transfer: 'dmabuf' | 'fileio', bytes: number, round: number): Promise<Run> {
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
    const wallNs = Number(process.hrtime.bigint() - t0);
    const c = process.cpuUsage(c0);
    // The mode asked for is the mode used (a forced transfer fails otherwise): say so.
    if (buf.stats().transfer?.mode !== transfer) throw new Error(`not over ${transfer}`);
    return { bytes: got, wallNs, cpuNs: (c.user + c.system) * 1000, round };
  } finally {
    await ctx.close();
  }
}

/** One run of libiio main's iio_rwdev to /dev/null, timed from process start. */
async function libiio(bytes: number, round: number): Promise<Run> {
  const lm = libiioMain()!;
  const r = await measureCommand(
    `${lm.bin('iio_rwdev')} -b ${SCANS_PER_BLOCK} -s ${bytes / 4} dma_adc voltage0 voltage1`,
    { env: lm.env },
  );
  if (r.status !== 0) throw new Error(`iio_rwdev: ${r.stderr}`);
  return { bytes, wallNs: r.wallNs, cpuNs: r.cpuNs, round };
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
  const haveLibiio = libiioMain() !== undefined;
  const runs: Record<'dmabuf' | 'fileio' | 'libiio', Run[]> = {
    dmabuf: [],
    fileio: [],
    libiio: [],
  };
  // A warm-up of each, not counted: the first run pays for page faults and caches.
  await ours('dmabuf', 16 * MIB, -1);
  await ours('fileio', 16 * MIB, -1);
  // Interleaved: a burst of load on the shared machine then hits every reader.
  for (let i = 0; i < rounds; i++) {
    runs.dmabuf.push(await ours('dmabuf', bytes, i));
    runs.fileio.push(await ours('fileio', bytes, i));
    if (haveLibiio) runs.libiio.push(await libiio(bytes, i));
  }
  const how = `${rounds} rounds, ${mib} MiB each, in the emulated VM: absolute rates are slow, ratios hold`;
  const dmabuf = { name: 'ours over DMABUF', runs: runs.dmabuf };
  return [
    compare(
      'library, 1 MiB blocks: over DMABUF vs over read()',
      dmabuf,
      { name: 'ours over read()', runs: runs.fileio },
      { goal: { ratio: 1.5 }, note: how },
    ),
    haveLibiio
      ? compare(
          'library over DMABUF vs libiio main iio_rwdev (DMABUF), 1 MiB blocks',
          dmabuf,
          { name: 'iio_rwdev', runs: runs.libiio },
          {
            goal: { ratio: 1.0 },
            note: `iio_rwdev timed from process start, to /dev/null; ${how}`,
          },
        )
      : skippedRow(
          'library over DMABUF vs libiio main iio_rwdev',
          'MB/s',
          'skipped: libiio main not found (../shared/libiio-main, or IIOKIT_LIBIIO_MAIN)',
        ),
  ];
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
      skippedRow(
        'dma_adc',
        'MB/s',
        'skipped: the IIO test VM (../shared/iio-vm/run) was not found; set IIO_VM_RUN',
      ),
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
