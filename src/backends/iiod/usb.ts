/**
 * `usb:` — iiod over USB (ADALM-Pluto, M2K, FunctionFS gadgets), through libusb as the
 * `usb` npm package (2.x) carries it, in a worker thread (usb-host.ts). iiod's USB
 * function has one interface named "IIO" whose bulk endpoints come in IN/OUT couples,
 * one per "pipe"; vendor control requests reset, open and close pipes (libiio's usb.c,
 * iiod/usbd.c). Pipe 0 carries the context's requests, every open buffer gets a pipe of
 * its own: the same client as `ip:`, with a pipe where TCP has a connection.
 *
 * This file is the link (the device, its interface and the pipes' allocation, found
 * again after an unplug); usb-pipe.ts is one pipe as a Transport.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { IioError } from '../../errors';
import { tracer } from '../../util/trace';
import type { ContextInfoEntry } from '../../scan';
import type { BackendOpenOptions } from '../../model/backend';
import { IiodBackend, type IiodOptions } from './client';
import {
  UsbHost,
  withUsbHost,
  type UsbDeviceInfo,
  type UsbScanEntry,
  type WireError,
} from './usb-host';
import { UsbPipeTransport, type PipeOwner } from './usb-pipe';
import { LinkLostError, type Link, type Transport } from './transport';
import {
  formatUsbUri,
  libusbErrno,
  parseUsbAddress,
  parseUsbFilter,
  type UsbAddress,
} from './usb-uri';

const trace = tracer('usb');

/** libiio's USB default timeout (usb.c DEFAULT_TIMEOUT_MS). */
export const USB_DEFAULT_TIMEOUT_MS = 5000;
/** How long a freshly opened pipe must stay silent before we trust it (see drainStale). */
const DRAIN_QUIET_MS = 100;
/** How long iiod's fresh pipe thread may take to read our EXIT when a pipe is closed. */
const PIPE_EXIT_MS = 1000;
/** iiod's vendor requests (IIO_USD_CMD_*). */
const CMD_OPEN_PIPE = 1;
const CMD_CLOSE_PIPE = 2;
const TRANSFER_ERROR = 1;
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
export class UsbLink implements Link, PipeOwner {
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
      trace(e.message);
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
    trace(
      `${this.where()} open: interface ${info.intf}, ${info.couples.length} pipes (${info.product ?? 'no product name'})`,
    );
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
    trace(`${what}: ${this.where()} gone (${w.message})`);
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
    trace(`${purpose} connection on pipe ${pipe}`);
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
