/**
 * libiio main (1.0) for the benches: the binaries in ../shared/libiio-main (or where
 * IIOKIT_LIBIIO_MAIN points). Its lib/libiio.so.1 may be a symbolic link flattened into a
 * one-line text file by a copy; then a private directory with a real link goes first on
 * LD_LIBRARY_PATH (searched before the binaries' RUNPATH).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

function isElf(file: string): boolean {
  try {
    return readFileSync(file).subarray(0, 4).equals(ELF);
  } catch {
    return false;
  }
}

/** Where libiio main is, its tools' paths and the environment they need; undefined if absent. */
export function libiioMain():
  | { dir: string; bin(tool: string): string; sbin(tool: string): string; env: NodeJS.ProcessEnv }
  | undefined {
  const dir = resolve(
    process.env.IIOKIT_LIBIIO_MAIN ?? join(__dirname, '../../../shared/libiio-main'),
  );
  const lib = join(dir, 'lib');
  if (!existsSync(join(dir, 'bin', 'iio_rwdev')) || !existsSync(join(dir, 'sbin', 'iiod')))
    return undefined;
  let path = lib;
  if (!isElf(join(lib, 'libiio.so.1'))) {
    const target = join(lib, readFileSync(join(lib, 'libiio.so.1'), 'utf8').trim());
    if (!isElf(target)) return undefined;
    path = join(tmpdir(), `iiokit-bench-libiio-main-${process.getuid?.() ?? 0}`);
    mkdirSync(path, { recursive: true });
    const link = join(path, 'libiio.so.1');
    if (!isElf(link)) {
      rmSync(link, { force: true });
      symlinkSync(target, link);
    }
  }
  const old = process.env.LD_LIBRARY_PATH;
  return {
    dir,
    bin: (t) => join(dir, 'bin', t),
    sbin: (t) => join(dir, 'sbin', t),
    env: { LD_LIBRARY_PATH: old ? `${path}:${old}` : path },
  };
}
