import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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

/** libiio main (1.0): its binaries and the environment they run in. */
export interface LibiioMain {
  /** The folder of ../shared/libiio-main (bin/, sbin/, lib/). */
  readonly dir: string;
  /** `sbin/iiod`. */
  readonly iiod: string;
  /** The environment its binaries need (LD_LIBRARY_PATH when the lib links were lost). */
  readonly env: NodeJS.ProcessEnv;
}

/**
 * libiio main's binaries, built outside this repository (../shared/libiio-main, or
 * LIBIIO_MAIN_DIR), or null when they are missing or do not run. A copy that lost
 * its symbolic links keeps `lib/libiio.so.1` as a text file naming its target: the
 * loader then gets a private folder with the link made again (LD_LIBRARY_PATH comes
 * before the binaries' RUNPATH).
 */
export function libiioMain(): LibiioMain | null {
  if (libiioMainFound !== undefined) return libiioMainFound;
  const dir = resolve(
    process.env.LIBIIO_MAIN_DIR ?? join(__dirname, '../../../../shared/libiio-main'),
  );
  const iiod = join(dir, 'sbin/iiod');
  const env: NodeJS.ProcessEnv = { ...process.env };
  let found: LibiioMain | null = null;
  try {
    const soname = join(dir, 'lib/libiio.so.1');
    const head = readFileSync(soname);
    if (head.subarray(0, 4).toString('latin1') !== '\x7fELF' && head.length < 256) {
      const target = join(dir, 'lib', head.toString('utf8').trim());
      // One folder per user, reused by every run (a new one per run would pile up).
      const lib = join(tmpdir(), `iiokit-libiio-main-${process.getuid?.() ?? 0}`);
      mkdirSync(lib, { recursive: true });
      const link = join(lib, 'libiio.so.1');
      rmSync(link, { force: true });
      symlinkSync(target, link);
      env.LD_LIBRARY_PATH = [lib, env.LD_LIBRARY_PATH].filter(Boolean).join(':');
    }
    const r = spawnSync(iiod, ['-V'], { env, encoding: 'utf8', timeout: 10000 });
    if (r.status === 0 && /^1\./.test(r.stdout.trim())) found = { dir, iiod, env };
  } catch {
    found = null;
  }
  libiioMainFound = found;
  return found;
}
/** undefined: not looked for yet; null: not there. */
let libiioMainFound: LibiioMain | null | undefined;

/** libiio main's tool `bin/<tool>` and the environment it runs in (null when missing). */
export function libiioMainTool(tool: string): { cmd: string; env: NodeJS.ProcessEnv } {
  const m = libiioMain();
  if (!m) throw new Error('libiio main is missing (../shared/libiio-main; see PEERS.libiioMain)');
  return { cmd: join(m.dir, 'bin', tool), env: m.env };
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
  iiodMain: {
    name: "libiio main's iiod (1.0, ../shared/libiio-main/sbin/iiod)",
    install:
      "put libiio main's binaries in ../shared/libiio-main (see its README) and apt-get install -y libxml2 libusb-1.0-0 libserialport0 libzstd1 libavahi-client3 libaio1",
    available: () => libiioMain() !== null,
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
        if (!libiioMain()) return false;
        const { cmd, env } = libiioMainTool('iio_info');
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
