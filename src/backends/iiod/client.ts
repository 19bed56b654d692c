import * as zlib from 'node:zlib';
import { IioError, type IioErrorContext } from '../../errors';
import type { ContextInfo, DeviceInfo } from '../../model/info';
import type {
  AttrRef,
  Backend,
  BackendBuffer,
  BackendOpenOptions,
  BackendStatusEvent,
  BufferOpenOptions,
} from '../../model/backend';
import * as ascii from './ascii';
import * as binary from './binary';
import { RequestChannel } from './channel';
import { Connection } from './connection';
import { buildRemoteContext, sameDevices } from './context-info';
import { ProtocolError } from './reader';
import { SharedInputStream, SharedOutputStream } from './shared-stream';
import { IiodInputStream, IiodOutputStream, withDeadline, type StreamHost } from './stream';
import type { Link } from './transport';

/** libiio's network default (NETWORK_TIMEOUT_MS / DEFAULT_TIMEOUT_MS). */
export const DEFAULT_TIMEOUT_MS = 5000;
/** Backoff between reconnect attempts: first at once, then doubling up to this. */
const MAX_BACKOFF_MS = 2000;
const FIRST_BACKOFF_MS = 100;

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

type State = 'connected' | 'down' | 'closed';

/**
 * A context served by iiod (libiio's network backend and more): one control connection
 * for the context's requests, one connection per open buffer, a deadline on every
 * request, and reconnection with backoff when the server goes away.
 */
export class IiodBackend implements Backend, StreamHost {
  /** `network`, `usb` or `serial`: the link's backend name, as libiio prints it. */
  readonly name: string;
  info!: ContextInfo;
  private timeout: number;
  private readonly control: RequestChannel;
  private state: State = 'connected';
  private downError?: IioError;
  private attempt = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnecting?: Promise<void>;
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly streams = new Set<BackendBuffer>();
  /** Whether the server was told a timeout (it then gets it again on every new connection). */
  private remoteTimeoutSent = false;
  /** The protocol of the control connection. */
  protocol: 'ascii' | 'binary' = 'ascii';
  readonly reconnects: boolean;

  private constructor(
    readonly uri: string,
    readonly link: Link,
    private readonly options: IiodOptions,
  ) {
    this.name = link.backendName ?? 'network';
    this.timeout = options.timeoutMs ?? link.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.reconnects = options.reconnect !== false;
    this.control = new RequestChannel({
      where: link.description,
      open: (t) => this.openControl(t),
      timeoutMs: () => this.timeout,
      unavailable: () => (this.state === 'down' ? this.notConnected() : undefined),
      onLost: (e) => this.lost(e),
    });
  }

  /** Connects, reads the context and sets the server's timeout. */
  static async open(uri: string, link: Link, options: IiodOptions): Promise<IiodBackend> {
    const b = new IiodBackend(uri, link, options);
    let hs: { info: ContextInfo; conn: Connection };
    try {
      hs = await b.handshake();
    } catch (err) {
      await link.close?.().catch(() => undefined);
      throw err;
    }
    const { info, conn } = hs;
    b.info = info;
    b.control.adopt(conn);
    // libiio tells the server half its own timeout (calculate_remote_timeout).
    await b.sendRemoteTimeout().catch(() => undefined);
    return b;
  }

  private notConnected(): IioError {
    return new IioError(
      'ENOTCONN',
      `not connected to iiod at ${this.link.description}${this.reconnects ? `: reconnecting (attempt ${this.attempt})` : ''}${this.downError ? ` after: ${this.downError.detail}` : ''}`,
      { uri: this.uri },
    );
  }

  /** A new control connection, set up like the first one. */
  private async openControl(t: number): Promise<Connection> {
    const c = new Connection(await this.link.connect('control', t));
    try {
      if (this.protocol === 'binary') {
        const r = await withDeadline(c, t, this.uri, ascii.simpleCommand(c, 'BINARY'));
        if (r !== 0) throw new ProtocolError(`BINARY answered ${r}`);
      }
      if (this.remoteTimeoutSent) {
        const r = await withDeadline(c, t, this.uri, this.timeoutCommand(c));
        if (r < 0) throw IioError.fromErrno(r, { op: 'set timeout' });
      }
    } catch (err) {
      c.kill(IioError.wrap(err));
      throw err;
    }
    return c;
  }

  private timeoutCommand(c: Connection): Promise<number> {
    if (this.protocol === 'binary') {
      return binary
        .exec(c, binary.OP.TIMEOUT, 0, binary.remoteTimeout(this.timeout))
        .then((r) => r.code);
    }
    return ascii.simpleCommand(c, `TIMEOUT ${remoteTimeout(this.timeout)}`);
  }

  /**
   * Switches a fresh connection (XML already read) to the binary protocol when the
   * server is 1.x: `BINARY` then a NOP probe that only iiods with our opcode numbering
   * answer. Resolves with the connection to keep (a new ASCII one if the probe killed it).
   */
  private async tryBinary(conn: Connection, ver: ascii.ServerVersion): Promise<Connection> {
    const want = this.options.protocol ?? 'auto';
    this.protocol = 'ascii'; // a reconnect may meet another server
    if (want === 'ascii' || (want === 'auto' && ver.major < 1)) return conn;
    const t = this.timeout || DEFAULT_TIMEOUT_MS;
    let r: number;
    try {
      r = await withDeadline(conn, t, this.uri, ascii.simpleCommand(conn, 'BINARY'));
    } catch (err) {
      if (want === 'binary') throw err;
      conn.kill(IioError.wrap(err));
      return new Connection(await this.link.connect('control', t));
    }
    if (r !== 0) {
      if (want === 'binary') {
        throw new IioError('ENOTSUP', `iiod refused the binary protocol (${r})`, { uri: this.uri });
      }
      return conn; // still in ASCII mode
    }
    try {
      const nop = await withDeadline(conn, t, this.uri, binary.exec(conn, binary.OP.NOP, 0, 0));
      if (nop.code !== 0) throw new ProtocolError(`NOP answered ${nop.code}`);
      this.protocol = 'binary';
      return conn;
    } catch (err) {
      // Another opcode numbering (iiod drops the connection) or no NOP: stay on ASCII.
      conn.kill(IioError.wrap(err));
      if (want === 'binary') {
        throw new IioError(
          'ENOTSUP',
          "iiod's binary protocol is not the one we speak (NOP probe failed)",
          {
            uri: this.uri,
          },
        );
      }
      return new Connection(await this.link.connect('control', t));
    }
  }

  /** VERSION and PRINT on a new connection, each under the timeout. */
  private async handshake(): Promise<{ info: ContextInfo; conn: Connection }> {
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
      const text = ascii.decodeValue(xml);
      const info = buildRemoteContext(
        text,
        this.link,
        ver,
        `XML from iiod at ${this.link.description}`,
      );
      return { info, conn: await this.tryBinary(conn, ver) };
    } catch (err) {
      const e = IioError.wrap(err, { uri: this.uri, op: 'create context' });
      conn.kill(e);
      throw e;
    }
  }

  private async sendRemoteTimeout(): Promise<void> {
    const r = await this.control.run('set timeout', { uri: this.uri }, (c) =>
      this.timeoutCommand(c),
    );
    this.remoteTimeoutSent = true;
    if (r < 0) throw IioError.fromErrno(r, { uri: this.uri, op: 'set timeout' });
  }

  // ---- connection loss and reconnection ----

  private emit(ev: BackendStatusEvent): void {
    try {
      this.options.onStatus?.(ev);
    } catch {
      // a listener's failure must not break the connection logic
    }
  }

  /** A connection ended without us asking (or could not be opened): the server may be gone. */
  lost(error: IioError): void {
    if (this.state !== 'connected') return;
    this.state = 'down';
    this.downError = error;
    this.attempt = 0;
    this.control.drop(error);
    this.control.failPending(this.notConnected());
    this.emit({ type: 'disconnected', error });
    if (this.reconnects) this.reconnecting = this.reconnectLoop();
    else {
      for (const w of this.waiters.splice(0)) w.reject(this.notConnected());
    }
  }

  private wakeSleep?: () => void;

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeSleep = resolve;
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = undefined;
        this.wakeSleep = undefined;
        resolve();
      }, ms);
    });
  }

  private async reconnectLoop(): Promise<void> {
    while (this.state === 'down') {
      this.attempt++;
      const delayMs =
        this.attempt === 1
          ? 0
          : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (this.attempt - 2));
      this.emit({ type: 'reconnecting', attempt: this.attempt, delayMs });
      if (delayMs) await this.sleep(delayMs);
      if (this.state !== 'down') return;
      try {
        const { info, conn } = await this.handshake();
        if (this.state !== 'down') {
          conn.kill(new IioError('EBADF', 'the context is closed'));
          return;
        }
        const changed = !sameDevices(this.info.devices, info.devices);
        // Devices keep their description objects (the model holds them); a changed
        // context is reported and its new description kept for buffers that reopen.
        this.latest = info;
        this.control.adopt(conn);
        this.state = 'connected';
        this.downError = undefined;
        if (this.remoteTimeoutSent) await this.sendRemoteTimeout().catch(() => undefined);
        this.emit({ type: 'reconnected', changed });
        for (const w of this.waiters.splice(0)) w.resolve();
        return;
      } catch (err) {
        this.downError = IioError.wrap(err);
      }
    }
  }

  private latest?: ContextInfo;

  whenConnected(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closed')
      return Promise.reject(new IioError('EBADF', 'the context is closed'));
    if (!this.reconnects) return Promise.reject(this.notConnected());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
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
    if (this.state === 'closed') throw new IioError('EBADF', 'the context is closed');
    if (!this.link.multiConnection) {
      // A UART carries one connection: buffers would have to share the control one.
      throw new IioError(
        'ENOSYS',
        `buffers over ${this.link.description} need a second connection`,
        {
          uri: this.uri,
        },
      );
    }
    return new Connection(await this.link.connect('stream', this.timeout));
  }

  // ---- Backend ----

  private ctxOf(ref: { device?: DeviceInfo; channel?: { id: string }; attr?: { name: string } }) {
    return {
      uri: this.uri,
      device: ref.device?.id,
      channel: ref.channel?.id,
      attr: ref.attr?.name,
    };
  }

  async readAttr(ref: AttrRef): Promise<string> {
    if (ref.kind === 'context') {
      const found = this.info.attrs.find(([k]) => k === ref.attr.name);
      if (found) return found[1];
      throw new IioError('ENOENT', `no context attribute "${ref.attr.name}"`, { uri: this.uri });
    }
    if (this.protocol === 'binary') {
      const cmd = binary.attrCommand(this.info.devices, ref, false);
      const r = await this.control.run('read', this.ctxOf(ref), (c) =>
        binary.exec(c, cmd.op, cmd.dev, cmd.code),
      );
      if (r.code < 0) throw IioError.fromErrno(r.code, { ...this.ctxOf(ref), op: 'read' });
      return ascii.decodeValue(r.data ?? Buffer.alloc(0));
    }
    const address = ascii.attrAddress(ref);
    const r = await this.control.run('read', this.ctxOf(ref), (c) => ascii.readValue(c, address));
    if (typeof r === 'number') throw IioError.fromErrno(r, { ...this.ctxOf(ref), op: 'read' });
    return ascii.decodeValue(r);
  }

  async writeAttr(ref: AttrRef, value: string): Promise<number> {
    if (ref.kind === 'context') {
      throw new IioError('EPERM', 'context attributes are read-only', this.ctxOf(ref));
    }
    // libiio writes the C string with its NUL (iio_device_attr_write: strlen + 1).
    const payload = Buffer.from(`${value}\0`, 'utf8');
    if (this.protocol === 'binary') {
      const cmd = binary.attrCommand(this.info.devices, ref, true);
      const r = await this.control.run('write', this.ctxOf(ref), (c) =>
        binary.exec(c, cmd.op, cmd.dev, cmd.code, binary.writePayload(payload)),
      );
      if (r.code < 0) throw IioError.fromErrno(r.code, { ...this.ctxOf(ref), op: 'write' });
      return r.code;
    }
    const address = ascii.attrAddress(ref);
    const r = await this.control.run('write', this.ctxOf(ref), (c) =>
      ascii.writeValue(c, address, payload),
    );
    if (r < 0) throw IioError.fromErrno(r, { ...this.ctxOf(ref), op: 'write' });
    return r;
  }

  /**
   * Reads every attribute of one kind in one request (iiod's read-all: `READ dev`,
   * `READ dev DEBUG`, `READ dev BUFFER`, `READ dev INPUT|OUTPUT chn`). Values come back
   * in the order of the description's attribute list; failed ones as IioErrors.
   */
  async readAllAttrs(
    device: DeviceInfo,
    kind: 'device' | 'debug' | 'buffer' | 'channel',
    channel?: DeviceInfo['channels'][number],
  ): Promise<Array<string | IioError>> {
    if (this.protocol === 'binary') {
      const list =
        kind === 'channel'
          ? (channel?.attrs ?? [])
          : kind === 'device'
            ? device.attrs
            : kind === 'debug'
              ? device.debugAttrs
              : device.bufferAttrs;
      return Promise.all(
        list.map((attr) =>
          this.readAttr({ kind, device, channel, attr }).catch((e: unknown) => IioError.wrap(e)),
        ),
      );
    }
    ascii.checkToken('device', device.id);
    let address = device.id;
    let count: number;
    if (kind === 'channel') {
      if (!channel) throw new IioError('EINVAL', 'read-all of channel attributes needs a channel');
      ascii.checkToken('channel', channel.id);
      address += ` ${channel.isOutput ? 'OUTPUT' : 'INPUT'} ${channel.id}`;
      count = channel.attrs.length;
    } else {
      if (kind === 'debug') address += ' DEBUG';
      if (kind === 'buffer') address += ' BUFFER';
      count = (
        kind === 'device' ? device.attrs : kind === 'debug' ? device.debugAttrs : device.bufferAttrs
      ).length;
    }
    const ctx = { uri: this.uri, device: device.id, channel: channel?.id, op: 'read all' };
    const r = await this.control.run('read all', ctx, (c) => ascii.readValue(c, address));
    if (typeof r === 'number') throw IioError.fromErrno(r, ctx);
    return ascii
      .decodeReadAll(r, count)
      .map((v) => (typeof v === 'number' ? IioError.fromErrno(v, ctx) : v));
  }

  async getTrigger(device: DeviceInfo): Promise<string | null> {
    const ctx = { uri: this.uri, device: device.id, op: 'get trigger' };
    if (this.protocol === 'binary') {
      const dev = binary.deviceIndex(this.info.devices, device);
      const r = await this.control.run('get trigger', ctx, (c) =>
        binary.exec(c, binary.OP.GETTRIG, dev, 0),
      );
      if (r.code === -19) return null; // ENODEV: no trigger set (iiod 1.0's answer)
      if (r.code < 0) throw IioError.fromErrno(r.code, ctx);
      const ids = this.info.devices
        .map((d) => d.id)
        .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const id = ids[r.code];
      if (id === undefined) throw new ProtocolError(`trigger index ${r.code} out of range`);
      return id;
    }
    const r = await this.control.run('get trigger', ctx, (c) => ascii.getTrigger(c, device.id));
    if (typeof r === 'number') throw IioError.fromErrno(r, ctx);
    return r;
  }

  async setTrigger(device: DeviceInfo, trigger: DeviceInfo | null): Promise<void> {
    if (this.protocol === 'binary') {
      const ctx = { uri: this.uri, device: device.id, op: 'set trigger' };
      const dev = binary.deviceIndex(this.info.devices, device);
      const code = trigger ? binary.deviceIndex(this.info.devices, trigger) : -1;
      const r = await this.control.run('set trigger', ctx, (c) =>
        binary.exec(c, binary.OP.SETTRIG, dev, code),
      );
      if (r.code < 0) throw IioError.fromErrno(r.code, ctx);
      return;
    }
    ascii.checkToken('device', device.id);
    if (trigger) ascii.checkToken('device', trigger.id);
    const ctx = { uri: this.uri, device: device.id, op: 'set trigger' };
    const line = trigger ? `SETTRIG ${device.id} ${trigger.id}` : `SETTRIG ${device.id}`;
    const r = await this.control.run('set trigger', ctx, (c) => ascii.simpleCommand(c, line));
    if (r < 0) throw IioError.fromErrno(r, ctx);
  }

  /** A register: REG_READ over the binary protocol, else debugfs `direct_reg_access`. */
  async readRegister(device: DeviceInfo, address: number): Promise<number> {
    const ctx = { uri: this.uri, device: device.id, op: 'read register' };
    if (this.protocol === 'binary') {
      const dev = binary.deviceIndex(this.info.devices, device);
      const r = await this.control.run('read register', ctx, (c) =>
        binary.exec(c, binary.OP.REG_READ, dev, address >>> 0),
      );
      if (r.code < 0) throw IioError.fromErrno(r.code, ctx);
      if (!r.data || r.data.length !== 4)
        throw new ProtocolError('REG_READ did not return 4 bytes');
      return r.data.readUInt32LE(0);
    }
    const reg = this.debugRegAttr(device);
    await this.writeAttr(reg, `0x${address.toString(16)}`);
    const text = (await this.readAttr(reg)).trim();
    const v = Number(text);
    if (!Number.isFinite(v)) throw new IioError('EIO', `register read back "${text}"`, ctx);
    return v >>> 0;
  }

  async writeRegister(device: DeviceInfo, address: number, value: number): Promise<void> {
    const ctx = { uri: this.uri, device: device.id, op: 'write register' };
    if (this.protocol === 'binary') {
      const dev = binary.deviceIndex(this.info.devices, device);
      const v = Buffer.alloc(4);
      v.writeUInt32LE(value >>> 0, 0);
      const r = await this.control.run('write register', ctx, (c) =>
        binary.exec(c, binary.OP.REG_WRITE, dev, address >>> 0, v),
      );
      if (r.code < 0) throw IioError.fromErrno(r.code, ctx);
      return;
    }
    await this.writeAttr(
      this.debugRegAttr(device),
      `0x${address.toString(16)} 0x${(value >>> 0).toString(16)}`,
    );
  }

  private debugRegAttr(device: DeviceInfo): AttrRef {
    const attr = device.debugAttrs.find((a) => a.name === 'direct_reg_access');
    if (!attr) {
      throw new IioError('ENOENT', 'no debug attribute "direct_reg_access"', {
        uri: this.uri,
        device: device.id,
      });
    }
    return { kind: 'debug', device, attr };
  }

  /** `SET dev BUFFERS_COUNT n`: the number of kernel buffers iiod uses for the device. */
  async setKernelBuffersCount(device: DeviceInfo, count: number): Promise<void> {
    if (this.protocol === 'binary') {
      throw new IioError(
        'ENOSYS',
        "libiio 1.0's iiod has no kernel buffers count: use createBuffer's blocks",
        {
          uri: this.uri,
          device: device.id,
        },
      );
    }
    ascii.checkToken('device', device.id);
    if (!Number.isInteger(count) || count < 1) {
      throw new IioError('EINVAL', `kernel buffers count must be a positive integer, not ${count}`);
    }
    const ctx = { uri: this.uri, device: device.id, op: 'set kernel buffers count' };
    const r = await this.control.run('set buffers count', ctx, (c) =>
      ascii.simpleCommand(c, `SET ${device.id} BUFFERS_COUNT ${count}`),
    );
    if (r < 0) throw IioError.fromErrno(r, ctx);
  }

  async openBuffer(device: DeviceInfo, options: BufferOpenOptions): Promise<BackendBuffer> {
    if (this.state === 'closed')
      throw new IioError('EBADF', 'the context is closed', { uri: this.uri });
    if (this.state === 'down') throw this.notConnected();
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
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.wakeSleep?.();
    for (const w of this.waiters.splice(0))
      w.reject(new IioError('EBADF', 'the context is closed'));
    await Promise.all([...this.streams].map((s) => s.close().catch(() => undefined)));
    // In binary mode iiod would read `EXIT` as a frame (opcode 0x45): just hang up, as
    // libiio's client does once its responder runs.
    await this.control.close((c) => {
      if (this.protocol === 'ascii') c.send('\r\nEXIT\r\n');
    });
    await this.reconnecting?.catch(() => undefined);
    await this.link.close?.().catch(() => undefined);
  }
}

/** libiio's calculate_remote_timeout: the server gets half. */
function remoteTimeout(ms: number): number {
  return Math.floor(ms / 2);
}
