/**
 * The sysfs snapshots of test/fixtures/sysfs (written by scripts/snapshot-sysfs.sh inside
 * the VM): the copied tree, its manifest, and what libiio 0.24 printed there.
 */
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerBackend } from '../../src/backends';
import type { BackendFactory } from '../../src/model/backend';
import type { ReaddirOrder } from '../../src/backends/local/files';
import type { UnameInfo } from '../../src/backends/local/sysfs-scan';

export const SYSFS_FIXTURES = join(__dirname, '../../../test/fixtures/sysfs');

export interface SnapshotManifest {
  readonly uname: UnameInfo;
  readonly readdirOrder: ReaddirOrder;
  /** Files that could not be read (write-only); the copy holds an empty file. */
  readonly unreadable: readonly string[];
}

export interface Snapshot {
  /** `linux-6.1`, `linux-6.12` */
  readonly name: string;
  readonly dir: string;
  readonly manifest: SnapshotManifest;
  readonly iioInfo: string;
  readonly genxml: string;
  /** iio_attr query → its recorded status, stdout and stderr, in query order. */
  readonly attr: ReadonlyArray<{ query: string; status: number; stdout: string; stderr: string }>;
}

export interface AttrQuery {
  readonly line: string;
  readonly args: string[];
  /** Needs the real kernel (marked `!`). */
  readonly kernelOnly: boolean;
}

/** test/fixtures/sysfs/iio-attr-queries.txt, in order. */
export function attrQueries(): AttrQuery[] {
  return readFileSync(join(SYSFS_FIXTURES, 'iio-attr-queries.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const kernelOnly = l.startsWith('!');
      const line = kernelOnly ? l.slice(1) : l;
      return { line, args: line.split(' '), kernelOnly };
    });
}

export function snapshotNames(): string[] {
  return readdirSync(SYSFS_FIXTURES)
    .filter((n) => n.startsWith('linux-'))
    .sort();
}

function parseAttrRecord(
  text: string,
): Array<{ query: string; status: number; stdout: string; stderr: string }> {
  const out: Array<{ query: string; status: number; stdout: string; stderr: string }> = [];
  const parts = text.split(/^=== /m).slice(1);
  for (const p of parts) {
    const nl = p.indexOf('\n');
    const query = p.slice(0, nl);
    const body = p.slice(nl + 1);
    const m = /^--- status (\d+)\n([\s\S]*?)--- stderr\n([\s\S]*)$/.exec(body);
    if (!m) throw new Error(`bad iio_attr record for "${query}"`);
    out.push({ query, status: Number(m[1]), stdout: m[2], stderr: m[3] });
  }
  return out;
}

export function loadSnapshot(name: string): Snapshot {
  const dir = join(SYSFS_FIXTURES, name);
  return {
    name,
    dir,
    manifest: JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as SnapshotManifest,
    iioInfo: readFileSync(join(dir, 'iio_info.txt'), 'utf8'),
    genxml:
      readFileSync(join(dir, 'iio_genxml.xml'), 'utf8')
        .split('\n')
        .find((l) => l.startsWith('<?xml')) ?? '',
    attr: parseAttrRecord(readFileSync(join(dir, 'iio_attr.txt'), 'utf8')),
  };
}

/** A writable copy of a snapshot's tree; remove it with the returned function. */
export function copySnapshot(s: Snapshot): { root: string; remove: () => void } {
  const tmp = mkdtempSync(join(tmpdir(), `iiokit-${s.name}-`));
  cpSync(join(s.dir, 'sys'), join(tmp, 'sys'), { recursive: true });
  return { root: join(tmp, 'sys'), remove: () => rmSync(tmp, { recursive: true, force: true }) };
}

/** Options that make `local:` read a snapshot as if it were this machine's sysfs. */
export function snapshotOptions(s: Snapshot, root = join(s.dir, 'sys')): Record<string, unknown> {
  return {
    sysfsRoot: root,
    readdirOrder: s.manifest.readdirOrder,
    uname: s.manifest.uname,
    iniFile: '',
  };
}

/**
 * Makes every `local:` context opened while `f` runs (the CLI's too) read the snapshot.
 */
export async function withSnapshotBackend<T>(
  options: Record<string, unknown>,
  f: () => Promise<T>,
): Promise<T> {
  const { openLocalBackend } =
    require('../../src/backends/local') as typeof import('../../src/backends/local');
  const factory: BackendFactory = (uri, o) => openLocalBackend(uri, { ...o, ...options });
  registerBackend('local', () => factory);
  try {
    return await f();
  } finally {
    registerBackend('local', () => openLocalBackend);
  }
}

/** Drops the lines that name the library and its version (they differ by design). */
export function dropVersionLines(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^(Library version: |Compiled with backends: |Backend version: )/.test(l))
    .join('\n');
}
