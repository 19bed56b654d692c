import { hostname } from 'node:os';
import { createServer, type Server, type Socket } from 'node:net';
import { IioError } from '../errors';
import { IIOD_PORT } from '../iiod-protocol/wire';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import { AllowList, normalizeAddress } from './allow';
import { DEFAULT_LIMITS, MemoryBudget, type ServerLimits } from './limits';
import { Session, type SessionHost } from './session';
import { InputHub, type StreamClientStats, type StreamSettings } from './streams';

export { IIOD_PORT };
export { DEFAULT_LIMITS, type ServerLimits } from './limits';

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
  /**
   * Connections served at once (default 64). When full, the connection idle the longest
   * (no command running, nothing of one received, no output buffer) is closed to make
   * room; with none idle, the new one is refused.
   */
  readonly maxClients?: number;
  /** Largest buffer one OPEN may ask for, in bytes (default 64 MiB); more is -ENOMEM. */
  readonly maxBufferBytes?: number;
  /** What one connection's buffers may reserve in all (default 256 MiB); past it -ENOMEM. */
  readonly connectionBytes?: number;
  /** What every buffer and device stream may reserve in all (default 512 MiB); past it -ENOMEM. */
  readonly memoryBytes?: number;
  /**
   * A command line must be whole within this of its first byte, a payload must progress
   * and a reply must be read at least this often, or the connection is closed (default
   * 30 s; 0: never).
   */
  readonly commandTimeoutMs?: number;
  /** A connection with nothing open and no command for this long is closed (default 0: never). */
  readonly idleTimeoutMs?: number;
  /** Receives one line per notable event (refused peers, errors). */
  readonly log?: (message: string) => void;
}

/** One connected client. */
export interface ServerClientStats {
  readonly peer: string;
  /** The protocol it speaks: libiio 0.x's ASCII, or 1.0's binary after `BINARY`. */
  readonly protocol: 'ascii' | 'binary';
  readonly streams: readonly StreamClientStats[];
  /** Bytes this connection's buffers have reserved. */
  readonly reservedBytes: number;
  /** Waiting for a command with nothing open (the server may close it to make room). */
  readonly idle: boolean;
}

/** What a running server has done. */
export interface ServerStats {
  /** Clients connected now. */
  readonly connections: number;
  readonly accepted: number;
  /** Connections refused by the allow-list or the client limit. */
  readonly refused: number;
  /** Connections that switched to the binary protocol (`BINARY`) since the server started. */
  readonly binary: number;
  /** Idle connections closed to make room for a new one. */
  readonly evicted: number;
  /** Connections closed for a stalled command or reply, or for being idle too long. */
  readonly timedOut: number;
  /** Bytes reserved by open buffers and device streams, and the limit. */
  readonly memory: { readonly reserved: number; readonly limit: number };
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
  readonly limits: ServerLimits;
  readonly memory: MemoryBudget;
  readonly writers = new Map<Device, object>();
  readonly bufferCounts = new Map<Device, number>();
  private readonly hubs = new Map<Device, InputHub>();
  private readonly sessions = new Set<Session>();
  private accepted = 0;
  private refused = 0;
  private binary = 0;
  private evicted = 0;
  private timedOut = 0;
  private idleTimer: NodeJS.Timeout | undefined;
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
    this.limits = resolveLimits(options);
    this.memory = new MemoryBudget(this.limits.memoryBytes);
    this.settings = {
      demux: options.demux ?? true,
      queueBytes: this.limits.queueBytes,
      maxBlockSeconds: options.maxBlockSeconds ?? 0.25,
      blocksFor: (d) => blocks.get(d),
      budget: this.memory,
    };
    server.on('connection', (s) => this.accept(s));
    const idleMs = this.limits.idleTimeoutMs;
    if (idleMs > 0) {
      this.idleTimer = setInterval(() => this.closeIdle(idleMs), Math.max(100, idleMs / 4));
      this.idleTimer.unref();
    }
  }

  /** Closes the connections idle (nothing open, no command) for longer than `ms`. */
  private closeIdle(ms: number): void {
    const now = Date.now();
    for (const s of this.sessions) {
      if (s.idle && now - s.lastActivity > ms) {
        this.log(`${s.peer}: idle for ${ms} ms: closed`);
        void s.evict('idle');
      }
    }
  }

  /**
   * Makes room for a new client when the server is full: the connection idle the longest
   * goes — one that never sent a command first, then one with nothing open, else one whose
   * readers sit unread. Connections running a command or holding an output buffer are never
   * taken. False when none can go.
   */
  private makeRoom(): boolean {
    let best: Session | undefined;
    const rank = (s: Session): [number, number] => [
      s.idle ? (s.spoken ? 1 : 0) : 2,
      s.lastActivity,
    ];
    for (const s of this.sessions) {
      if (!s.evictable) continue;
      if (!best) best = s;
      else {
        const [a, at] = rank(s);
        const [b, bt] = rank(best);
        if (a < b || (a === b && at < bt)) best = s;
      }
    }
    if (!best) return false;
    this.evicted++;
    this.log(`${best.peer}: closed to make room for a new client (the longest idle)`);
    this.sessions.delete(best);
    void best.evict('evicted');
    return true;
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

  switchedToBinary(): void {
    this.binary++;
  }

  bufferOpenElsewhere(dev: Device, index: number, asker: object): boolean {
    for (const s of this.sessions) if (s !== asker && s.hasBinaryBuffer(dev, index)) return true;
    return false;
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
    if (this.sessions.size >= this.limits.maxClients && !this.makeRoom()) {
      this.refused++;
      this.log(`refused ${peer}: too many clients (${this.limits.maxClients}), none idle`);
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
        this.droppedBefore += session.droppedScans;
        if (session.endedBy === 'stalled' || session.endedBy === 'idle') this.timedOut++;
        this.sessions.delete(session);
      });
  }

  stats(): ServerStats {
    const clients = [...this.sessions].map((s) => ({
      peer: s.peer,
      protocol: s.protocol,
      streams: s.inputClients.map((c) => c.stats),
      reservedBytes: s.reservedBytes,
      idle: s.idle,
    }));
    let live = 0;
    for (const s of this.sessions) live += s.droppedScans;
    return {
      connections: this.sessions.size,
      accepted: this.accepted,
      refused: this.refused,
      binary: this.binary,
      evicted: this.evicted,
      timedOut: this.timedOut,
      memory: { reserved: this.memory.reserved, limit: this.memory.limit },
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
    if (this.idleTimer) clearInterval(this.idleTimer);
    const stopping = new Promise<void>((r) => this.server.close(() => r()));
    await this.advertisement?.stop().catch(() => undefined);
    await Promise.all([...this.sessions].map((s) => s.end()));
    await stopping;
  }
}

/** ServeOptions' bounds with their defaults, checked (EINVAL names a bad one). */
function resolveLimits(o: ServeOptions): ServerLimits {
  const limits: ServerLimits = {
    maxClients: o.maxClients ?? DEFAULT_LIMITS.maxClients,
    queueBytes: o.queueBytes ?? DEFAULT_LIMITS.queueBytes,
    maxBufferBytes: o.maxBufferBytes ?? DEFAULT_LIMITS.maxBufferBytes,
    connectionBytes: o.connectionBytes ?? DEFAULT_LIMITS.connectionBytes,
    memoryBytes: o.memoryBytes ?? DEFAULT_LIMITS.memoryBytes,
    commandTimeoutMs: o.commandTimeoutMs ?? DEFAULT_LIMITS.commandTimeoutMs,
    idleTimeoutMs: o.idleTimeoutMs ?? DEFAULT_LIMITS.idleTimeoutMs,
  };
  for (const [k, v] of Object.entries(limits)) {
    const positive = k === 'maxClients' || k.endsWith('Bytes');
    if (!Number.isSafeInteger(v) || v < (positive ? 1 : 0)) {
      throw new IioError(
        'EINVAL',
        `bad ${k} ${v}: expected an integer ${positive ? '> 0' : '>= 0'}`,
      );
    }
  }
  return limits;
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
  // allowHalfOpen: a client that sends its commands and shuts its side down still gets
  // the replies (the session ends the connection after the last one).
  const server = createServer({ noDelay: true, keepAlive: true, allowHalfOpen: true });
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
