import { Writable } from 'node:stream';
import { main } from '../../src/cli/main';

/** A writable that keeps what was written. */
export class Capture extends Writable {
  private chunks: Buffer[] = [];
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    cb();
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Runs `iiokit <argv>` in this process and returns its output and status. */
export async function iiokit(
  argv: string[],
): Promise<{ stdout: string; stderr: string; status: number }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const status = await main(argv, { stdout, stderr });
  return { stdout: stdout.text, stderr: stderr.text, status };
}

/** Runs `iiokit <argv>` in this process with binary stdout (and an optional stdin). */
export async function iiokitBinary(
  argv: string[],
  stdin?: NodeJS.ReadableStream,
): Promise<{ stdout: Buffer; stderr: string; status: number }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const status = await main(argv, { stdout, stderr, stdin });
  return { stdout: stdout.bytes, stderr: stderr.text, status };
}
