import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Context as MochaContext } from 'mocha';

/**
 * Real peers the tests talk to. A missing peer skips the test with a loud reason when
 * run by hand; under CI=true it is a failure (CI installs every peer in .ci/run).
 */
export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

/**
 * The python that has Debian's libiio bindings: /usr/bin/python3 (a pyenv `python3`
 * earlier on PATH has no `iio` module).
 */
export function pythonWithIio(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', 'import iio'], { stdio: 'ignore' }).status === 0) return py;
  }
  return undefined;
}

/** An IPv4 address of a non-loopback interface (peers "from outside", mDNS), if any. */
export function externalIPv4(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
}

export interface Peer {
  readonly name: string;
  readonly install: string;
  available(): boolean;
}

const cache = new Map<string, boolean>();
function cached(key: string, f: () => boolean): boolean {
  if (!cache.has(key)) cache.set(key, f());
  return cache.get(key)!;
}

export const PEERS = {
  iioInfo: {
    name: 'iio_info (libiio 0.24)',
    install: 'apt-get install -y libiio-utils',
    available: () => cached('iio_info', () => !!which('iio_info')),
  },
  iiod: {
    name: 'iiod (libiio 0.24)',
    install: 'apt-get install -y iiod',
    available: () => cached('iiod', () => !!which('iiod')),
  },
  pythonIio: {
    name: 'python3-libiio',
    install: 'apt-get install -y python3-libiio',
    available: () => cached('pyiio', () => pythonWithIio() !== undefined),
  },
  mosquitto: {
    name: 'mosquitto',
    install: 'apt-get install -y mosquitto',
    available: () =>
      cached('mosq', () => !!which('mosquitto') || existsSync('/usr/sbin/mosquitto')),
  },
  chromium: {
    name: 'chromium',
    install: 'apt-get install -y chromium',
    available: () => cached('chromium', () => existsSync('/usr/bin/chromium')),
  },
  socat: {
    name: 'socat',
    install: 'apt-get install -y socat',
    available: () => cached('socat', () => !!which('socat')),
  },
  externalIPv4: {
    name: 'a non-loopback IPv4 interface',
    install:
      'ip link add iiokit0 type dummy && ip addr add 10.213.0.1/24 dev iiokit0 && ip link set iiokit0 up multicast on',
    available: () => !!externalIPv4(),
  },
  root: {
    name: 'root privileges',
    install: 'run the tests as root',
    available: () => process.getuid?.() === 0,
  },
  vm: {
    name: 'the IIO test VM',
    install: 'run inside ../shared/iio-vm/run (npm run test:kernel)',
    available: () => process.env.IIO_VM === '1',
  },
} satisfies Record<string, Peer>;

/** Skips (by hand) or fails (CI=true) when a peer is missing. */
export function requirePeer(ctx: MochaContext, peer: Peer): void {
  if (peer.available()) return;
  const msg = `missing peer: ${peer.name} (${peer.install})`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${msg}`);
  console.warn(`\n  *** SKIPPED: ${msg} ***`);
  ctx.skip();
}

/** Runs a command and returns stdout (stderr discarded), never throwing on exit status. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    env: opts.env ?? process.env,
    timeout: opts.timeoutMs ?? 60000,
    maxBuffer: 256 * 1024 * 1024,
  });
  return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', status: r.status };
}

export { execFileSync };
