/**
 * The packed package, made once per test run and shared by the pack tests (host, qemu-user
 * ARM roots, and the kernel VM, which cannot reach the registry: it installs offline from
 * the npm cache the host install filled, kept under dist/pack/).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '..', '..', '..');
/** Where the tarball and its npm cache are kept for the kernel suite (inside dist/, ignored by git). */
export const PACK_DIR = path.join(REPO, 'dist', 'pack');
export const NPM_CACHE = path.join(PACK_DIR, 'npm-cache');
export const PACKAGE_NAME = '@iiokit/node-red-iio';
/** The probe every installed copy runs (compiled from native-check.ts). */
export const NATIVE_CHECK = path.join(__dirname, 'native-check.js');
export const XML_FIXTURE = path.join(REPO, 'test', 'fixtures', 'xml', 'adxl345.xml');

export interface PackedFile {
  path: string;
  size: number;
}
export interface Packed {
  tarball: string;
  /** Compressed size in bytes. */
  size: number;
  unpackedSize: number;
  files: PackedFile[];
}

/** Runs a command, throwing with its output when it fails. */
export function sh(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): string {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? REPO,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout ?? ''}\n${r.stderr ?? ''}`,
    );
  }
  return r.stdout;
}

let packed: Packed | undefined;

/**
 * Builds the prebuilt binaries (skipped when up to date) and packs the package as
 * `npm publish` would. The prepack script would build the prebuilds itself; it is run
 * explicitly here, and scripts are off, so npm's output stays parseable JSON and dist/
 * (already compiled by `npm test`) is not rewritten under the running tests.
 */
export function packOnce(): Packed {
  if (packed) return packed;
  sh('bash', ['scripts/build-prebuilds.sh']);
  mkdirSync(PACK_DIR, { recursive: true });
  const out = sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', PACK_DIR]);
  const [info] = JSON.parse(out) as [
    { filename: string; size: number; unpackedSize: number; files: PackedFile[] },
  ];
  packed = {
    tarball: path.join(PACK_DIR, info.filename),
    size: info.size,
    unpackedSize: info.unpackedSize,
    files: info.files,
  };
  return packed;
}

/**
 * Installs the tarball like a Node-RED user does (`npm install` in the user directory),
 * with install scripts off, so nothing can be compiled: the prebuilt binary must do.
 * `dir` gets a Node-RED-like package.json first if it has none.
 */
export function installTarball(dir: string, tarball: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'node-red-project', private: true, version: '0.0.1' }),
  );
  sh(
    'npm',
    [
      'install',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--cache',
      NPM_CACHE,
      tarball,
    ],
    { cwd: dir },
  );
  return path.join(dir, 'node_modules', ...PACKAGE_NAME.split('/'));
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** What native-check.js prints. */
export interface Probe {
  node: string;
  arch: string;
  status:
    | { loaded: true; file: string; prebuilt: boolean }
    | { loaded: false; code: string; reason: string; fix: string };
  selfTest?: { ok: boolean; checks: { name: string; ok: boolean; detail: string }[] };
  selfTestError?: string;
  ioctls?: Record<string, number>;
  xmlDevices?: string[];
  xmlError?: string;
  capture?: { hex: string; values: number[] };
  captureError?: { code: string; message: string };
  statusAfterCapture?: Probe['status'];
}

export function parseProbe(stdout: string): Probe {
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Probe;
}

/**
 * ioctl numbers as the kernel's UAPI headers define them (gcc on 6.12 headers,
 * ../shared/reference/kernel-abi-notes.md §1.7). The generic _IOC encoding makes them the
 * same on x86-64, arm64 and armv7; a cross-compiled binary that disagrees has the wrong
 * struct layout or encoding.
 */
export const KERNEL_IOCTLS: Readonly<Record<string, number>> = {
  IIO_GET_EVENT_FD_IOCTL: 0x80046990,
  IIO_BUFFER_GET_FD_IOCTL: 0xc0046991,
  IIO_BUFFER_DMABUF_ATTACH_IOCTL: 0x40046992,
  IIO_BUFFER_DMABUF_DETACH_IOCTL: 0x40046993,
  IIO_BUFFER_DMABUF_ENQUEUE_IOCTL: 0x40106994,
  DMA_HEAP_IOCTL_ALLOC: 0xc0184800,
  DMA_BUF_IOCTL_SYNC: 0x40086200,
};

/** Fails with the names and details of the self-test checks that did not pass. */
export function assertSelfTest(probe: Probe): void {
  if (probe.selfTestError) throw new Error(`selfTest() threw: ${probe.selfTestError}`);
  const st = probe.selfTest;
  if (!st || !Array.isArray(st.checks) || st.checks.length === 0) {
    throw new Error(`selfTest() returned no checks: ${JSON.stringify(st)}`);
  }
  const failed = st.checks.filter((c) => !c.ok);
  if (!st.ok || failed.length) {
    throw new Error(`self-test failed: ${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}`);
  }
}

/** Fails unless every ioctl number the addon uses is the kernel's. */
export function assertKernelIoctls(got: Record<string, number> | undefined): void {
  for (const [name, value] of Object.entries(KERNEL_IOCTLS)) {
    if (got?.[name] !== value) {
      throw new Error(`${name} is ${String(got?.[name])}, the kernel's is 0x${value.toString(16)}`);
    }
  }
}
