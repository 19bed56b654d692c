import * as zlib from 'node:zlib';
import { IioError, type IioErrorContext } from '../../errors';
import { decodeValue, ProtocolError } from '../../iiod-protocol/wire';
import type { ContextInfo, DeviceInfo } from '../../model/info';
import type {
  AttrRef,
  Backend,
  BackendBuffer,
  BackendOpenOptions,
  BufferOpenOptions,
} from '../../model/backend';
import { tracer } from '../../util/trace';
import * as ascii from './ascii';
import { AsciiDialect } from './ascii';
import { BinaryDialect, negotiate } from './binary';
import { RequestChannel } from './channel';
import { Connection, withDeadline } from './connection';
import { buildRemoteContext, sameDevices } from './context-info';
import type { AttrFamily, DialectHost, IiodDialect } from './dialect';
import { Reconnector, type Session } from './reconnector';
import { SharedInputStream, SharedOutputStream } from './shared-stream';
import { IiodInputStream, IiodOutputStream } from './stream';
import type { StreamHost } from './stream-base';
import type { Link } from './transport';

const trace = tracer('iiod');

/** libiio's network default (NETWORK_TIMEOUT_MS / DEFAULT_TIMEOUT_MS). */
export const DEFAULT_TIMEOUT_MS = 5000;

/** Options of `ip:` contexts (passed through createContext). */
export interface IiodOptions extends BackendOpenOptions {
  /** Reconnect when the server goes away (default true). */
  readonly reconnect?: boolean;
  /**
   * `auto` (default): libiio 1.0's binary protocol on the control connection when the
   * server is 1.x and passes the NOP probe, else the 0.x ASCII protocol. Buffers always
   * use ASCII connections (every iiod speaks it).
   */
  readonly protocol?: 'auto' | 'ascii' | 'binary';
}

/** zstd where Node has it (22.15+); Node 20 has not, and then we ask for plain XML. */
type ZstdDecompress = (b: Buffer) => Buffer;
const zstdDecompress = (zlib as unknown as { zstdDecompressSync?: ZstdDecompress })
  .zstdDecompressSync;

/** What a handshake yields: the description, the connection, the dialect it speaks. */
interface Handshake {
  readonly info: ContextInfo;
  readonly conn: Connection;
  readonly dialect: IiodDialect;
}

/**
 * A context served by iiod (libiio's network backend and more): one control connection
 * for the context's requests, one connection per open buffer, a deadline on every
 * request, and reconnection with backoff when the server goes away. The handshake picks
 * the control connection's dialect (ascii.ts or binary.ts); requests go through it.
 */
export class IiodBackend implements Backend, StreamHost {
  /** `network`, `usb` or `serial`: the link's backend name, as libiio prints it. */
  readonly name: string;
  info!: ContextInfo;
  readonly reconnector: Reconnector;
  private timeout: number;
  private readonly control: RequestChannel;
  private dialect: IiodDialect;
  private readonly streams = new Set<BackendBuffer>();
  /** Whether the server was told a timeout (it then gets it again on every new connection). */
  private remoteTimeoutSent = false;
  /** The description after a reconnect (buffers that reopen use it). */
  private latest?: ContextInfo;

  private constructor(
    readonly uri: string,
    readonly link: Link,
    private readonly options: IiodOptions,
  ) {
    this.name = link.backendName ?? 'network';
    this.timeout = options.timeoutMs ?? link.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.reconnector = new Reconnector({
      enabled: options.reconnect !== false,
      uri,
      where: link.description,
      onDown: (error) => {
        trace(
          `${link.description}: lost (${error.message}), ${options.reconnect !== false ? 'reconnecting' : 'not reconnecting'}`,
        );
        this.control.drop(error);
        this.control.failPending(this.reconnector.notConnected());
      },
      attempt: () => this.reattach(),
      onStatus: (ev) => {
        if (ev.type === 'reconnected') {
          trace(`${link.description}: reconnected${ev.changed ? ', the context changed' : ''}`);
        }
        options.onStatus?.(ev);
      },
    });
    this.control = new RequestChannel({
      where: link.description,
      open: (t) => this.openControl(t),
      timeoutMs: () => this.timeout,
      unavailable: () => (this.reconnector.isDown ? this.reconnector.notConnected() : undefined),
      onLost: (e) => this.lost(e),
    });
    this.dialect = new AsciiDialect(this.dialectHost());
  }

  /** Connects, reads the context and sets the server's timeout. */
  static async open(uri: string, link: Link, options: IiodOptions): Promise<IiodBackend> {
    const b = new IiodBackend(uri, link, options);
    let hs: Handshake;
    try {
      hs = await b.handshake();
    } catch (err) {
      await link.close?.().catch(() => undefined);
      throw err;
    }
    b.info = hs.info;
    b.dialect = hs.dialect;
    b.control.adopt(hs.conn);
    // libiio tells the server half its own timeout (calculate_remote_timeout).
    await b.sendRemoteTimeout().catch(() => undefined);
    return b;
  }

  /** The protocol of the control connection. */
  get protocol(): 'ascii' | 'binary' {
    return this.dialect.name;
  }

  private dialectHost(): DialectHost {
    return {
      uri: this.uri,
      run: (op, ctx, body) => this.control.run(op, ctx, body),
      devices: () => this.info.devices,
    };
  }

  /** A new control connection, set up like the first one. */
  private async openControl(t: number): Promise<Connection> {
    const c = new Connection(await this.link.connect('control', t));
    try {
      await this.dialect.setUp(c, t);
      if (this.remoteTimeoutSent) {
        const r = await withDeadline(c, t, this.uri, this.dialect.sendTimeout(c, this.timeout));
        if (r < 0) throw IioError.fromErrno(r, { op: 'set timeout' });
      }
    } catch (err) {
      c.kill(IioError.wrap(err));
      throw err;
    }
    return c;
  }

  /**
   * The dialect for a fresh connection (XML already read): binary when the server is 1.x
   * (or when asked) and passes the NOP probe, else ASCII. Resolves with the connection to
   * keep (a new ASCII one if the attempt spoiled it).
   */
  private async pickDialect(
    conn: Connection,
    ver: ContextInfo['version'],
  ): Promise<{ conn: Connection; dialect: IiodDialect }> {
    const want = this.options.protocol ?? 'auto';
    const ascii = { conn, dialect: new AsciiDialect(this.dialectHost()) };
    if (want === 'ascii' || (want === 'auto' && ver.major < 1)) return ascii;
    const t = this.timeout || DEFAULT_TIMEOUT_MS;
    const r = await negotiate(
      conn,
      want === 'binary',
      t,
      this.uri,
      async () => new Connection(await this.link.connect('control', t)),
    );
    return r.binary
      ? { conn: r.conn, dialect: new BinaryDialect(this.dialectHost()) }
      : { ...ascii, conn: r.conn };
  }

  /** VERSION and PRINT on a new connection, each under the timeout; then the dialect. */
  private async handshake(): Promise<Handshake> {
    const t = this.timeout;
    const conn = new Connection(await this.link.connect('control', t));
    try {
      const ver = await withDeadline(conn, t, this.uri, ascii.version(conn));
      let xml: Buffer | undefined;
      if (zstdDecompress) {
        const z = await withDeadline(conn, t, this.uri, ascii.zprint(conn));
        if (typeof z !== 'number') {
          try {
            xml = zstdDecompress(z);
          } catch (err) {
            throw new ProtocolError(`ZPRINT data do not decompress: ${(err as Error).message}`);
          }
        }
      }
      if (!xml) {
        const p = await withDeadline(conn, t, this.uri, ascii.print(conn));
        if (typeof p === 'number') throw IioError.fromErrno(p, { op: 'read context XML' });
        xml = p;
      }
      const text = decodeValue(xml);
      const info = buildRemoteContext(
        text,
        this.link,
        ver,
        `XML from iiod at ${this.link.description}`,
      );
      const picked = await this.pickDialect(conn, ver);
      trace(
        `${this.link.description}: iiod ${ver.major}.${ver.minor} (${ver.git}), ${info.devices.length} devices, ${picked.dialect.name} protocol`,
      );
      return { info, ...picked };
    } catch (err) {
      const e = IioError.wrap(err, { uri: this.uri, op: 'create context' });
      conn.kill(e);
      throw e;
    }
  }

  /** A reconnect attempt: a new handshake, to be adopted by the reconnector. */
  private async reattach(): Promise<Session> {
    const { info, conn, dialect } = await this.handshake();
    return {
      changed: !sameDevices(this.info.devices, info.devices),
      adopt: () => {
        // Devices keep their description objects (the model holds them); a changed
        // context is reported and its new description kept for buffers that reopen.
        this.latest = info;
        this.dialect = dialect;
        this.control.adopt(conn);
      },
      abandon: () => conn.kill(new IioError('EBADF', 'the context is closed')),
      settle: () => (this.remoteTimeoutSent ? this.sendRemoteTimeout() : Promise.resolve()),
    };
  }

  private async sendRemoteTimeout(): Promise<void> {
    const r = await this.control.run('set timeout', { uri: this.uri }, (c) =>
      this.dialect.sendTimeout(c, this.timeout),
    );
    this.remoteTimeoutSent = true;
    if (r < 0) throw IioError.fromErrno(r, { uri: this.uri, op: 'set timeout' });
  }

  /** A connection ended without us asking (or could not be opened): the server may be gone. */
  lost(error: IioError): void {
    this.reconnector.lost(error);
  }

  whenConnected(): Promise<void> {
    return this.reconnector.whenConnected();
  }

  currentDevice(id: string): DeviceInfo | undefined {
    const info = this.latest ?? this.info;
    return info.devices.find((d) => d.id === id);
  }

  timeoutMs(): number {
    return this.timeout;
  }

  runShared<T>(op: string, ctx: IioErrorContext, body: (c: Connection) => Promise<T>): Promise<T> {
    return this.control.run(op, ctx, body);
  }

  async connectStream(): Promise<Connection> {
    if (this.reconnector.isClosed) throw new IioError('EBADF', 'the context is closed');
    if (!this.link.multiConnection) {
      // A UART carries one connection: buffers would have to share the control one.
      throw new IioError(
        'ENOSYS',
        `buffers over ${this.link.description} need a second connection`,
        { uri: this.uri },
      );
    }
    return new Connection(await this.link.connect('stream', this.timeout));
  }

  // ---- Backend: requests go through the dialect ----

  async readAttr(ref: AttrRef): Promise<string> {
    if (ref.kind === 'context') {
      const found = this.info.attrs.find(([k]) => k === ref.attr.name);
      if (found) return found[1];
      throw new IioError('ENOENT', `no context attribute "${ref.attr.name}"`, { uri: this.uri });
    }
    return this.dialect.readAttr(ref);
  }

  async writeAttr(ref: AttrRef, value: string): Promise<number> {
    if (ref.kind === 'context') {
      throw new IioError('EPERM', 'context attributes are read-only', {
        uri: this.uri,
        attr: ref.attr.name,
      });
    }
    trace(`write ${ref.device?.id ?? ''} ${ref.channel?.id ?? ''} ${ref.attr.name}`);
    return this.dialect.writeAttr(ref, value);
  }

  /**
   * Reads every attribute of one kind (iiod 0.x's read-all in one request). Values come
   * back in the order of the description's attribute list; failed ones as IioErrors.
   */
  readAllAttrs(
    device: DeviceInfo,
    kind: AttrFamily,
    channel?: DeviceInfo['channels'][number],
  ): Promise<Array<string | IioError>> {
    return this.dialect.readAllAttrs(device, kind, channel);
  }

  getTrigger(device: DeviceInfo): Promise<string | null> {
    return this.dialect.getTrigger(device);
  }

  setTrigger(device: DeviceInfo, trigger: DeviceInfo | null): Promise<void> {
    return this.dialect.setTrigger(device, trigger);
  }

  /** A register: REG_READ over the binary protocol, else debugfs `direct_reg_access`. */
  readRegister(device: DeviceInfo, address: number): Promise<number> {
    return this.dialect.readRegister(device, address);
  }

  writeRegister(device: DeviceInfo, address: number, value: number): Promise<void> {
    return this.dialect.writeRegister(device, address, value);
  }

  /** The number of kernel buffers iiod uses for the device (0.x: `SET dev BUFFERS_COUNT n`). */
  setKernelBuffersCount(device: DeviceInfo, count: number): Promise<void> {
    return this.dialect.setKernelBuffersCount(device, count);
  }

  async openBuffer(device: DeviceInfo, options: BufferOpenOptions): Promise<BackendBuffer> {
    if (this.reconnector.isClosed)
      throw new IioError('EBADF', 'the context is closed', { uri: this.uri });
    if (this.reconnector.isDown) throw this.reconnector.notConnected();
    if ((options.bufferIndex ?? 0) !== 0) {
      throw new IioError('ENOSYS', "iiod's ASCII protocol only reaches buffer 0", {
        uri: this.uri,
        device: device.id,
      });
    }
    if (options.blocks !== undefined && (!Number.isInteger(options.blocks) || options.blocks < 1)) {
      throw new IioError(
        'EINVAL',
        `kernel buffers count must be a positive integer, not ${options.blocks}`,
      );
    }
    // A UART carries one connection: buffers then take turns on the control one.
    const shared = !this.link.multiConnection;
    const s = options.isOutput
      ? shared
        ? new SharedOutputStream(this, device, options)
        : new IiodOutputStream(this, device, options)
      : shared
        ? new SharedInputStream(this, device, options)
        : new IiodInputStream(this, device, options);
    await s.start();
    trace(
      `${device.id}: ${options.isOutput ? 'output' : 'input'} buffer of ${options.samples} samples, mask ${s.mask.toHex()}${shared ? ', on the shared connection' : ''}`,
    );
    this.streams.add(s);
    const close = s.close.bind(s);
    s.close = async () => {
      this.streams.delete(s);
      await close();
    };
    return s;
  }

  async setTimeout(timeoutMs: number): Promise<void> {
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0) {
      throw new IioError(
        'EINVAL',
        `timeout must be a non-negative integer of ms, not ${timeoutMs}`,
      );
    }
    this.timeout = timeoutMs;
    await this.sendRemoteTimeout();
  }

  async close(): Promise<void> {
    if (this.reconnector.isClosed) return;
    this.reconnector.close();
    await Promise.all([...this.streams].map((s) => s.close().catch(() => undefined)));
    await this.control.close((c) => this.dialect.goodbye(c));
    await this.reconnector.finished();
    await this.link.close?.().catch(() => undefined);
  }
}
