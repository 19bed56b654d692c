/**
 * `usb:` — iiod over USB (ADALM-Pluto, M2K, FunctionFS gadgets), through libusb as the
 * `usb` npm package (2.x) carries it. iiod's USB function has one interface named "IIO"
 * whose bulk endpoints come in IN/OUT couples, one per "pipe"; vendor control requests
 * reset, open and close pipes (libiio's usb.c, iiod/usbd.c). Pipe 0 carries the
 * context's requests, every open buffer gets a pipe of its own: the same client as
 * `ip:`, with a pipe where TCP has a connection.
 *
 * Two things differ from a TCP stream and shape this file:
 * - iiod reads each OUT transfer as a whole (a command line, or a payload by length):
 *   every write stays in its own transfers, and a command whose length is a multiple of
 *   the packet size gets a zero-length packet to end it.
 * - A bulk IN transfer completes when full or on a short packet: asking for more than
 *   iiod is bound to send could wait forever. We read only on demand: exactly the rest of
 *   a payload (whole packets into the caller's memory), or one packet for a reply line.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { IioError } from '../../errors';
import type { ContextInfoEntry } from '../../scan';
import type { BackendOpenOptions } from '../backend';
import { IiodBackend, type IiodOptions } from './client';
import {
  formatUsbUri,
  libusbErrno,
  parseUsbAddress,
  parseUsbFilter,
  type UsbAddress,
  type UsbIdFilter,
} from './usb-uri';
import {
  LinkLostError,
  type Link,
  type Transport,
  type TransportSink,
  type WriteKind,
} from './transport';

type UsbModule = typeof import('usb');
type UsbDevice = import('usb').Device;
type UsbTransfer = import('usb').Transfer;
type UsbError = Error & { errno?: number };

/** libiio's USB default timeout (usb.c DEFAULT_TIMEOUT_MS). */
export const USB_DEFAULT_TIMEOUT_MS = 5000;
/** Pipe control requests should not take long (libiio's USB_PIPE_CTRL_TIMEOUT). */
const PIPE_CTRL_TIMEOUT_MS = 1000;
/** libiio's largest URB (usb_sync_transfer): bigger ones may fail with ENOMEM in usbfs. */
const MAX_TRANSFER = 1 << 20;
/** How long a freshly opened pipe must stay silent before we trust it (see drain()). */
const DRAIN_QUIET_MS = 100;
/** iiod's vendor requests (IIO_USD_CMD_*). */
const CMD_RESET_PIPES = 0;
const CMD_OPEN_PIPE = 1;
const CMD_CLOSE_PIPE = 2;
/** LIBUSB_REQUEST_TYPE_VENDOR | LIBUSB_RECIPIENT_INTERFACE, host to device. */
const VENDOR_OUT_INTERFACE = 0x41;
const TRANSFER_TYPE_BULK = 2;
const TRANSFER_CANCELLED = 3;
const TRANSFER_NO_DEVICE = 5;
const ERROR_NO_DEVICE = -4;
const ERROR_ACCESS = -3;
const ERROR_BUSY = -6;

let usbModule: UsbModule | undefined;

/**
 * Devices a context of ours holds open. The usb package hands out one Device object per
 * device, with one handle: a scan must not open (and then close) a device a context is
 * using.
 */
const held = new Set<UsbDevice>();

/** Opens `d` for a look (descriptors, strings) unless a context holds it; returns a closer. */
function peek(d: UsbDevice): (() => void) | undefined {
  if (held.has(d)) return () => undefined;
  try {
    d.open(false);
  } catch {
    return undefined;
  }
  return () => {
    try {
      d.close();
    } catch {
      // gone, or busy: the handle is closed with the device
    }
  };
}

/** Loads the `usb` package on first use, with an error that says what is missing. */
export function loadUsb(): UsbModule {
  if (usbModule) return usbModule;
  try {
    usbModule = require('usb') as UsbModule;
    return usbModule;
  } catch (err) {
    throw new IioError(
      'ENOSYS',
      `usb: contexts need the "usb" npm package (libusb) and its native binary for ${process.platform}-${process.arch}, which could not be loaded: ${(err as Error).message}. Install it with "npm install usb@2".`,
      {},
      { cause: err },
    );
  }
}

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

function cb<T>(f: (done: (err: UsbError | undefined, v?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    try {
      f((err, v) => (err ? reject(err) : resolve(v as T)));
    } catch (err) {
      reject(err as Error);
    }
  });
}

/** A device's place in the system, for messages: `1.5 (0456:b673 "PlutoSDR" 1044...)`. */
function devName(d: UsbDevice, serial?: string): string {
  const dd = d.deviceDescriptor;
  const ids = `${hex4(dd.idVendor)}:${hex4(dd.idProduct)}`;
  return `${d.busNumber}.${d.deviceAddress} (${ids}${serial ? ` serial ${serial}` : ''})`;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

function stringDescriptor(d: UsbDevice, index: number): Promise<string | undefined> {
  if (!index) return Promise.resolve(undefined);
  return cb<string | undefined>((done) => d.getStringDescriptor(index, done));
}

/** The interface index whose name is "IIO" (libiio's iio_usb_match_device), or -1. */
async function findIioInterface(d: UsbDevice): Promise<number> {
  const cfg = d.configDescriptor;
  if (!cfg) return -1;
  for (let i = 0; i < cfg.interfaces.length; i++) {
    for (const alt of cfg.interfaces[i]) {
      if (!alt.iInterface) continue;
      if ((await stringDescriptor(d, alt.iInterface)) === 'IIO') return i;
    }
  }
  return -1;
}

/** An error of the usb package as an IioError naming the device. */
function usbError(err: unknown, what: string, transferStatus = false): IioError {
  const errno = (err as UsbError | undefined)?.errno;
  const code = libusbErrno(errno, transferStatus);
  const msg = (err as Error | undefined)?.message ?? String(err);
  return new IioError(code, `${what}: ${msg}`, {}, { cause: err });
}

/** The bulk endpoints of one pipe. */
interface Couple {
  readonly in: number;
  readonly out: number;
  /** wMaxPacketSize of the IN endpoint (the read granule). */
  readonly inPacket: number;
  readonly outPacket: number;
}

/** What identifies "the same device" after it was unplugged (its address then changes). */
interface Identity {
  readonly vid: number;
  readonly pid: number;
  readonly serial?: string;
  readonly ports: string;
}

function identityMatches(d: UsbDevice, id: Identity, serial: string | undefined): boolean {
  const dd = d.deviceDescriptor;
  if (dd.idVendor !== id.vid || dd.idProduct !== id.pid) return false;
  if (id.serial) return serial === id.serial;
  return (d.portNumbers ?? []).join('.') === id.ports;
}

/** One iiod USB function: the device handle, its claimed interface and its pipes. */
export class UsbLink implements Link {
  readonly multiConnection = true;
  readonly descriptionPrefix = '';
  readonly backendName = 'usb';
  readonly defaultTimeoutMs = USB_DEFAULT_TIMEOUT_MS;
  private dev?: UsbDevice;
  private couples: Couple[] = [];
  private readonly used = new Set<number>();
  /** CLOSE_PIPE requests under way, by pipe (a pipe is reopened only after its close). */
  private readonly closing = new Map<number, Promise<void>>();
  private opening?: Promise<UsbDevice>;
  private identity?: Identity;
  private attrs: Array<readonly [string, string]> = [];
  private address: UsbAddress;
  private closed = false;

  constructor(
    private readonly usb: UsbModule,
    address: UsbAddress,
  ) {
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
    return this.couples.length;
  }

  /** Finds, opens and claims the device; after a loss, finds it again by identity. */
  private device(): Promise<UsbDevice> {
    if (this.dev) return Promise.resolve(this.dev);
    if (!this.opening) {
      this.opening = this.openDevice().finally(() => {
        this.opening = undefined;
      });
    }
    return this.opening;
  }

  private async locate(): Promise<UsbDevice> {
    const list = this.usb.getDeviceList();
    if (!this.identity) {
      const d = list.find(
        (x) => x.busNumber === this.address.bus && x.deviceAddress === this.address.address,
      );
      if (!d) {
        throw new LinkLostError(
          'ENODEV',
          `no USB device at bus ${this.address.bus}, address ${this.address.address} (usb:${this.address.bus}.${this.address.address}); list them with "iiokit scan usb"`,
        );
      }
      return d;
    }
    // The device came back (replugged, gadget rebound): same ids and serial, new address.
    const id = this.identity;
    for (const d of list) {
      const dd = d.deviceDescriptor;
      if (dd.idVendor !== id.vid || dd.idProduct !== id.pid) continue;
      if (!id.serial) {
        if (identityMatches(d, id, undefined)) return d;
        continue;
      }
      const done = peek(d);
      if (!done) continue;
      try {
        const serial = await stringDescriptor(d, dd.iSerialNumber).catch(() => undefined);
        if (identityMatches(d, id, serial)) return d;
      } finally {
        done();
      }
    }
    throw new LinkLostError(
      'ENODEV',
      `the USB device ${hex4(id.vid)}:${hex4(id.pid)}${id.serial ? ` serial ${id.serial}` : ''} is not connected`,
    );
  }

  private async openDevice(): Promise<UsbDevice> {
    if (this.closed) throw new IioError('EBADF', 'the context is closed');
    const d = await this.locate();
    const where = devName(d);
    try {
      d.open();
    } catch (err) {
      const errno = (err as UsbError).errno;
      if (errno === ERROR_ACCESS) {
        throw new IioError(
          'EACCES',
          `no permission to open USB device ${where} (/dev/bus/usb/${String(d.busNumber).padStart(3, '0')}/${String(d.deviceAddress).padStart(3, '0')}): add a udev rule for it (see docs/usb-serial.md) or run as root`,
          {},
          { cause: err },
        );
      }
      if (errno === ERROR_NO_DEVICE)
        throw new LinkLostError('ENODEV', `USB device ${where} is gone`);
      throw usbError(err, `cannot open USB device ${where}`);
    }
    try {
      await this.setUp(d, where);
    } catch (err) {
      try {
        d.close();
      } catch {
        // closing anyway
      }
      throw err;
    }
    this.dev = d;
    held.add(d);
    this.address = { ...this.address, bus: d.busNumber, address: d.deviceAddress };
    return d;
  }

  /** Claims the IIO interface, reads its pipes and the context attributes, resets the pipes. */
  private async setUp(d: UsbDevice, where: string): Promise<void> {
    const cfg = d.configDescriptor;
    const intf = this.address.intf;
    const alts = cfg?.interfaces[intf];
    if (!alts?.length) {
      throw new IioError('ENXIO', `USB device ${where} has no interface ${intf}`);
    }
    const alt = alts[0];
    const name = await stringDescriptor(d, alt.iInterface).catch(() => undefined);
    if (name !== 'IIO') {
      throw new IioError(
        'ENXIO',
        `interface ${intf} of USB device ${where} is not iiod's (its name is ${name === undefined ? 'not set' : `"${name}"`}, not "IIO")`,
      );
    }
    // libiio: an even number of endpoints, IN and OUT interleaved
    const eps = alt.endpoints;
    if (eps.length < 2 || eps.length % 2) {
      throw new IioError('EINVAL', `USB device ${where}: invalid configuration of endpoints`);
    }
    const couples: Couple[] = [];
    for (let i = 0; i < eps.length; i += 2) {
      const a = eps[i];
      const b = eps[i + 1];
      if (!(a.bEndpointAddress & 0x80) || b.bEndpointAddress & 0x80) {
        throw new IioError('EINVAL', `USB device ${where}: invalid configuration of endpoints`);
      }
      couples.push({
        in: a.bEndpointAddress,
        out: b.bEndpointAddress,
        inPacket: a.wMaxPacketSize || 512,
        outPacket: b.wMaxPacketSize || 512,
      });
    }
    try {
      d.setAutoDetachKernelDriver(true);
    } catch {
      // not supported on every platform; claiming says what is wrong
    }
    try {
      d.interface(intf).claim();
    } catch (err) {
      const errno = (err as UsbError).errno;
      if (errno === ERROR_BUSY) {
        throw new IioError(
          'EBUSY',
          `the IIO interface of USB device ${where} is claimed by another program (another iiokit or libiio client)`,
          {},
          { cause: err },
        );
      }
      throw usbError(err, `cannot claim interface ${intf} of USB device ${where}`);
    }
    const dd = d.deviceDescriptor;
    const [vendor, product, serial] = await Promise.all(
      [dd.iManufacturer, dd.iProduct, dd.iSerialNumber].map((i) =>
        stringDescriptor(d, i).catch(() => undefined),
      ),
    );
    if (!this.identity) {
      this.identity = {
        vid: dd.idVendor,
        pid: dd.idProduct,
        serial,
        ports: (d.portNumbers ?? []).join('.'),
      };
    }
    // libiio's usb_populate_context_attrs, in its order
    const attrs: Array<readonly [string, string]> = [
      ['uri', formatUsbUri({ bus: d.busNumber, address: d.deviceAddress, intf })],
      ['usb,idVendor', hex4(dd.idVendor)],
      ['usb,idProduct', hex4(dd.idProduct)],
      ['usb,release', `${(dd.bcdUSB >> 8) & 0xf}.${(dd.bcdUSB >> 4) & 0xf}`],
    ];
    if (vendor !== undefined) attrs.push(['usb,vendor', vendor]);
    if (product !== undefined) attrs.push(['usb,product', product]);
    if (serial !== undefined) attrs.push(['usb,serial', serial]);
    const lib = libusbVersion();
    if (lib) attrs.push(['usb,libusb', lib]);
    this.attrs = attrs;
    this.couples = couples;
    this.used.clear();
    this.closing.clear();
    await this.control(d, CMD_RESET_PIPES, 0, 'reset pipes');
  }

  /** One of iiod's vendor requests on the interface. */
  private async control(d: UsbDevice, req: number, value: number, what: string): Promise<void> {
    const saved = d.timeout;
    d.timeout = PIPE_CTRL_TIMEOUT_MS;
    try {
      await cb<unknown>((done) =>
        d.controlTransfer(
          VENDOR_OUT_INTERFACE,
          req,
          value,
          this.address.intf,
          Buffer.alloc(0),
          (e) => done(e),
        ),
      );
    } catch (err) {
      throw this.transferError(err, `${what} on USB device ${devName(d)}`, true);
    } finally {
      d.timeout = saved;
    }
  }

  /** Maps a usb error; a vanished device makes the link find it again next time. */
  transferError(err: unknown, what: string, transferStatus: boolean): IioError {
    const errno = (err as UsbError | undefined)?.errno;
    const gone = transferStatus ? errno === TRANSFER_NO_DEVICE : errno === ERROR_NO_DEVICE;
    if (gone) {
      this.forget();
      return new LinkLostError(
        'ENODEV',
        `the USB device ${this.identity ? `${hex4(this.identity.vid)}:${hex4(this.identity.pid)}` : ''} at ${this.address.bus}.${this.address.address} is gone (unplugged, reset or its gadget unbound)`,
        {},
        { cause: err },
      );
    }
    return usbError(err, what, transferStatus);
  }

  /** Drops a device that went away; the next connect looks for it again. */
  forget(): void {
    const d = this.dev;
    this.dev = undefined;
    this.used.clear();
    this.closing.clear();
    if (d) this.closeWhenIdle(d);
  }

  /** Transports alive per device handle: a handle is closed only once none is. */
  private readonly live = new Map<UsbDevice, number>();
  private idleWaiters: Array<() => void> = [];

  private closeWhenIdle(d: UsbDevice): void {
    if (this.dev === d || (this.live.get(d) ?? 0) > 0) return;
    this.live.delete(d);
    held.delete(d);
    try {
      d.close();
    } catch {
      // already gone
    }
  }

  async connect(purpose: 'control' | 'stream', timeoutMs: number): Promise<Transport> {
    const d = await this.device();
    let pipe = 0;
    if (purpose === 'control') {
      await this.closing.get(0);
    } else {
      pipe = -1;
      for (let i = 1; i < this.couples.length; i++) {
        if (!this.used.has(i)) {
          pipe = i;
          break;
        }
      }
      if (pipe < 0) {
        throw new IioError(
          'EBUSY',
          `all ${this.couples.length - 1} buffer pipes of USB device ${devName(d)} are in use (iiod -n sets how many)`,
        );
      }
      await this.closing.get(pipe);
    }
    this.used.add(pipe);
    try {
      await this.control(d, CMD_OPEN_PIPE, pipe, `open pipe ${pipe}`);
    } catch (err) {
      this.used.delete(pipe);
      throw err;
    }
    this.live.set(d, (this.live.get(d) ?? 0) + 1);
    const t = new UsbPipeTransport(this, d, pipe, this.couples[pipe]);
    try {
      await t.drain0(Math.min(DRAIN_QUIET_MS, timeoutMs > 0 ? timeoutMs : DRAIN_QUIET_MS));
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
  release(d: UsbDevice, pipe: number): void {
    this.live.set(d, Math.max(0, (this.live.get(d) ?? 1) - 1));
    if (this.dev !== d) {
      // the device was lost: nothing to close on it, and its handle may go now
      this.closeWhenIdle(d);
    } else {
      const p = this.control(d, CMD_CLOSE_PIPE, pipe, `close pipe ${pipe}`)
        .catch(() => undefined)
        .finally(() => {
          if (this.closing.get(pipe) === p) this.closing.delete(pipe);
          if (this.dev === d) this.used.delete(pipe);
        });
      this.closing.set(pipe, p);
    }
    if (!this.live.get(d)) for (const w of this.idleWaiters.splice(0)) w();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.opening?.catch(() => undefined);
    const d = this.dev;
    if (!d) return;
    if (this.live.get(d)) {
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
    await this.control(d, CMD_RESET_PIPES, 0, 'reset pipes').catch(() => undefined);
    await cb<void>((done) => d.interface(this.address.intf).release(done)).catch(() => undefined);
    this.dev = undefined;
    this.closeWhenIdle(d);
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
  private inXfer?: UsbTransfer;
  private outXfer?: UsbTransfer;
  private readBusy = false;
  private bounce: Buffer;
  private queue: Pending[] = [];
  private writing = false;
  private drained: Array<() => void> = [];
  private ended = false;
  private pendingEnd?: { error?: Error };
  closed = false;

  constructor(
    private readonly link: UsbLink,
    private readonly dev: UsbDevice,
    readonly pipe: number,
    private readonly couple: Couple,
  ) {
    this.description = `${link.description} pipe ${pipe}`;
    this.bounce = Buffer.allocUnsafe(Math.max(couple.inPacket, 512));
  }

  private transfer(ep: number, done: (err: UsbError | undefined, n: number) => void): UsbTransfer {
    const usb = loadUsb();
    return new usb.Transfer(this.dev, ep, TRANSFER_TYPE_BULK, 0, (err, _buf, n) =>
      done(err ?? undefined, n),
    );
  }

  /**
   * Reads and drops what a previous user of the pipe left behind (a reply iiod wrote
   * after that client went away, or "-22" from a session that ended without EXIT),
   * until the pipe stays quiet for `quietMs`. libiio's own client does not, which is
   * why it fails on the second connection to a gadget.
   */
  async drain0(quietMs: number): Promise<void> {
    const usb = loadUsb();
    for (let i = 0; i < 64; i++) {
      // Our own timer, not libusb's: the prebuilt libusb may check transfer timeouts
      // only when its event loop wakes (up to 60 s later); a cancel wakes it at once.
      const n = await new Promise<number>((resolve, reject) => {
        let quiet = false;
        const t = new usb.Transfer(
          this.dev,
          this.couple.in,
          TRANSFER_TYPE_BULK,
          0,
          (err, _b, got) => {
            clearTimeout(timer);
            if (!err) resolve(got);
            else if (quiet && err.errno === TRANSFER_CANCELLED) resolve(-1);
            else reject(this.link.transferError(err, `read from ${this.description}`, true));
          },
        );
        const timer = setTimeout(() => {
          quiet = true;
          try {
            t.cancel();
          } catch {
            // completed meanwhile
          }
        }, quietMs);
        try {
          t.submit(this.bounce);
        } catch (err) {
          clearTimeout(timer);
          reject(this.link.transferError(err, `read from ${this.description}`, false));
        }
      });
      if (n < 0) return;
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

  /** Submits the IN transfer the sink's pending read needs, if any and none is under way. */
  private pumpRead(): void {
    if (this.readBusy || this.closed || !this.sink?.want) return;
    const want = this.sink.want();
    if (!want) return;
    const mps = this.couple.inPacket;
    let into: Buffer;
    let direct = false;
    if (want.target && want.target.length >= mps) {
      // whole packets straight into the caller's memory: iiod owes us all of them
      into = want.target.subarray(
        0,
        Math.min(MAX_TRANSFER, want.target.length - (want.target.length % mps)),
      );
      direct = true;
    } else {
      // one packet's worth (or the rest of a short payload): a transfer of whole packets
      // can never overflow, and never waits for bytes iiod does not owe us
      const n = Math.max(
        mps,
        Math.min(MAX_TRANSFER, Math.ceil(Math.max(1, want.atLeast) / mps) * mps),
      );
      if (this.bounce.length < n) this.bounce = Buffer.allocUnsafe(n);
      into = want.atLeast ? this.bounce.subarray(0, n) : this.bounce.subarray(0, mps);
    }
    this.readBusy = true;
    if (!this.inXfer) {
      this.inXfer = this.transfer(this.couple.in, (err, n) => this.readDone(err, n));
    }
    this.lastDirect = direct;
    this.lastInto = into;
    try {
      this.inXfer.submit(into);
    } catch (err) {
      this.readBusy = false;
      this.finish(this.link.transferError(err, `read from ${this.description}`, false));
    }
  }

  private lastDirect = false;
  private lastInto?: Buffer;

  private readDone(err: UsbError | undefined, n: number): void {
    this.readBusy = false;
    if (this.closed) {
      this.maybeRelease();
      return;
    }
    if (err) {
      if (err.errno === TRANSFER_CANCELLED) return;
      this.finish(this.link.transferError(err, `read from ${this.description}`, true));
      return;
    }
    const into = this.lastInto;
    if (n > 0 && into) {
      if (this.lastDirect) this.sink?.filled?.(n);
      else this.sink?.data(into.subarray(0, n), true);
    }
    this.pumpRead();
  }

  write(data: Uint8Array, kind: WriteKind = 'data'): void {
    if (this.closed) return;
    const buf = Buffer.isBuffer(data)
      ? data
      : Buffer.from(data.buffer, data.byteOffset, data.length);
    if (!buf.length) return;
    // iiod reads a command line with one large read: a transfer of whole packets would
    // not end it, a zero-length packet does. Payloads are read by length and must not
    // get one (iiod would read it as an empty read).
    this.queue.push({
      data: buf,
      zlp: kind === 'command' && buf.length % this.couple.outPacket === 0,
    });
    this.pumpWrite();
  }

  private pumpWrite(): void {
    if (this.writing || this.closed) return;
    const next = this.queue[0];
    if (!next) {
      for (const r of this.drained.splice(0)) r();
      return;
    }
    this.writing = true;
    const piece = next.data.subarray(0, Math.min(MAX_TRANSFER, next.data.length));
    const rest = next.data.subarray(piece.length);
    if (!this.outXfer) {
      this.outXfer = this.transfer(this.couple.out, (err) => this.writeDone(err));
    }
    this.afterWrite = () => {
      if (rest.length) this.queue[0] = { data: rest, zlp: next.zlp };
      else if (next.zlp && piece.length) this.queue[0] = { data: Buffer.alloc(0), zlp: false };
      else this.queue.shift();
    };
    try {
      this.outXfer.submit(piece);
    } catch (err) {
      this.writing = false;
      this.finish(this.link.transferError(err, `write to ${this.description}`, false));
    }
  }

  private afterWrite?: () => void;

  private writeDone(err: UsbError | undefined): void {
    this.writing = false;
    if (this.closed) {
      this.maybeRelease();
      return;
    }
    if (err) {
      if (err.errno === TRANSFER_CANCELLED) return;
      this.finish(this.link.transferError(err, `write to ${this.description}`, true));
      return;
    }
    this.afterWrite?.();
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
    if (this.readBusy) this.cancelQuietly(this.inXfer);
    if (this.writing) this.cancelQuietly(this.outXfer);
    this.maybeRelease();
  }

  private cancelQuietly(x: UsbTransfer | undefined): void {
    try {
      x?.cancel();
    } catch {
      // already completed
    }
  }

  private released = false;

  /** libusb must not close a handle with transfers pending: release after the last. */
  private maybeRelease(): void {
    if (this.released || this.readBusy || this.writing) return;
    this.released = true;
    this.link.release(this.dev, this.pipe);
  }

  close(): void {
    this.finish();
  }
}

/** A found iiod USB function. */
export interface UsbContextEntry extends ContextInfoEntry {
  readonly address: UsbAddress;
}

/**
 * Lists the USB devices with an "IIO" interface (libiio's usb_context_scan), described
 * as `vid:pid (manufacturer product), serial=...`. Devices that cannot be opened (no
 * permission, busy) are skipped, as libiio does.
 */
export async function scanUsb(args?: string): Promise<UsbContextEntry[]> {
  const filter: UsbIdFilter | undefined = parseUsbFilter(args);
  const usb = loadUsb();
  const out: UsbContextEntry[] = [];
  for (const d of usb.getDeviceList()) {
    const dd = d.deviceDescriptor;
    if (
      filter &&
      (dd.idVendor !== filter.vid || (filter.pid !== undefined && dd.idProduct !== filter.pid))
    ) {
      continue;
    }
    const done = peek(d);
    if (!done) continue;
    try {
      const intf = await findIioInterface(d);
      if (intf < 0) continue;
      const [m, p, s] = await Promise.all(
        [dd.iManufacturer, dd.iProduct, dd.iSerialNumber].map((i) =>
          stringDescriptor(d, i).catch(() => undefined),
        ),
      );
      const address = { bus: d.busNumber, address: d.deviceAddress, intf };
      out.push({
        uri: formatUsbUri(address),
        description: `${hex4(dd.idVendor)}:${hex4(dd.idProduct)} (${m ?? ''} ${p ?? ''}), serial=${s ?? ''}`,
        address,
      });
    } catch {
      // a device that stops answering is not listed
    } finally {
      done();
    }
  }
  return out;
}

/** Opens a `usb:` context: `usb:` alone takes the only IIO device there is (libiio's rule). */
export async function openUsbBackend(
  uri: string,
  options: BackendOpenOptions = {},
): Promise<IiodBackend> {
  const rest = uri.slice(uri.indexOf(':') + 1);
  let address = parseUsbAddress(rest, uri);
  const usb = loadUsb();
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
  return IiodBackend.open(uri, new UsbLink(usb, address), options as IiodOptions);
}
