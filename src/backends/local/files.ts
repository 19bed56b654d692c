/**
 * File access of the local backend: directory listings in the kernel's order and
 * attribute reads/writes with libiio's conventions. Plain fs/promises: sysfs and debugfs
 * are files, no native code is needed.
 */
import { constants, type Dirent } from 'node:fs';
import { opendir, open, stat } from 'node:fs/promises';

/** A directory entry, classified as libiio's foreach_in_dir does (stat follows symlinks). */
export interface DirEntry {
  readonly name: string;
  readonly kind: 'file' | 'dir' | 'other';
}

/**
 * Entry order of copied directories, keyed by path relative to the sysfs root. sysfs lists
 * a directory in its own order (which decides libiio's order of index-less channels); a
 * copy on another file system loses it, so a snapshot records it here.
 */
export type ReaddirOrder = Readonly<Record<string, readonly string[]>>;

async function classify(dir: string, d: Dirent): Promise<DirEntry['kind']> {
  if (d.isFile()) return 'file';
  if (d.isDirectory()) return 'dir';
  if (d.isSymbolicLink()) {
    try {
      const st = await stat(`${dir}/${d.name}`);
      return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
    } catch {
      return 'other';
    }
  }
  return 'other';
}

/**
 * Lists a directory in readdir order (fs.readdir would sort it: libuv's scandir does).
 * `order` (relative path → names) overrides the order for copies of sysfs.
 * Rejects with the fs error (ENOENT, ENOTDIR, EACCES).
 */
export async function listDir(
  path: string,
  order?: { root: string; table: ReaddirOrder },
): Promise<DirEntry[]> {
  const dir = await opendir(path);
  const dirents: Dirent[] = [];
  for await (const d of dir) dirents.push(d);
  const entries = await Promise.all(
    dirents.map(async (d) => ({ name: d.name, kind: await classify(path, d) })),
  );
  if (order && path.startsWith(order.root)) {
    const rel = path.slice(order.root.length).replace(/^\/+/, '');
    const wanted = order.table[rel];
    if (wanted) {
      const pos = new Map(wanted.map((n, i) => [n, i]));
      const rank = (n: string): number => pos.get(n) ?? wanted.length;
      entries.sort((a, b) => rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : 1));
    }
  }
  return entries;
}

/** Reads a whole file as bytes (sysfs attributes are one page; debugfs files may be more). */
export async function readBytes(path: string): Promise<Buffer> {
  const fh = await open(path, constants.O_RDONLY);
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const buf = Buffer.allocUnsafe(4096);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  } finally {
    await fh.close();
  }
}

/**
 * An attribute's value as libiio reads it: the last byte (the kernel's newline) is cut,
 * and the text ends at the first NUL (libiio hands out a C string). We cut the last byte
 * only when it is a newline or a NUL, so a file without a newline keeps its last
 * character (libiio would eat it). `undefined` for an empty file (libiio: EIO).
 */
export function attrText(bytes: Buffer): string | undefined {
  if (bytes.length === 0) return undefined;
  const last = bytes[bytes.length - 1];
  let end = last === 0x0a || last === 0 ? bytes.length - 1 : bytes.length;
  const nul = bytes.indexOf(0);
  if (nul >= 0 && nul < end) end = nul;
  return bytes.toString('utf8', 0, end);
}

/**
 * Writes a value as libiio does: the string and its terminating NUL in one write(2)
 * (sysfs hands the whole buffer to the driver's store()). Opens without O_CREAT, so a
 * missing attribute is ENOENT, and with O_TRUNC so copies of sysfs behave like files.
 * Resolves with the bytes written.
 */
export async function writeValue(path: string, value: string): Promise<number> {
  const data = Buffer.from(`${value}\0`, 'utf8');
  const fh = await open(path, constants.O_WRONLY | constants.O_TRUNC);
  try {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await fh.write(data, done, data.length - done, null);
      if (bytesWritten === 0) break;
      done += bytesWritten;
    }
    return done;
  } finally {
    await fh.close();
  }
}

/** True when the path exists and is a directory. */
export async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
