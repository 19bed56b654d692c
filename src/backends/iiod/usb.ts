/**
 * `usb:` — iiod over USB (ADALM-Pluto, M2K, FunctionFS gadgets), through libusb as the
 * `usb` npm package (2.x) carries it, in a worker thread (usb-host.ts). iiod's USB
 * function has one interface named "IIO" whose bulk endpoints come in IN/OUT couples,
 * one per "pipe"; vendor control requests reset, open and close pipes (libiio's usb.c,
 * iiod/usbd.c). Pipe 0 carries the context's requests, every open buffer gets a pipe of
 * its own: the same client as `ip:`, with a pipe where TCP has a connection.
 *
 * Two things differ from a TCP stream and shape this file:
 * - iiod reads each OUT transfer as a whole (a command line, or a payload by length):
 *   every write stays in its own transfers, and a command whose length is a multiple of
 *   the packet size gets a zero-length packet to end it.
 * - A bulk IN transfer completes when full or on a short packet: asking for more than
 *   iiod is bound to send could wait forever. We read only on demand: whole packets of
 *   what a payload still owes, or one packet for a reply line.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { IioError } from '../../errors';
import type { ContextInfoEntry } from '../../scan';
import type { BackendOpenOptions } from '../../model/backend';
import { IiodBackend, type IiodOptions } from './client';
import {
  UsbHost,
  withUsbHost,
  type ReadResult,
  type UsbCouple,
  type UsbDeviceInfo,
  type UsbScanEntry,
  type WireError,
} from './usb-host';
import {
  LinkLostError,
  type Link,
  type Transport,
  type TransportSink,
  type WriteKind,
} from './transport';
import {
  formatUsbUri,
  libusbErrno,
  parseUsbAddress,
  parseUsbFilter,
  type UsbAddress,
} from './usb-uri';

/** libiio's USB default timeout (usb.c DEFAULT_TIMEOUT_MS). */
export const USB_DEFAULT_TIMEOUT_MS = 5000;
/** libiio's largest URB (usb_sync_transfer): bigger ones may fail with ENOMEM in usbfs. */
const MAX_TRANSFER = 1 << 20;
/** How long a freshly opened pipe must stay silent before we trust it (see drainStale). */
const DRAIN_QUIET_MS = 100;
/** How long iiod's fresh pipe thread may take to read our EXIT when a pipe is closed. */
const PIPE_EXIT_MS = 1000;
/** iiod's vendor requests (IIO_USD_CMD_*). */
const CMD_OPEN_PIPE = 1;
const CMD_CLOSE_PIPE = 2;
const TRANSFER_ERROR = 1;
const TRANSFER_CANCELLED = 3;
const TRANSFER_NO_DEVICE = 5;
const ERROR_IO = -1;
const ERROR_NO_DEVICE = -4;

/** libusb's version, as libiio's `usb,libusb` attribute gives it (`1.0.30.12037`). */
function libusbVersion(): string | undefined {
  try {
    const dir = join(dirname(require.resolve('usb/package.json')), 'libusb', 'libusb');
    const v = readFileSync(join(dir, 'version.h'), 'utf8');
    const nano = readFileSync(join(dir, 'version_nano.h'), 'utf8');
    const num = (text: string, name: string): string =>
      new RegExp(`#define\\s+LIBUSB_${name}\\s+(\\d+)`).exec(text)?.[1] ?? '0';
    const rc = /#define\s+LIBUSB_RC\s+"([^"]*)"/.exec(v)?.[1] ?? '';
    return `${num(v, 'MAJOR')}.${num(v, 'MINOR')}.${num(v, 'MICRO')}.${num(nano, 'NANO')}${rc}`;
  } catch {
    return undefined;
  }
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

/** A worker's error (or an IioError it raised) as an IioError. */
function fromWire(err: unknown, what: string): IioError {
  if (err instanceof IioError) return err;
  const w = err as WireError;
  if (w.code) return new IioError(w.code, w.message);
  const code = libusbErrno(w.errno, w.status);
  return new IioError(code, `${what}: ${w.message}`);
}

/** True for a worker error that means the device (or its gadget) went away. */
function meansGone(err: unknown): boolean {
  const w = err as WireError | undefined;
  if (!w || err instanceof IioError) return false;
  if (w.code) return w.code === 'ENODEV';
  return w.status
    ? w.errno === TRANSFER_NO_DEVICE || w.errno === TRANSFER_ERROR
    : w.errno === ERROR_NO_DEVICE || w.errno === ERROR_IO;
}

/** What identifies "the same device" after it was unplugged (its address then changes). */
interface Identity {
  readonly vid: number;
  readonly pid: number;
  readonly serial?: string;
  readonly ports: string;
}

/** One iiod USB function: its worker, the claimed interface and its pipes. */
export class UsbLink implements Link {
  readonly multiConnection = true;
  readonly descriptionPrefix = '';
  readonly backendName = 'usb';
  readonly defaultTimeoutMs = USB_DEFAULT_TIMEOUT_MS;
  private host?: UsbHost;
  private info?: UsbDeviceInfo;
  private readonly used = new Set<number>();
  /** CLOSE_PIPE requests under way, by pipe (a pipe is reopened only after its close). */
  private readonly closing = new Map<number, Promise<void>>();
  private opening?: Promise<UsbHost>;
  private identity?: Identity;
  private attrs: Array<readonly [string, string]> = [];
  private address: UsbAddress;
  private closed = false;
  /** Transports alive per worker: a worker ends once none is. */
  private readonly live = new Map<UsbHost, number>();
  private idleWaiters: Array<() => void> = [];

  constructor(address: UsbAddress) {
    this.address = address;
  }

  get description(): string {
    return `usb ${this.address.bus}.${this.address.address}.${this.address.intf}`;
  }

  contextAttrs(): Array<readonly [string, string]> {
    return this.attrs;
  }

  /** The number of pipes iiod offers (its `-n`): one for requests, the rest for buffers. */
  get pipes(): number {
    return this.info?.couples.length ?? 0;
  }

  private where(): string {
    const ids = this.identity ? `${hex4(this.identity.vid)}:${hex4(this.identity.pid)} ` : '';
    return `${ids}at ${this.address.bus}.${this.address.address}`;
  }

  /** The worker with the device open; after a loss, a new worker finds it again. */
  private device(): Promise<UsbHost> {
    if (this.host) return Promise.resolve(this.host);
    this.opening ??= this.openDevice().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async openDevice(): Promise<UsbHost> {
    if (this.closed) throw new IioError('EBADF', 'the context is closed');
    const host = new UsbHost();
    const id = this.identity;
    let info: UsbDeviceInfo;
    try {
      info = await host.request<UsbDeviceInfo>(
        id
          ? {
              op: 'open',
              intf: this.address.intf,
              vid: id.vid,
              pid: id.pid,
              serial: id.serial,
              ports: id.serial ? undefined : id.ports,
            }
          : {
              op: 'open',
              intf: this.address.intf,
              bus: this.address.bus,
              address: this.address.address,
            },
      );
    } catch (err) {
      await host.terminate();
      const e = fromWire(err, `open USB device ${this.where()}`);
      // not there (yet): a lost link, so a reconnect keeps looking
      throw e.code === 'ENODEV' ? new LinkLostError('ENODEV', e.detail, {}, { cause: e }) : e;
    }
    if (this.closed) {
      await host.request({ op: 'close' }).catch(() => undefined);
      await host.terminate();
      throw new IioError('EBADF', 'the context is closed');
    }
    this.identity ??= { vid: info.vid, pid: info.pid, serial: info.serial, ports: info.ports };
    this.address = { bus: info.bus, address: info.address, intf: info.intf };
    // libiio's usb_populate_context_attrs, in its order
    const attrs: Array<readonly [string, string]> = [
      ['uri', formatUsbUri(this.address)],
      ['usb,idVendor', hex4(info.vid)],
      ['usb,idProduct', hex4(info.pid)],
      ['usb,release', `${(info.bcdUSB >> 8) & 0xf}.${(info.bcdUSB >> 4) & 0xf}`],
    ];
    if (info.manufacturer !== undefined) attrs.push(['usb,vendor', info.manufacturer]);
    if (info.product !== undefined) attrs.push(['usb,product', info.product]);
    if (info.serial !== undefined) attrs.push(['usb,serial', info.serial]);
    const lib = libusbVersion();
    if (lib) attrs.push(['usb,libusb', lib]);
    this.attrs = attrs;
    this.info = info;
    this.used.clear();
    this.closing.clear();
    this.host = host;
    return host;
  }

  /**
   * Maps a worker error. A vanished device (or a transfer error, which is how an unplug
   * or an unbound gadget often shows first) is a lost link: its worker goes, and the next
   * connect looks for the device again, by its ids and serial number.
   */
  transferError(host: UsbHost, err: unknown, what: string): IioError {
    if (!meansGone(err)) return fromWire(err, what);
    if (this.host === host) this.forget();
    const w = err as WireError;
    return new LinkLostError(
      'ENODEV',
      `${what}: the USB device ${this.where()} is gone (unplugged, reset or its gadget unbound: ${w.message})`,
    );
  }

  /** Drops a device that went away; the next connect looks for it again. */
  private forget(): void {
    const h = this.host;
    this.host = undefined;
    this.info = undefined;
    this.used.clear();
    this.closing.clear();
    if (h) this.endWhenIdle(h);
  }

  private endWhenIdle(h: UsbHost): void {
    if (this.host === h || (this.live.get(h) ?? 0) > 0) return;
    this.live.delete(h);
    void h.terminate();
  }

  async connect(purpose: 'control' | 'stream', timeoutMs: number): Promise<Transport> {
    const host = await this.device();
    const couples = this.info!.couples;
    let pipe = 0;
    if (purpose === 'stream') {
      pipe = -1;
      for (let i = 1; i < couples.length; i++) {
        if (!this.used.has(i)) {
          pipe = i;
          break;
        }
      }
      if (pipe < 0) {
        throw new IioError(
          'EBUSY',
          `all ${couples.length - 1} buffer pipes of USB device ${this.where()} are in use (iiod -n sets how many)`,
        );
      }
    }
    await this.closing.get(pipe);
    this.used.add(pipe);
    try {
      await host.request({ op: 'control', req: CMD_OPEN_PIPE, value: pipe });
    } catch (err) {
      this.used.delete(pipe);
      throw this.transferError(host, err, `open pipe ${pipe}`);
    }
    this.live.set(host, (this.live.get(host) ?? 0) + 1);
    const t = new UsbPipeTransport(this, host, pipe, couples[pipe]);
    try {
      await t.drainStale(Math.min(DRAIN_QUIET_MS, timeoutMs > 0 ? timeoutMs : DRAIN_QUIET_MS));
    } catch (err) {
      t.close();
      throw err;
    }
    return t;
  }

  /**
   * A transport is done with its pipe (its transfers have ended): CLOSE_PIPE, then the
   * pipe is free again.
   */
  release(host: UsbHost, pipe: number): void {
    this.live.set(host, Math.max(0, (this.live.get(host) ?? 1) - 1));
    if (this.host !== host) {
      this.endWhenIdle(host);
    } else {
      const ctrl = (req: number): Promise<void> =>
        host.request({ op: 'control', req, value: pipe }).then(() => undefined);
      // iiod's CLOSE_PIPE only signals the pipe's thread to stop; its OPEN_PIPE waits for
      // that thread to end (and so to close the device it had open). Closing, opening,
      // sending EXIT to the new thread and closing returns once the device is closed (a
      // trigger change right after a buffer closes then does not meet EBUSY), and leaves
      // the pipe clean: a thread stopped while idle writes "-22" for the next user.
      const exit = (): Promise<void> => {
        const ab = new TextEncoder().encode('EXIT\r\n').buffer as ArrayBuffer;
        const timer = setTimeout(() => {
          void host.request({ op: 'cancel', pipe }).catch(() => undefined);
        }, PIPE_EXIT_MS);
        return host
          .request({ op: 'write', pipe, data: ab, zlp: false }, [ab])
          .then(() => undefined)
          .finally(() => clearTimeout(timer));
      };
      const p = ctrl(CMD_CLOSE_PIPE)
        .then(() => ctrl(CMD_OPEN_PIPE))
        .then(exit)
        .then(() => ctrl(CMD_CLOSE_PIPE))
        .catch(() => undefined)
        .finally(() => {
          if (this.closing.get(pipe) === p) this.closing.delete(pipe);
          if (this.host === host) this.used.delete(pipe);
        });
      this.closing.set(pipe, p);
    }
    if (!this.live.get(host)) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when no CLOSE_PIPE is under way for `pipe`. */
  async pipeClosed(pipe: number): Promise<void> {
    await this.closing.get(pipe);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.opening?.catch(() => undefined);
    const h = this.host;
    if (!h) return;
    if (this.live.get(h)) {
      // transports cancel their transfers on close: wait for them (bounded)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await Promise.all(this.closing.values());
    // libiio's usb_shutdown: reset every pipe, then let go of the interface
    await h.request({ op: 'close' }).catch(() => undefined);
    this.host = undefined;
    this.live.delete(h);
    await h.terminate();
  }
}

/** A queued write: one message (see WriteKind). */
interface Pending {
  readonly data: Buffer;
  readonly zlp: boolean;
}

/** One pipe: a bulk IN/OUT endpoint couple, read on demand. */
export class UsbPipeTransport implements Transport {
  readonly description: string;
  private sink?: TransportSink;
  private readBusy = false;
  private writing = false;
  private queue: Pending[] = [];
  private drained: Array<() => void> = [];
  private ended = false;
  private released = false;
  private pendingEnd?: { error?: Error };
  closed = false;

  constructor(
    private readonly link: UsbLink,
    private readonly host: UsbHost,
    readonly pipe: number,
    private readonly couple: UsbCouple,
  ) {
    this.description = `${link.description} pipe ${pipe}`;
  }

  /**
   * Reads and drops what a previous user of the pipe left behind (a reply iiod wrote
   * after that client went away, or "-22" from a session that ended without EXIT),
   * until the pipe stays quiet for `quietMs`. libiio's own client does not, which is
   * why it fails on the second connection to a gadget. The timer is ours: the prebuilt
   * libusb may check transfer timeouts only when its event loop wakes (up to 60 s later);
   * a cancel wakes it at once.
   */
  async drainStale(quietMs: number): Promise<void> {
    for (let i = 0; i < 64; i++) {
      let quiet = false;
      const timer = setTimeout(() => {
        quiet = true;
        void this.host.request({ op: 'cancel', pipe: this.pipe }).catch(() => undefined);
      }, quietMs);
      try {
        await this.host.request<ReadResult>({
          op: 'read',
          pipe: this.pipe,
          length: this.couple.inPacket,
        });
      } catch (err) {
        if (quiet && (err as WireError).status && (err as WireError).errno === TRANSFER_CANCELLED) {
          return;
        }
        throw this.link.transferError(this.host, err, `read from ${this.description}`);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  attach(sink: TransportSink): void {
    this.sink = sink;
    sink.setWantListener?.(() => this.pumpRead());
    if (this.pendingEnd) {
      const e = this.pendingEnd.error;
      this.pendingEnd = undefined;
      sink.end(e);
      return;
    }
    this.pumpRead();
  }

  /** Asks for the IN transfer the sink's pending read needs, if any and none is under way. */
  private pumpRead(): void {
    if (this.readBusy || this.closed || !this.sink?.want) return;
    const want = this.sink.want();
    if (!want) return;
    const mps = this.couple.inPacket;
    let length: number;
    if (want.target && want.target.length >= mps) {
      // whole packets of what the payload still owes: iiod sends all of them
      length = Math.min(MAX_TRANSFER, want.target.length - (want.target.length % mps));
    } else {
      // whole packets covering what is owed (one for a reply line): such a transfer
      // never overflows, and ends on the short packet that closes iiod's write
      length = Math.min(MAX_TRANSFER, Math.max(mps, Math.ceil(want.atLeast / mps) * mps));
    }
    this.readBusy = true;
    this.host.request<ReadResult>({ op: 'read', pipe: this.pipe, length }).then(
      (r) => this.readDone(undefined, r),
      (err: unknown) => this.readDone(err),
    );
  }

  private readDone(err: unknown, r?: ReadResult): void {
    this.readBusy = false;
    if (this.closed) {
      this.maybeRelease();
      return;
    }
    if (err) {
      this.finish(this.link.transferError(this.host, err, `read from ${this.description}`));
      return;
    }
    if (r && r.n > 0) this.sink?.data(Buffer.from(r.data, 0, r.n), false);
    this.pumpRead();
  }

  write(data: Uint8Array, kind: WriteKind = 'data'): void {
    if (this.closed || !data.length) return;
    const buf = Buffer.isBuffer(data)
      ? data
      : Buffer.from(data.buffer, data.byteOffset, data.length);
    // iiod reads a command line with one large read: a transfer of whole packets would
    // not end it, a zero-length packet does. Payloads are read by length and must not
    // get one (iiod would take it for an empty read).
    this.queue.push({
      data: buf,
      zlp: kind === 'command' && buf.length % this.couple.outPacket === 0,
    });
    this.pumpWrite();
  }

  private pumpWrite(): void {
    if (this.writing || this.closed) return;
    const next = this.queue.shift();
    if (!next) {
      for (const r of this.drained.splice(0)) r();
      return;
    }
    this.writing = true;
    const piece = next.data.subarray(0, MAX_TRANSFER);
    const rest = next.data.subarray(piece.length);
    if (rest.length) this.queue.unshift({ data: rest, zlp: next.zlp });
    // a copy the worker takes over (the caller's memory may be reused or pooled)
    const ab = piece.buffer.slice(piece.byteOffset, piece.byteOffset + piece.length) as ArrayBuffer;
    this.host
      .request<number>({ op: 'write', pipe: this.pipe, data: ab, zlp: !rest.length && next.zlp }, [
        ab,
      ])
      .then(
        () => this.writeDone(),
        (err: unknown) => this.writeDone(err),
      );
  }

  private writeDone(err?: unknown): void {
    this.writing = false;
    if (this.closed) {
      this.maybeRelease();
      return;
    }
    if (err) {
      this.finish(this.link.transferError(this.host, err, `write to ${this.description}`));
      return;
    }
    this.pumpWrite();
  }

  drain(): Promise<void> {
    if (this.closed || (!this.queue.length && !this.writing)) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private finish(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.shutdown();
    if (this.sink) this.sink.end(error);
    else this.pendingEnd = { error };
  }

  /** Cancels what is under way; the pipe goes back (CLOSE_PIPE) once the transfers ended. */
  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    for (const r of this.drained.splice(0)) r();
    if (this.readBusy || this.writing) {
      void this.host.request({ op: 'cancel', pipe: this.pipe }).catch(() => undefined);
    }
    this.maybeRelease();
  }

  /** libusb must not close a handle with transfers pending: release after the last. */
  private maybeRelease(): void {
    if (this.released || this.readBusy || this.writing) return;
    this.released = true;
    this.link.release(this.host, this.pipe);
    for (const r of this.settledWaiters.splice(0)) r();
  }

  private settledWaiters: Array<() => void> = [];

  /** Resolves once the pipe was handed back and iiod's thread for it has ended. */
  async settled(): Promise<void> {
    if (!this.released) await new Promise<void>((r) => this.settledWaiters.push(r));
    await this.link.pipeClosed(this.pipe);
  }

  close(): void {
    this.finish();
  }
}

/** A found iiod USB function. */
export interface UsbContextEntry extends ContextInfoEntry {
  readonly address: UsbAddress;
}

function describe(e: UsbScanEntry): string {
  return `${hex4(e.vid)}:${hex4(e.pid)} (${e.manufacturer ?? ''} ${e.product ?? ''}), serial=${e.serial ?? ''}`;
}

/**
 * Lists the USB devices with an "IIO" interface (libiio's usb_context_scan), described
 * as `vid:pid (manufacturer product), serial=...`. Devices that cannot be opened (no
 * permission, busy) are skipped, as libiio does. `args` is libiio's `vid:pid` filter.
 */
export async function scanUsb(args?: string): Promise<UsbContextEntry[]> {
  const filter = parseUsbFilter(args);
  const found = await withUsbHost((h) =>
    h.request<UsbScanEntry[]>({ op: 'scan', vid: filter?.vid, pid: filter?.pid }),
  ).catch((err: unknown) => {
    throw fromWire(err, 'scan USB devices');
  });
  return found.map((e) => {
    const address = { bus: e.bus, address: e.address, intf: e.intf };
    return { uri: formatUsbUri(address), description: describe(e), address };
  });
}

/** Opens a `usb:` context: `usb:` alone takes the only IIO device there is (libiio's rule). */
export async function openUsbBackend(
  uri: string,
  options: BackendOpenOptions = {},
): Promise<IiodBackend> {
  const rest = uri.slice(uri.indexOf(':') + 1);
  let address = parseUsbAddress(rest, uri);
  if (!address) {
    const found = await scanUsb();
    if (found.length !== 1) {
      throw new IioError(
        'ENXIO',
        found.length
          ? `usb: needs exactly one IIO device, found ${found.length}: ${found.map((f) => `${f.uri} ${f.description}`).join('; ')}; name one (usb:bus.address)`
          : 'no USB device with an IIO interface found (usb:); check the cable, "iiokit scan usb", and permissions on /dev/bus/usb',
        { uri },
      );
    }
    address = found[0].address;
  }
  return IiodBackend.open(uri, new UsbLink(address), options as IiodOptions);
}
