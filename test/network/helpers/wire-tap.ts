/**
 * A TCP proxy between a client and an iiod-compatible server that keeps what went each
 * way, per connection: the evidence, independent of the server's own code, that a
 * connection switched to libiio 1.0's binary protocol (the client said `BINARY`, the
 * server answered `0`, and what followed from the server were binary response frames).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TappedConnection {
  /** Bytes the client sent. */
  readonly fromClient: Buffer;
  /** Bytes the server sent. */
  readonly fromServer: Buffer;
  readonly closed: boolean;
}

export interface WireTap {
  readonly port: number;
  /** `ip:127.0.0.1:<tap port>`: what the client is pointed at. */
  readonly uri: string;
  /** Every connection so far, in the order they were opened. */
  connections(): TappedConnection[];
  /** Forgets the connections seen so far. */
  reset(): void;
  close(): Promise<void>;
}

class Tapped implements TappedConnection {
  private readonly c: Buffer[] = [];
  private readonly s: Buffer[] = [];
  closed = false;
  get fromClient(): Buffer {
    return Buffer.concat(this.c);
  }
  get fromServer(): Buffer {
    return Buffer.concat(this.s);
  }
  client(d: Buffer): void {
    // Only the start matters for the evidence; bulk data is not kept.
    if (this.size(this.c) < 65536) this.c.push(d);
  }
  server(d: Buffer): void {
    if (this.size(this.s) < 65536) this.s.push(d);
  }
  private size(l: Buffer[]): number {
    return l.reduce((n, b) => n + b.length, 0);
  }
}

/** Starts a proxy on a free loopback port forwarding to `port` on 127.0.0.1. */
export async function startWireTap(port: number): Promise<WireTap> {
  let seen: Tapped[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const t = new Tapped();
    seen.push(t);
    const upstream = connect({ port, host: '127.0.0.1' });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (d: Buffer) => {
      t.client(d);
      if (!upstream.write(d)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (d: Buffer) => {
      t.server(d);
      if (!client.write(d)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    const end = (): void => {
      t.closed = true;
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const a = server.address();
  const tapPort = typeof a === 'object' && a ? a.port : 0;
  return {
    port: tapPort,
    uri: `ip:127.0.0.1:${tapPort}`,
    connections: () => [...seen],
    reset: () => {
      seen = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Why a connection is not proof of the binary protocol, or null when it is: the client's
 * first line is `BINARY`, the server's first reply `0\n`, and the server's next 8 bytes a
 * response frame header (op 0) on client id 0 — the answer to a binary command.
 */
export function notBinary(c: TappedConnection): string | null {
  const client = c.fromClient;
  const server = c.fromServer;
  if (!client.subarray(0, 8).equals(Buffer.from('BINARY\r\n'))) {
    return `the client began with ${JSON.stringify(client.subarray(0, 16).toString('latin1'))}`;
  }
  if (!server.subarray(0, 2).equals(Buffer.from('0\n'))) {
    return `the server answered BINARY with ${JSON.stringify(server.subarray(0, 16).toString('latin1'))}`;
  }
  if (server.length < 10) return 'the server sent nothing after accepting BINARY';
  const op = server.readUInt8(2 + 2);
  const clientId = server.readUInt16LE(2);
  if (op !== 0 || clientId !== 0) {
    return `after BINARY the server sent ${server.subarray(2, 10).toString('hex')}, not a response frame`;
  }
  return null;
}

/** Asserts that there were connections and every one of them spoke binary. */
export function everyConnectionBinary(tap: WireTap): string | null {
  const all = tap.connections();
  if (!all.length) return 'no connection went through the tap';
  for (const [i, c] of all.entries()) {
    const why = notBinary(c);
    if (why) return `connection ${i + 1} of ${all.length}: ${why}`;
  }
  return null;
}
