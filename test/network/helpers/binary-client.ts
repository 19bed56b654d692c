/**
 * A raw conversation in libiio 1.0's binary protocol, for what no libiio tool can send
 * (malformed frames) or receive (events: libiio main's client cannot open an event stream
 * over ip:, see server-binary.test.ts). Frames are built by hand from the header layout
 * (`{u16 client_id, u8 op, u8 dev, i32 code}`, little-endian), not by the server's code.
 */
import { connect, type Socket } from 'node:net';

export interface Frame {
  readonly clientId: number;
  readonly op: number;
  readonly dev: number;
  readonly code: number;
}

export function header(f: Frame): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(f.clientId, 0);
  b.writeUInt8(f.op, 2);
  b.writeUInt8(f.dev, 3);
  b.writeInt32LE(f.code, 4);
  return b;
}

export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n), 0);
  return b;
}

export class BinaryConversation {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Connects and, unless `ascii`, switches to binary (expects iiod's `0\n`). */
  static async open(port: number, ascii = false): Promise<BinaryConversation> {
    const s = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', reject);
    });
    const c = new BinaryConversation(s);
    if (!ascii) {
      s.write('BINARY\r\n');
      const ok = await c.bytes(2, 5000);
      if (ok.toString('latin1') !== '0\n')
        throw new Error(`BINARY answered ${ok.toString('latin1')}`);
    }
    return c;
  }

  send(...parts: Buffer[]): void {
    this.socket.write(Buffer.concat(parts));
  }

  /** Exactly n bytes, or throws after `ms` (or when the server hangs up first). */
  async bytes(n: number, ms = 10000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (this.buf.length < n) {
      if (this.closed) throw new Error(`connection closed after ${this.buf.length} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.buf.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** The next response frame: its header fields, and `withData` bytes of payload when code > 0. */
  async response(
    withData = false,
    ms = 10000,
  ): Promise<{ clientId: number; op: number; code: number; data: Buffer }> {
    const h = await this.bytes(8, ms);
    const code = h.readInt32LE(4);
    const data = withData && code > 0 ? await this.bytes(code, ms) : Buffer.alloc(0);
    return { clientId: h.readUInt16LE(0), op: h.readUInt8(2), code, data };
  }

  /** Resolves true once the server has closed the connection (false after `ms`). */
  async closedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}
