/**
 * Loads the native module (native/*.cc) on first use. Only `local:` needs it, so nothing
 * else loads it: when it is missing or broken, `ip:`, `usb:`, `serial:`, `xml:` and `emu:`
 * keep working and `local:` fails with an {@link IioError} that says why and how to fix it.
 *
 * Where the binary comes from, in node-gyp-build's order: `build/Release` (a build from
 * source), then `prebuilds/<platform>-<arch>/` (shipped in the npm package, see
 * docs/install.md). `IIOKIT_NATIVE=/path/to/iiokit.node` overrides both.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { IioError } from '../errors';

/** What every build of the native module exports. */
export interface NativeAddon {
  /** Bumped whenever the exports change incompatibly; must equal {@link NATIVE_ABI_VERSION}. */
  readonly abiVersion: number;
}

/** The `abiVersion` this TypeScript was written against (native/addon.cc). */
export const NATIVE_ABI_VERSION = 1;

/** The package's root directory (holds binding.gyp, build/ and prebuilds/). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');

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
      /** The error code `loadNative()` throws with (`ENOSYS`, `ELIBACC`, `ELIBBAD`). */
      readonly code: string;
    };

let state: { status: NativeStatus; addon?: NativeAddon } | undefined;

/**
 * The native module, loaded once. Throws an {@link IioError} naming the reason and the fix
 * when it cannot be loaded; `uri` (e.g. `local:`) is named in that message.
 */
export function loadNative<T extends NativeAddon = NativeAddon>(uri = 'local:'): T {
  const { status, addon } = (state ??= attempt());
  if (status.loaded) return addon as T;
  throw new IioError(status.code, `${status.reason}. ${status.fix}`, {
    uri,
    op: 'load the native module',
  });
}

/** Reports whether the native module loads, without throwing (for diagnostics and status). */
export function nativeModuleStatus(): NativeStatus {
  return (state ??= attempt()).status;
}

function attempt(): { status: NativeStatus; addon?: NativeAddon } {
  if (process.platform !== 'linux') {
    return failed(
      'ENOSYS',
      `local: talks to the Linux kernel's IIO subsystem and this is ${process.platform}`,
      'Run iiod on the Linux board and use an ip: context instead',
    );
  }
  let file: string;
  try {
    file = process.env.IIOKIT_NATIVE || locate();
  } catch (err) {
    return failed(
      'ENOSYS',
      `there is no build of the native module for ${target()}: this package ships prebuilt ` +
        `binaries for ${shipped()}, and none was built from source ` +
        `(${path.join(PACKAGE_ROOT, 'build', 'Release')} is empty)`,
      buildHint(),
      err,
    );
  }
  let addon: NativeAddon;
  try {
    addon = require(file) as NativeAddon;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return failed(
      'ELIBACC',
      `the native module ${file} does not load on this system: ${why}`,
      buildHint(),
      err,
    );
  }
  if (addon.abiVersion !== NATIVE_ABI_VERSION) {
    return failed(
      'ELIBBAD',
      `the native module ${file} has ABI version ${String(addon.abiVersion)}, this package ` +
        `expects ${NATIVE_ABI_VERSION} (a build left over from another version)`,
      buildHint(),
    );
  }
  const prebuilt = file.startsWith(path.join(PACKAGE_ROOT, 'prebuilds') + path.sep);
  return { status: { loaded: true, file, prebuilt }, addon };
}

function failed(
  code: string,
  reason: string,
  fix: string,
  cause?: unknown,
): { status: NativeStatus } {
  if (process.env.IIOKIT_DEBUG_NATIVE && cause) console.error(cause);
  return { status: { loaded: false, code, reason, fix } };
}

/** node-gyp-build's search: build/Release, then the best matching prebuild. */
function locate(): string {
  const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
  return nodeGypBuild.path(PACKAGE_ROOT);
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
function shipped(): string {
  const dir = path.join(PACKAGE_ROOT, 'prebuilds');
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

function buildHint(): string {
  const tools =
    libc() === 'musl'
      ? 'apk add python3 make g++ linux-headers'
      : 'apt-get install python3 make g++';
  return (
    `Build it from source: cd ${PACKAGE_ROOT} && npx --yes node-gyp rebuild ` +
    `(needs a compiler: ${tools}; see docs/install.md). ` +
    'Contexts other than local: (ip:, usb:, serial:, xml:, emu:) work without it'
  );
}
