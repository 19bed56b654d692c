/**
 * Why the native module loads or not, in words a user can act on: which binary was found
 * (a build from source or a prebuilt one), or what this system is, which prebuilt binaries
 * the package ships, and how to build one. src/native/index.ts turns a failure into the
 * IioError that `local:` throws.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

/** Whether the native module could be loaded, and from where or why not. */
export type NativeStatus =
  | {
      readonly loaded: true;
      /** The .node file that was loaded. */
      readonly file: string;
      /** True for a binary shipped in prebuilds/, false for a build from source. */
      readonly prebuilt: boolean;
    }
  | {
      readonly loaded: false;
      /** Why it could not be loaded. */
      readonly reason: string;
      /** What to do about it. */
      readonly fix: string;
      /** The error code loading throws with: ELIBACC, or ENOSYS when this is not Linux. */
      readonly code: string;
    };

/**
 * Finds and loads the addon under `root` the way node-gyp-build does (build/Release, then
 * the best matching prebuilds/<platform>-<arch>/ binary) and checks its `abiVersion`.
 */
export function attemptLoad(
  root: string,
  abiVersion: number,
): { status: NativeStatus; addon?: unknown } {
  if (process.platform !== 'linux') {
    return failed(
      'ENOSYS',
      `local: talks to the Linux kernel's IIO subsystem and this is ${process.platform}`,
      'Run iiod on the Linux board and use an ip: context instead',
    );
  }
  let file: string;
  try {
    const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
    file = nodeGypBuild.path(root);
  } catch {
    return failed(
      'ELIBACC',
      `there is no build of the native module for ${target()}: this package ships prebuilt ` +
        `binaries for ${shipped(root)}, and none was built from source ` +
        `(${path.join(root, 'build', 'Release')} is empty)`,
      buildHint(root),
    );
  }
  let addon: { abiVersion?: unknown };
  try {
    addon = require(file) as { abiVersion?: unknown };
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return failed(
      'ELIBACC',
      `the native module ${file} does not load on this system: ${why}`,
      buildHint(root),
    );
  }
  if (addon.abiVersion !== abiVersion) {
    return failed(
      'ELIBACC',
      `the native module ${file} has interface version ${String(addon.abiVersion)}, this ` +
        `package needs ${abiVersion} (a build left over from another version)`,
      buildHint(root),
    );
  }
  const prebuilt = file.startsWith(path.join(root, 'prebuilds') + path.sep);
  return { status: { loaded: true, file, prebuilt }, addon };
}

function failed(code: string, reason: string, fix: string): { status: NativeStatus } {
  return { status: { loaded: false, code, reason, fix } };
}

function libc(): string {
  if (process.env.LIBC) return process.env.LIBC; // node-gyp-build's own override
  return existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
}

/** This system as node-gyp-build describes it, e.g. `linux-arm (armv7, glibc)`. */
function target(): string {
  const armv = (process.config.variables as { arm_version?: string }).arm_version;
  const flavour = [process.arch === 'arm' && armv ? `armv${armv}` : '', libc()].filter(Boolean);
  return `${process.platform}-${process.arch} (${flavour.join(', ')})`;
}

/** The prebuilt binaries actually in this package, e.g. `linux-arm64 (glibc), ...`. */
function shipped(root: string): string {
  const dir = path.join(root, 'prebuilds');
  const found: string[] = [];
  for (const tuple of safeReaddir(dir)) {
    for (const file of safeReaddir(path.join(dir, tuple))) {
      if (!file.endsWith('.node')) continue;
      const tags = file.split('.').filter((t) => /^(armv\d+|glibc|musl)$/.test(t));
      found.push(tags.length ? `${tuple} (${tags.join(', ')})` : tuple);
    }
  }
  return found.length ? found.join(', ') : 'none';
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function buildHint(root: string): string {
  const tools =
    libc() === 'musl'
      ? 'apk add python3 make g++ linux-headers'
      : 'apt-get install python3 make g++';
  return (
    'Build it from source: `npm rebuild @iiokit/node-red-iio` where it was installed (e.g. ' +
    `~/.node-red) if install scripts may run, else cd ${root} && npx --yes node-gyp rebuild; ` +
    `both need a compiler (${tools}; see docs/install.md). ` +
    'Contexts other than local: (ip:, usb:, serial:, xml:, emu:) work without it'
  );
}
