/**
 * The sysfs files a buffer changed, to be put back when it closes (or the process exits):
 * a buffer leaves the device as it found it, whoever configured it before.
 */
import { writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { IioError } from '../../errors';

/** A sysfs value without its trailing newline. */
export async function readTrim(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

/**
 * Remembers each file's original value and restores them in the order they were changed:
 * length before watermark, since the kernel refuses a watermark above the length and
 * clamps the watermark when the length shrinks (which is also why originals are read
 * before anything is written).
 */
export class SysfsJournal {
  private readonly saved: Array<[path: string, value: string]> = [];
  private readonly originals = new Map<string, string>();

  constructor(private readonly where: { uri: string; device: string }) {}

  private ctx(path: string, op: string): { uri: string; device: string; file: string; op: string } {
    return { ...this.where, file: path, op };
  }

  async read(path: string): Promise<string> {
    try {
      return await readTrim(path);
    } catch (err) {
      throw IioError.wrap(err, this.ctx(path, 'read'));
    }
  }

  /** Reads the values to restore before anything changes them. */
  async snapshot(...paths: string[]): Promise<void> {
    for (const p of paths) {
      try {
        this.originals.set(p, await readTrim(p));
      } catch {
        // absent (no watermark on old kernels): set() reports it if it is needed
      }
    }
  }

  /** Writes when the value differs, remembering the old one (unless `restore` is false). */
  async set(path: string, value: string, restore = true): Promise<void> {
    const original = this.originals.get(path) ?? (await this.read(path));
    // The kernel may have changed it since the snapshot (a clamped watermark).
    const current = this.originals.has(path) ? await this.read(path) : original;
    if (current !== value) {
      try {
        await writeFile(path, value);
      } catch (err) {
        throw IioError.wrap(err, this.ctx(path, 'write'));
      }
    }
    if (restore && original !== value) this.saved.push([path, original]);
  }

  /** Puts back every value, in the order they were changed; returns what failed. */
  async restore(): Promise<IioError[]> {
    const failed: IioError[] = [];
    for (const [path, value] of this.saved.splice(0)) {
      try {
        await writeFile(path, value);
      } catch (err) {
        failed.push(IioError.wrap(err, this.ctx(path, 'restore')));
      }
    }
    return failed;
  }

  /** The same, synchronously (process exit and signals). */
  restoreSync(): void {
    for (const [path, value] of this.saved.splice(0)) {
      try {
        writeFileSync(path, value);
      } catch {
        // Best effort: the process is going away.
      }
    }
  }
}
