/**
 * libiio main (1.0) as a peer: the binaries in ../shared/libiio-main (README there), or
 * where IIOKIT_LIBIIO_MAIN points. Its lib/ holds libiio.so.1 as a one-line text file (a
 * symlink flattened by the copy), so the loader cannot use it: a private directory with a
 * real symlink goes first on LD_LIBRARY_PATH (it is searched before the binaries' RUNPATH).
 */
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Peer } from './peers';

export function libiioMainDir(): string {
  return resolve(
    process.env.IIOKIT_LIBIIO_MAIN ?? join(process.cwd(), '..', 'shared', 'libiio-main'),
  );
}

export const LIBIIO_MAIN: Peer = {
  name: 'libiio main (1.0) binaries',
  install: 'put them in ../shared/libiio-main (bin/, lib/) or set IIOKIT_LIBIIO_MAIN',
  available: () => existsSync(join(libiioMainDir(), 'bin', 'iio_rwdev')),
};

let libDir: string | undefined;

/** The command and environment that run one of libiio main's tools (`iio_rwdev`, ...). */
export function libiioMainTool(tool: string): { cmd: string; env: NodeJS.ProcessEnv } {
  const dir = libiioMainDir();
  if (!libDir) {
    libDir = mkdtempSync(join(tmpdir(), 'iiokit-libiio-main-'));
    const lib = join(dir, 'lib');
    // libiio.so.1 is either the library or a text file naming it (libiio.so.1.0).
    let target = join(lib, 'libiio.so.1');
    const head = readFileSync(target).subarray(0, 4);
    if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])))
      target = join(lib, readFileSync(target, 'utf8').trim());
    symlinkSync(target, join(libDir, 'libiio.so.1'));
  }
  const ld = [libDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  return { cmd: join(dir, 'bin', tool), env: { ...process.env, LD_LIBRARY_PATH: ld } };
}
