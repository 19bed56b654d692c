/**
 * FIFO-backed fake devices where libiio looks for real ones: a private mount namespace
 * (`unshare -m`) with a tmpfs over /sys/bus holding /sys/bus/iio/devices/iio:device0
 * (`fakeadc`, 4 x le:s16/16 inputs) and iio:device1 (`fakedac`, 2 x le:s16/16 outputs),
 * and a tmpfs over /dev whose iio:device0/1 are FIFOs. libiio 0.24's tools and ours then
 * open the very same device; nothing on the host changes. Needs root.
 * (The pattern of ../shared/bench/libiio-anchor.sh.)
 */
import { spawnSync } from 'node:child_process';

/** Bash that builds the namespace's devices; the caller's script runs after it. */
export const NAMESPACE_SETUP = String.raw`
set -e
mount -t tmpfs none /sys/bus
mk() { # mk <N> <name> <in|out> <channels>
  local D=/sys/bus/iio/devices/iio:device$1
  mkdir -p $D/scan_elements $D/buffer
  echo $2 > $D/name
  local i=0
  while [ $i -lt $4 ]; do
    echo 0 > $D/scan_elements/$3_voltage$((i))_en
    echo $i > $D/scan_elements/$3_voltage$((i))_index
    echo "le:s16/16>>0" > $D/scan_elements/$3_voltage$((i))_type
    echo 0 > $D/$3_voltage$((i))_raw
    i=$((i + 1))
  done
  echo 0 > $D/buffer/enable; echo 4096 > $D/buffer/length; echo 1 > $D/buffer/watermark
  echo 0 > $D/buffer/data_available
}
mk 0 fakeadc in 4
mk 1 fakedac out 2
mount -t tmpfs none /dev
mknod /dev/null c 1 3; mknod /dev/zero c 1 5; mknod /dev/urandom c 1 9; mknod /dev/random c 1 8
chmod 666 /dev/null /dev/zero /dev/urandom /dev/random
mkfifo /dev/iio:device0 /dev/iio:device1
set +e
`;

/** True when this process may make the namespace (root, unshare present). */
export function namespaceAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  return spawnSync('unshare', ['-m', 'true']).status === 0;
}

/** Runs `script` (bash) after NAMESPACE_SETUP in a fresh private mount namespace. */
export function runInNamespace(
  script: string,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 120000,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    'unshare',
    ['-m', '--propagation', 'private', 'bash', '-c', NAMESPACE_SETUP + script],
    {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
