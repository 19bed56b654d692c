import { hostname } from 'node:os';
import { createServer, type Server, type Socket } from 'node:net';
import { IioError } from '../errors';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import { AllowList, normalizeAddress } from './allow';
import { Session, type SessionHost } from './session';
import { InputHub, type StreamClientStats, type StreamSettings } from './streams';

/** iiod's TCP port. */
export const IIOD_PORT = 30431;

/** How serveContext() listens and streams. */
export interface ServeOptions {
  /** TCP port; 0 picks a free one (see `handle.port`). Default 30431, iiod's. */
  readonly port?: number;
  /**
   * Address to listen on. Default 127.0.0.1 (loopback only); `::` (all interfaces) when
   * an allow-list is given.
   */
  readonly bind?: string;
  /** Non-loopback peers allowed to connect (CIDR or addresses); loopback always is. */
  readonly allow?: readonly string[];
  /**
   * Announce the server on DNS-SD as libiio's `_iio._tcp` service (so `iio_info -S ip`
   * and `ip:` discovery find it), optionally with an instance name, an interface and an
   * mDNS port (tests).
   */
  readonly advertise?:
    boolean | { readonly name?: string; readonly interface?: string; readonly mdnsPort?: number };
  /**
   * Send each client only the channels it opened (default, as `iiod -D`); false sends
   * every reader the whole scan of all channels open on the device, with that mask.
   */
  readonly demux?: boolean;
  /** Bytes a slow reader may have queued before its oldest blocks are dropped (default 4 MiB). */
  readonly queueBytes?: number;
  /** Longest block when the device's rate is known, in seconds of data (default 0.25). */
  readonly maxBlockSeconds?: number;
  /** Connections served at once (default 64); more are refused. */
  readonly maxClients?: number;
  /** Receives one line per notable event (refused peers, errors). */
  readonly log?: (message: string) => void;
}

/** One connected client. */
export interface ServerClientStats {
  readonly peer: string;
  readonly streams: readonly StreamClientStats[];
}

/** What a running server has done. */
export interface ServerStats {
  /** Clients connected now. */
  readonly connections: number;
  readonly accepted: number;
  /** Connections refused by the allow-list or the client limit. */
  readonly refused: number;
  readonly clients: readonly ServerClientStats[];
  /** Device streams open now. */
  readonly streams: ReadonlyArray<{
    readonly device: string;
    readonly readers: number;
    readonly blocksRead: number;
  }>;
  /** Scans dropped for slow readers since the server started. */
  readonly droppedScans: number;
}

/** A running server (from serveContext). */
export interface ServerHandle {
  /** The port it listens on. */
  readonly port: number;
  /** The address it is bound to. */
  readonly address: string;
  /** The URI a libiio client uses for it (`ip:127.0.0.1:30431`). */
  readonly uri: string;
  stats(): ServerStats;
  /** Stops listening and disconnects every client; the context stays open. */
  close(): Promise<void>;
}

/** A stopper for whatever announces the server (DNS-SD). */
type Advertisement = { stop(): Promise<void> };

class IiodServer implements ServerHandle, SessionHost {
  readonly settings: StreamSettings;
  readonly writers = new Map<Device, object>();
  readonly bufferCounts = new Map<Device, number>();
  private readonly hubs = new Map<Device, InputHub>();
  private readonly sessions = new Set<Session>();
  private accepted = 0;
  private refused = 0;
  private droppedBefore = 0;
  private advertisement: Advertisement | null = null;
  private closed = false;
  port = 0;
  address = '';

  constructor(
    readonly ctx: Context,
    private readonly server: Server,
    private readonly allow: AllowList,
    private readonly options: ServeOptions,
  ) {
    const blocks = this.bufferCounts;
    this.settings = {
      demux: options.demux ?? true,
      queueBytes: options.queueBytes ?? 4 * 1024 * 1024,
      maxBlockSeconds: options.maxBlockSeconds ?? 0.25,
      blocksFor: (d) => blocks.get(d),
    };
    server.on('connection', (s) => this.accept(s));
  }

  get uri(): string {
    const host = this.address.includes(':') ? `[${this.address}]` : this.address;
    return `ip:${host}:${this.port}`;
  }

  log(message: string): void {
    this.options.log?.(message);
  }

  hubFor(device: Device): InputHub {
    let h = this.hubs.get(device);
    if (!h) {
      h = new InputHub(device, this.settings);
      this.hubs.set(device, h);
    }
    return h;
  }

  private accept(socket: Socket): void {
    const peer = `${normalizeAddress(socket.remoteAddress ?? '?')}:${socket.remotePort ?? 0}`;
    socket.on('error', () => undefined); // reported through the reader; never fatal
    if (this.closed || !this.allow.allows(socket.remoteAddress)) {
      this.refused++;
      this.log(`refused ${peer}: not in the allow-list`);
      socket.destroy();
      return;
    }
    if (this.sessions.size >= (this.options.maxClients ?? 64)) {
      this.refused++;
      this.log(`refused ${peer}: too many clients`);
      socket.destroy();
      return;
    }
    this.accepted++;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10000);
    const session = new Session(this, socket, peer);
    this.sessions.add(session);
    session
      .run()
      .catch((err: unknown) => this.log(`${peer}: ${(err as Error).message}`))
      .finally(() => {
        for (const c of session.inputClients) this.droppedBefore += c.droppedScans;
        this.sessions.delete(session);
      });
  }

  stats(): ServerStats {
    const clients = [...this.sessions].map((s) => ({
      peer: s.peer,
      streams: s.inputClients.map((c) => c.stats),
    }));
    const live = clients.reduce((n, c) => n + c.streams.reduce((m, s) => m + s.droppedScans, 0), 0);
    return {
      connections: this.sessions.size,
      accepted: this.accepted,
      refused: this.refused,
      clients,
      streams: [...this.hubs.values()]
        .filter((h) => h.isStreaming)
        .map((h) => ({ device: h.device.id, readers: h.clients.size, blocksRead: h.blocksRead })),
      droppedScans: this.droppedBefore + live,
    };
  }

  /** @internal */
  setAdvertisement(a: Advertisement): void {
    this.advertisement = a;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopping = new Promise<void>((r) => this.server.close(() => r()));
    await this.advertisement?.stop().catch(() => undefined);
    await Promise.all([...this.sessions].map((s) => s.end()));
    await stopping;
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, exclusive: true });
  });
}

/**
 * Serves a context over libiio 0.2x's iiod protocol (ASCII), so libiio's own clients —
 * iio_info, iio_attr, iio_readdev, iio_writedev, IIO Oscilloscope, pyadi-iio — can use
 * it. Works over any context (local:, emu:, ip:, ...) through the model API only, so a
 * context a Node-RED flow owns can be shared while the flow uses it.
 *
 * Several clients can read one device at once: it streams the union of their channels
 * and each gets its own (or the whole scan, with `demux: false`); a slow client loses
 * its oldest blocks (counted in `stats()`) without holding up the others.
 *
 * @throws IioError EADDRINUSE when the port is taken, EINVAL for a bad allow entry.
 */
export async function serveContext(
  ctx: Context,
  options: ServeOptions = {},
): Promise<ServerHandle> {
  const allow = new AllowList(options.allow ?? []);
  const port = options.port ?? IIOD_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new IioError('EINVAL', `bad port ${port}: expected 0..65535`);
  }
  const server = createServer({ noDelay: true, keepAlive: true });
  const handle = new IiodServer(ctx, server, allow, options);
  const binds = options.bind
    ? [options.bind]
    : allow.entries.length
      ? ['::', '0.0.0.0']
      : ['127.0.0.1'];
  let lastError: unknown;
  for (const host of binds) {
    try {
      await listen(server, port, host);
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') break;
    }
  }
  if (lastError !== undefined) {
    const e = IioError.wrap(lastError, { op: 'listen' });
    if (e.code === 'EADDRINUSE') {
      throw new IioError('EADDRINUSE', `port ${port} is already in use (is iiod running?)`, {
        op: 'listen',
      });
    }
    throw e;
  }
  const addr = server.address();
  if (addr && typeof addr === 'object') {
    handle.port = addr.port;
    handle.address = addr.address;
  }
  if (options.advertise) {
    // Loaded only when asked: it opens an mDNS socket.
    const { advertise } = require('../discovery/dnssd') as typeof import('../discovery/dnssd');
    const a = typeof options.advertise === 'object' ? options.advertise : {};
    // A server bound to one address is announced with that address only.
    const specific = !['::', '0.0.0.0', '127.0.0.1', '::1'].includes(handle.address);
    try {
      handle.setAdvertisement(
        await advertise({
          port: handle.port,
          name: a.name ?? `iiokit on ${hostname()}`,
          interface: a.interface,
          mdnsPort: a.mdnsPort,
          ...(specific ? { addresses: [handle.address] } : {}),
        }),
      );
    } catch (err) {
      await handle.close();
      throw IioError.wrap(err, { op: 'advertise' });
    }
  }
  return handle;
}
