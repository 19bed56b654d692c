import { lookup } from 'node:dns/promises';
import { connect, isIP, type Socket } from 'node:net';
import { IioError } from '../../errors';
import { IIOD_PORT } from '../../iiod-protocol/wire';
import { tracer } from '../../util/trace';
import type { Link, Transport, TransportSink } from './transport';

export { IIOD_PORT };

const trace = tracer('ip');

/** What `ip:` URIs name. */
export interface IpAddress {
  /** Host name or address, without brackets; '' asks for DNS-SD discovery. */
  readonly host: string;
  readonly port: number;
  /** True when the URI gave a port. */
  readonly explicitPort: boolean;
}

/**
 * Parses what follows `ip:` as libiio does: `host`, `host:port`, `v6addr` (several
 * colons, default port), `[v6addr]:port`; also `[v6addr]` alone. Empty means discover.
 */
export function parseIpAddress(rest: string, uri = `ip:${rest}`): IpAddress {
  const text = rest.trim();
  if (!text) return { host: '', port: IIOD_PORT, explicitPort: false };
  let host = text;
  let portText: string | undefined;
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw bad(uri, 'an IPv6 address opened with "[" needs a closing "]"');
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after.startsWith(':')) portText = after.slice(1);
    else if (after) throw bad(uri, `unexpected "${after}" after the IPv6 address`);
  } else if (first >= 0 && first === last) {
    host = text.slice(0, first);
    portText = text.slice(first + 1);
  }
  // several colons without brackets: an IPv6 address on the default port (libiio's rule)
  if (!host) throw bad(uri, 'the host is empty');
  if (/\s/.test(host)) throw bad(uri, `"${host}" is not a host name or address`);
  let port = IIOD_PORT;
  if (portText !== undefined) {
    // libiio reads the port with strtoul(.., 0): decimal, 0x hex or 0 octal
    const t = portText.trim();
    const v = /^0[xX][0-9a-fA-F]+$/.test(t)
      ? parseInt(t, 16)
      : /^0[0-7]*$/.test(t)
        ? parseInt(t, 8)
        : /^[1-9][0-9]*$/.test(t)
          ? parseInt(t, 10)
          : NaN;
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
      throw bad(uri, `"${portText}" is not a port number (0-65535)`);
    }
    port = v;
  }
  return { host, port, explicitPort: portText !== undefined };
}

function bad(uri: string, why: string): IioError {
  return new IioError(
    'EINVAL',
    `malformed ip: URI "${uri}": ${why} (use ip:host, ip:host:port, ip:[v6addr]:port or ip:)`,
  );
}

/** `host:port`, with brackets for IPv6. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Maps connect/resolve failures to libiio's errno (unknown host: ENOENT, as getaddrinfo does there). */
function connectError(err: unknown, where: string): IioError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') {
    return new IioError('ENOENT', `cannot resolve host ${where}`);
  }
  const e = IioError.wrap(err);
  return new IioError(
    e.code,
    `cannot connect to iiod at ${where}: ${e.detail}`,
    {},
    { cause: err },
  );
}

/** One TCP connection to iiod. */
export class TcpTransport implements Transport {
  private sink?: TransportSink;
  private ended = false;
  private pendingEnd?: { error?: Error };
  closed = false;

  constructor(
    private readonly socket: Socket,
    readonly description: string,
  ) {
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish());
    socket.on('end', () => this.finish());
  }

  /** Where the next read goes: the reader's payload buffer if it wants one, else ours. */
  private direct?: Buffer;

  static readInto(self: { target?: TcpTransport }, fallback: Buffer) {
    return (): Buffer => {
      const t = self.target;
      const d = t?.sink?.readTarget?.();
      if (t) t.direct = d;
      if (d) return d;
      const limit = t?.sink?.readLimit?.();
      return limit ? fallback.subarray(0, limit) : fallback;
    };
  }

  /** The socket's onread callback: forwards bytes without allocating. */
  static onRead(self: { target?: TcpTransport }) {
    return (n: number, buf: Buffer): boolean => {
      const t = self.target;
      if (!t?.sink || n <= 0) return true;
      if (t.direct && buf === t.direct) {
        t.direct = undefined;
        t.sink.filled?.(n);
      } else t.sink.data(buf.subarray(0, n), true);
      return true;
    };
  }

  attach(sink: TransportSink): void {
    this.sink = sink;
    if (this.pendingEnd) {
      const e = this.pendingEnd.error;
      this.pendingEnd = undefined;
      this.deliverEnd(e);
    }
  }

  private finish(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.closed = true;
    this.socket.destroy();
    if (this.sink) this.deliverEnd(error);
    else this.pendingEnd = { error };
  }

  private deliverEnd(error?: Error): void {
    this.sink?.end(error);
  }

  write(data: Uint8Array): void {
    if (this.closed) return;
    this.socket.write(data);
  }

  drain(): Promise<void> {
    if (this.closed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  close(): void {
    this.finish();
  }
}

/** Opens TCP connections to one iiod (`ip:` contexts). */
export class TcpLink implements Link {
  readonly multiConnection = true;
  private address?: string;

  constructor(
    /** What the URI named (host without brackets). */
    readonly host: string,
    readonly port: number,
    /** The host part as libiio keeps it for the `uri` attribute. */
    private readonly uriHost: string,
    /** Address to use instead of resolving `host` (from discovery). */
    fixedAddress?: string,
  ) {
    this.address = fixedAddress;
  }

  get description(): string {
    return formatHostPort(this.address ?? this.host, this.port);
  }

  get descriptionPrefix(): string {
    return this.address ?? this.host;
  }

  contextAttrs(): Array<readonly [string, string]> {
    return [
      ['ip,ip-addr', this.address ?? this.host],
      ['uri', `ip:${this.uriHost}`],
    ];
  }

  /** Resolves the host (each time: a DHCP lease may have moved it) to addresses to try in order. */
  private async resolve(): Promise<string[]> {
    if (isIP(this.host)) return [this.host];
    try {
      const found = await lookup(this.host, { all: true, verbatim: true });
      return found.map((a) => a.address);
    } catch (err) {
      throw connectError(err, formatHostPort(this.host, this.port));
    }
  }

  async connect(purpose: 'control' | 'stream', timeoutMs: number): Promise<Transport> {
    const addresses = this.address && isIP(this.host) ? [this.address] : await this.resolve();
    let lastError: IioError | undefined;
    for (const addr of addresses) {
      try {
        const t = await this.connectTo(addr, timeoutMs, purpose === 'stream' ? 1 << 20 : 64 << 10);
        this.address = addr;
        trace(`${purpose} connection to ${formatHostPort(addr, this.port)}`);
        return t;
      } catch (err) {
        lastError = err as IioError;
        trace(`${purpose} connection to ${formatHostPort(addr, this.port)}: ${lastError.message}`);
      }
    }
    throw lastError ?? new IioError('ENOENT', `no address for ${this.host}`);
  }

  private connectTo(addr: string, timeoutMs: number, readSize: number): Promise<Transport> {
    const where = formatHostPort(addr, this.port);
    // Streams read up to 1 MiB per call: fewer wake-ups at hundreds of MB/s.
    const readBuffer = Buffer.allocUnsafe(readSize);
    const holder: { target?: TcpTransport } = {};
    return new Promise<Transport>((resolve, reject) => {
      const socket: Socket = connect(
        {
          host: addr,
          port: this.port,
          onread: {
            buffer: TcpTransport.readInto(holder, readBuffer),
            callback: TcpTransport.onRead(holder),
          },
        },
        () => connected(),
      );
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: Error): void => {
        if (timer) clearTimeout(timer);
        socket.destroy();
        reject(connectError(err, where));
      };
      socket.once('error', fail);
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          const e = new IioError('ETIMEDOUT', '') as Error;
          (e as NodeJS.ErrnoException).code = 'ETIMEDOUT';
          fail(e);
        }, timeoutMs);
      }
      const connected = (): void => {
        if (timer) clearTimeout(timer);
        socket.off('error', fail);
        socket.setNoDelay(true);
        // iiod sets keepalive on its side only; ours notices a vanished peer on idle links.
        socket.setKeepAlive(true, 10000);
        const t = new TcpTransport(socket, `tcp ${where}`);
        holder.target = t;
        resolve(t);
      };
    });
  }
}
