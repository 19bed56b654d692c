/**
 * iio_readdev throughput from our server vs from libiio 0.24's iiod, same device, same
 * run: a FIFO-backed fake device (4 × le:s16/16, fed from /dev/zero) in a private mount
 * and PID namespace, as /work/shared/bench/libiio-anchor.sh builds it. iiod serves it
 * through libiio's local backend; our server serves the same sysfs tree and character
 * device through local: when its buffers work (native module), else through a minimal
 * JavaScript stand-in (bench/server-fifo-serve.ts; the row says which). Both are read by
 * the same iio_readdev (-b 65536, all 4 channels), alternately, several rounds; the
 * median of each is reported. A second row gives our server with an in-memory device:
 * the server path's own ceiling.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { BenchRow } from './run';

export const title = 'server: iio_readdev MB/s, ours vs iiod 0.24';

const MB = Number(process.env.BENCH_SERVER_MB ?? 1024);
const ROUNDS = Number(process.env.BENCH_SERVER_ROUNDS ?? 3);

const SCRIPT = String.raw`
set -euo pipefail
MB=$1; ROUNDS=$2; NODE=$3; SERVE_JS=$4; PA=$5; PB=$6; PC=$7
mount -t tmpfs none /sys/bus && mkdir -p /sys/bus/iio/devices
D=/sys/bus/iio/devices/iio:device0
mkdir -p $D/scan_elements $D/buffer
echo fakeadc > $D/name; echo 1000000 > $D/sampling_frequency
for i in 0 1 2 3; do
  c=in_voltage$i
  echo 0 > $D/scan_elements/"$c"_en; echo $i > $D/scan_elements/"$c"_index
  echo "le:s16/16>>0" > $D/scan_elements/"$c"_type; echo 100 > $D/"$c"_raw
done
echo 0 > $D/buffer/enable; echo 4096 > $D/buffer/length; echo 1 > $D/buffer/watermark
mount -t tmpfs none /dev
mknod /dev/null c 1 3; mknod /dev/zero c 1 5; mknod /dev/urandom c 1 9; mknod /dev/random c 1 8
chmod 666 /dev/null /dev/zero /dev/urandom /dev/random
mkfifo /dev/iio:device0
( while :; do cat /dev/zero > /dev/iio:device0 2>/dev/null || true; done ) &
iiod -p $PA > /dev/null 2>&1 &
up() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
up $PA
MODE_FILE=$(mktemp)
"$NODE" "$SERVE_JS" $PB $PA auto > "$MODE_FILE" &
"$NODE" "$SERVE_JS" $PC $PA memory > /dev/null &
up $PB
up $PC
head -1 "$MODE_FILE"; rm -f "$MODE_FILE"
bytes=$((MB*1024*1024)); samples=$((bytes/8))
t() { local s e; s=$(date +%s%N); "$@" > /dev/null; e=$(date +%s%N); echo $(( (e-s)/1000 )); }
for r in $(seq $ROUNDS); do
  echo "iiod $(t iio_readdev -u ip:127.0.0.1:$PA -b 65536 -s $samples fakeadc)"
  echo "ours $(t iio_readdev -u ip:127.0.0.1:$PB -b 65536 -s $samples fakeadc)"
  echo "mem $(t iio_readdev -u ip:127.0.0.1:$PC -b 65536 -s $samples fakeadc)"
done
`;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mount namespace)';
  for (const cmd of ['unshare', 'iiod', 'iio_readdev']) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) return `needs ${cmd}`;
  }
  return undefined;
}

export async function run(): Promise<BenchRow[]> {
  const why = missing();
  const name = `iio_readdev -b 65536, 4×s16 FIFO device, ${MB} MiB × ${ROUNDS}`;
  if (why) return [{ case: name, ours: NaN, unit: 'MB/s', note: `skipped: ${why}` }];
  // A PID namespace: everything started inside ends with the script.
  const child = spawn(
    'unshare',
    [
      '-m',
      '-p',
      '-f',
      '--propagation',
      'private',
      'bash',
      '-c',
      SCRIPT,
      'bench',
      String(MB),
      String(ROUNDS),
      process.execPath,
      join(__dirname, 'server-fifo-serve.js'),
      '39871',
      '39872',
      '39873',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const status = await new Promise<number | null>((r) => child.on('close', r));
  const times: Record<string, number[]> = { iiod: [], ours: [], mem: [] };
  for (const line of out.split('\n')) {
    const m = /^(iiod|ours|mem) (\d+)$/.exec(line.trim());
    if (m) times[m[1]].push(Number(m[2]));
  }
  if (status !== 0 || !times.iiod.length || !times.ours.length) {
    return [
      { case: name, ours: NaN, unit: 'MB/s', note: `failed (${status}): ${err.slice(-300)}` },
    ];
  }
  const mbs = (us: number): number => (MB * 1024 * 1024) / 1e6 / (us / 1e6);
  const runs = (k: string): string => times[k].map((t) => mbs(t).toFixed(0)).join('/');
  const mode = /^mode (\w+)$/m.exec(out)?.[1] ?? '?';
  const how =
    mode === 'local'
      ? 'ours serves it through local: (native buffers)'
      : 'ours reads the FIFO from JavaScript (stand-in: local: buffers not available)';
  return [
    {
      case: name,
      ours: mbs(median(times.ours)),
      reference: mbs(median(times.iiod)),
      referenceName: 'iiod 0.24',
      unit: 'MB/s',
      note: `target ≥ 1.5×; runs ours ${runs('ours')}, iiod ${runs('iiod')}; ${how}`,
    },
    {
      case: 'same, our server with an in-memory device (server path only) vs iiod on the FIFO',
      ours: mbs(median(times.mem)),
      reference: mbs(median(times.iiod)),
      referenceName: 'iiod 0.24',
      unit: 'MB/s',
      note: `runs ${runs('mem')}; no device read cost on our side: not the same device`,
    },
  ];
}
