/** Where a command writes: real streams in the binary, buffers in tests. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin?: NodeJS.ReadableStream;
}

/** Collects a command's output with few write() calls (iio_info output can be large). */
export class Out {
  private chunks: string[] = [];
  private size = 0;
  constructor(private readonly stream: NodeJS.WritableStream) {}
  write(s: string): void {
    this.chunks.push(s);
    this.size += s.length;
    if (this.size > 65536) this.flush();
  }
  line(s = ''): void {
    this.write(`${s}\n`);
  }
  flush(): void {
    if (!this.chunks.length) return;
    this.stream.write(this.chunks.join(''));
    this.chunks = [];
    this.size = 0;
  }
}

/** Thrown by a command to end with an exit status after printing what it had to say. */
export class CliExit extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}
