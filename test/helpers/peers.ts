import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmSync, symlinkSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** Where libiio main's tools are (../shared/libiio-main, beside the repository). */
const LIBIIO_MAIN = join(__dirname, '../../../../shared/libiio-main');

function isElf(file: string): boolean {
  try {
    const fd = openSync(file, 'r');
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 0);
    closeSync(fd);
    return b.toString('latin1') === '\x7fELF';
  } catch {
    return false;
  }
}

let mainEnv: NodeJS.ProcessEnv | undefined;
/**
 * libiio main's tool `tool` and the environment it runs in. Its lib/libiio.so.1 may be
 * a symbolic link copied as a text file (naming libiio.so.1.0): then a temporary
 * directory with a real link goes first on LD_LIBRARY_PATH.
 */
export function libiioMain(tool: string): { cmd: string; env: NodeJS.ProcessEnv } {
  if (!mainEnv) {
    const lib = join(LIBIIO_MAIN, 'lib');
    let path = lib;
    if (!isElf(join(lib, 'libiio.so.1')) && isElf(join(lib, 'libiio.so.1.0'))) {
      // One directory per user, reused by every run.
      path = join(tmpdir(), `iiokit-libiio-main-${process.getuid?.() ?? 0}`);
      mkdirSync(path, { recursive: true });
      const link = join(path, 'libiio.so.1');
      if (!isElf(link)) {
        rmSync(link, { force: true });
        symlinkSync(join(lib, 'libiio.so.1.0'), link);
      }
    }
    const old = process.env.LD_LIBRARY_PATH;
    mainEnv = { ...process.env, LD_LIBRARY_PATH: old ? `${path}:${old}` : path };
  }
  return { cmd: join(LIBIIO_MAIN, 'bin', tool), env: mainEnv };
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
  libiioMain: {
    name: 'libiio main (1.0) tools in ../shared/libiio-main',
    install:
      'build libiio main into ../shared/libiio-main (see its README); apt-get install -y libxml2 libusb-1.0-0 libserialport0 libzstd1 libavahi-client3 libaio1',
    available: () =>
      cached('libiio-main', () => {
        const { cmd, env } = libiioMain('iio_info');
        return spawnSync(cmd, ['-V'], { env, stdio: 'ignore' }).status === 0;
      }),
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
