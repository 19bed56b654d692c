/**
 * Bench helper (run inside the mount namespace of server.bench.ts): serves the FIFO-backed
 * fake device with serveContext. Usage: node server-fifo-serve.js PORT IIOD_PORT [MODE];
 * prints `mode <what it serves through>` first.
 *
 * MODE `auto` (default) serves `local:` when its buffers work (the native module is built
 * and merged), else `standin`: a minimal stand-in for local: that reads the same sysfs
 * tree and character device from JavaScript, with the description taken from the iiod
 * at IIOD_PORT so both serve the same context. MODE `memory`: the device hands out the
 * same zero-filled block again and again — what the server path alone can carry.
 */
import { openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { connect, Socket } from 'node:net';
import { registerBackend, createContext, serveContext, IioError, type Context } from '../src';
import type {
  AttrRef,
  Backend,
  BackendBuffer,
  BackendOpenOptions,
  BufferOpenOptions,
  RawBlock,
} from '../src/model/backend';
import { computeScanLayout } from '../src/format/layout';
import { parseContextXml } from '../src/xml';
import type { ContextInfo, DeviceInfo } from '../src/model/info';

const SYSFS = '/sys/bus/iio/devices';

/** The context XML, as iiod prints it (PRINT). */
function fetchXml(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(10);
      if (nl < 0) return;
      const len = Number(buf.subarray(0, nl).toString());
      if (buf.length >= nl + 1 + len) {
        s.destroy();
        resolve(buf.subarray(nl + 1, nl + 1 + len).toString());
      }
    });
    s.on('error', reject);
    s.write('PRINT\r\n');
  });
}

/** Reads the character device as a stream: libuv's pipe reads, whole scans per block. */
class FifoBuffer implements BackendBuffer {
  private readonly sock: Socket;
  private queue: Buffer[] = [];
  private queued = 0;
  private parts: Buffer[] = [];
  private partBytes = 0;
  private waiter: { resolve: (b: RawBlock) => void; reject: (e: Error) => void } | null = null;

  constructor(
    readonly mask: BufferOpenOptions['mask'],
    private readonly blockBytes: number,
    private readonly limit: number,
    path: string,
  ) {
    this.sock = new Socket({ fd: openSync(path, 'r'), readable: true, writable: false });
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (e) => this.waiter?.reject(e));
  }

  private onData(d: Buffer): void {
    // Whole blocks of `samples` scans, as the kernel hands out a buffer's worth.
    this.parts.push(d);
    this.partBytes += d.length;
    while (this.partBytes >= this.blockBytes) {
      const all =
        this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.partBytes);
      const data = all.subarray(0, this.blockBytes);
      const rest = all.subarray(this.blockBytes);
      this.parts = rest.length ? [rest] : [];
      this.partBytes = rest.length;
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve({ data, release: () => undefined });
        continue;
      }
      this.queue.push(data);
      this.queued += data.length;
      if (this.queued > this.limit) this.sock.pause();
    }
  }

  read(): Promise<RawBlock> {
    const d = this.queue.shift();
    if (d) {
      this.queued -= d.length;
      if (this.queued < this.limit / 2) this.sock.resume();
      return Promise.resolve({ data: d, release: () => undefined });
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  async write(): Promise<void> {
    throw new IioError('EPERM', 'input only');
  }

  cancel(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.reject(new IioError('ECANCELED', 'cancelled'));
  }

  async close(): Promise<void> {
    this.cancel();
    this.sock.destroy();
  }
}

/** A device whose every block is ready at once (zeros): no read cost at all. */
class MemoryBuffer implements BackendBuffer {
  constructor(
    readonly mask: BufferOpenOptions['mask'],
    private readonly block: Buffer,
  ) {}
  async read(): Promise<RawBlock> {
    return { data: this.block, release: () => undefined };
  }
  async write(): Promise<void> {
    throw new IioError('EPERM', 'input only');
  }
  cancel(): void {}
  async close(): Promise<void> {}
}

class FifoBackend implements Backend {
  readonly name = 'local';
  constructor(
    readonly uri: string,
    readonly info: ContextInfo,
    private readonly memory: boolean,
  ) {}

  private file(ref: AttrRef): string {
    const dir = `${SYSFS}/${ref.device!.id}`;
    if (ref.kind === 'buffer') return `${dir}/buffer/${ref.attr.name}`;
    return `${dir}/${ref.attr.filename ?? ref.attr.name}`;
  }

  async readAttr(ref: AttrRef): Promise<string> {
    return (await readFile(this.file(ref), 'utf8')).replace(/\n$/, '');
  }

  async writeAttr(ref: AttrRef, value: string): Promise<number> {
    await writeFile(this.file(ref), value);
    return value.length;
  }

  async getTrigger(): Promise<string | null> {
    throw new IioError('ENOENT', 'no trigger');
  }

  async setTrigger(): Promise<void> {
    throw new IioError('ENOENT', 'no trigger');
  }

  async openBuffer(device: DeviceInfo, options: BufferOpenOptions): Promise<BackendBuffer> {
    const layout = computeScanLayout(
      options.mask.indices().map((i) => ({
        key: i,
        index: device.channels[i].index,
        format: device.channels[i].format!,
        isTimestamp: device.channels[i].id === 'timestamp',
      })),
    );
    if (this.memory) {
      return new MemoryBuffer(options.mask, Buffer.alloc(options.samples * layout.scanBytes));
    }
    return new FifoBuffer(
      options.mask,
      options.samples * layout.scanBytes,
      4 * options.samples * layout.scanBytes,
      `/dev/${device.id}`,
    );
  }

  async close(): Promise<void> {}
}

/** True when local: can stream the fake device (its buffers need the native module). */
async function localBuffersWork(): Promise<Context | undefined> {
  let ctx: Context | undefined;
  try {
    ctx = await createContext('local:');
    const buf = await ctx.device('fakeadc').createBuffer(16, { channels: ['voltage0'] });
    await buf.refill();
    await buf.close();
    return ctx;
  } catch {
    await ctx?.close();
    return undefined;
  }
}

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  const iiodPort = Number(process.argv[3]);
  const mode = process.argv[4] ?? 'auto';
  let ctx = mode === 'auto' || mode === 'local' ? await localBuffersWork() : undefined;
  let used = 'local';
  if (!ctx) {
    if (mode === 'local') throw new Error('local: cannot stream here');
    used = mode === 'memory' ? 'memory' : 'standin';
    // iiod may still be starting (the bench starts the servers together)
    let xml: string | undefined;
    for (let i = 0; xml === undefined; i++) {
      xml = await fetchXml(iiodPort).catch((e: unknown) => {
        if (i >= 100) throw e;
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 100));
      });
    }
    const info = parseContextXml(xml, { backendName: 'local' });
    registerBackend(
      'local',
      () => async (uri: string, _o: BackendOpenOptions) =>
        new FifoBackend(uri, info, used === 'memory'),
    );
    ctx = await createContext('local:');
  }
  const server = await serveContext(ctx, { port });
  process.stdout.write(`mode ${used}\nserving ${server.uri}\n`);
  const stop = async (): Promise<void> => {
    await server.close();
    await ctx!.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
