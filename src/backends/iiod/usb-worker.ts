/**
 * The libusb side of `usb:`, in a worker thread (see usb-host.ts for why). It owns one
 * libusb context (the `usb` package makes one per thread) and runs what the main thread
 * asks: scan, open a device's IIO interface, vendor control requests, bulk transfers.
 * No protocol here: bytes in, bytes out.
 */
import { parentPort } from 'node:worker_threads';
import type { UsbRequest, UsbReply, WireError, UsbDeviceInfo, UsbScanEntry } from './usb-host';

type UsbModule = typeof import('usb');
type Device = import('usb').Device;
type Transfer = import('usb').Transfer;
type UsbError = Error & { errno?: number };

const port = parentPort;
let usb: UsbModule | undefined;
let loadError: string | undefined;
try {
  usb = require('usb') as UsbModule;
} catch (err) {
  loadError = (err as Error).message;
}

const TRANSFER_TYPE_BULK = 2;
const VENDOR_OUT_INTERFACE = 0x41;
const CMD_RESET_PIPES = 0;
const PIPE_CTRL_TIMEOUT_MS = 1000;

function wire(err: unknown, status: boolean): WireError {
  return {
    message: (err as Error | undefined)?.message ?? String(err),
    errno: (err as UsbError | undefined)?.errno,
    status,
  };
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

function stringDescriptor(d: Device, index: number): Promise<string | undefined> {
  if (!index) return Promise.resolve(undefined);
  return cb<string | undefined>((done) => d.getStringDescriptor(index, done)).catch(
    () => undefined,
  );
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

/** The interface index named "IIO" (libiio's iio_usb_match_device), or -1. */
async function findIioInterface(d: Device): Promise<number> {
  const cfg = d.configDescriptor;
  if (!cfg) return -1;
  for (let i = 0; i < cfg.interfaces.length; i++) {
    for (const alt of cfg.interfaces[i]) {
      if (alt.iInterface && (await stringDescriptor(d, alt.iInterface)) === 'IIO') return i;
    }
  }
  return -1;
}

async function strings(d: Device): Promise<Array<string | undefined>> {
  const dd = d.deviceDescriptor;
  const out: Array<string | undefined> = [];
  for (const i of [dd.iManufacturer, dd.iProduct, dd.iSerialNumber]) {
    out.push(await stringDescriptor(d, i));
  }
  return out;
}

/** libusb_open for a look; undefined when it cannot be opened (permissions, busy). */
function tryOpen(d: Device): boolean {
  try {
    d.open(false);
    return true;
  } catch {
    return false;
  }
}

function tryClose(d: Device): void {
  try {
    d.close();
  } catch {
    // gone, or transfers pending: the handle goes with the device
  }
}

async function scan(vid?: number, pid?: number): Promise<UsbScanEntry[]> {
  const out: UsbScanEntry[] = [];
  for (const d of usb!.getDeviceList()) {
    const dd = d.deviceDescriptor;
    if (vid !== undefined && dd.idVendor !== vid) continue;
    if (pid !== undefined && dd.idProduct !== pid) continue;
    if (!tryOpen(d)) continue;
    try {
      const intf = await findIioInterface(d);
      if (intf < 0) continue;
      const [m, p, s] = await strings(d);
      out.push({
        bus: d.busNumber,
        address: d.deviceAddress,
        intf,
        vid: dd.idVendor,
        pid: dd.idProduct,
        manufacturer: m,
        product: p,
        serial: s,
      });
    } catch {
      // a device that stops answering is not listed
    } finally {
      tryClose(d);
    }
  }
  return out;
}

// ---- the open device ----

let dev: Device | undefined;
let intf = 0;
let couples: Array<{ in: number; out: number }> = [];
/** Transfers under way, per pipe and direction (for cancel). */
const pending = new Map<string, Transfer>();

class Refused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function openDevice(req: Extract<UsbRequest, { op: 'open' }>): Promise<UsbDeviceInfo> {
  if (dev) throw new Refused('EBUSY', 'internal: a device is already open in this worker');
  let d: Device | undefined;
  const list = usb!.getDeviceList();
  if (req.serial !== undefined || req.ports !== undefined) {
    for (const x of list) {
      const dd = x.deviceDescriptor;
      if (dd.idVendor !== req.vid || dd.idProduct !== req.pid) continue;
      if (req.serial) {
        if (!tryOpen(x)) continue;
        const s = await stringDescriptor(x, dd.iSerialNumber);
        tryClose(x);
        if (s !== req.serial) continue;
      } else if ((x.portNumbers ?? []).join('.') !== req.ports) continue;
      d = x;
      break;
    }
    if (!d) {
      throw new Refused(
        'ENODEV',
        `the USB device ${hex4(req.vid ?? 0)}:${hex4(req.pid ?? 0)}${req.serial ? ` serial ${req.serial}` : ''} is not connected`,
      );
    }
  } else {
    d = list.find((x) => x.busNumber === req.bus && x.deviceAddress === req.address);
    if (!d) {
      throw new Refused(
        'ENODEV',
        `no USB device at bus ${req.bus}, address ${req.address} (usb:${req.bus}.${req.address}); list them with "iiokit scan usb"`,
      );
    }
  }
  const dd = d.deviceDescriptor;
  const where = `${d.busNumber}.${d.deviceAddress} (${hex4(dd.idVendor)}:${hex4(dd.idProduct)})`;
  try {
    d.open();
  } catch (err) {
    const errno = (err as UsbError).errno;
    if (errno === -3) {
      const node = `/dev/bus/usb/${String(d.busNumber).padStart(3, '0')}/${String(d.deviceAddress).padStart(3, '0')}`;
      throw new Refused(
        'EACCES',
        `no permission to open USB device ${where} (${node}): add a udev rule for it (see docs/usb-serial.md) or run as root`,
      );
    }
    if (errno === -4) throw new Refused('ENODEV', `USB device ${where} is gone`);
    throw new Refused('EIO', `cannot open USB device ${where}: ${(err as Error).message}`);
  }
  try {
    intf = req.intf;
    const alts = d.configDescriptor?.interfaces[intf];
    if (!alts?.length) throw new Refused('ENXIO', `USB device ${where} has no interface ${intf}`);
    const alt = alts[0];
    const name = await stringDescriptor(d, alt.iInterface);
    if (name !== 'IIO') {
      throw new Refused(
        'ENXIO',
        `interface ${intf} of USB device ${where} is not iiod's (its name is ${name === undefined ? 'not set' : `"${name}"`}, not "IIO")`,
      );
    }
    // libiio's usb_verify_eps: an even number of endpoints, IN and OUT interleaved
    const eps = alt.endpoints;
    const bad = eps.length < 2 || eps.length % 2;
    const found: Array<{ in: number; out: number; inPacket: number; outPacket: number }> = [];
    for (let i = 0; !bad && i < eps.length; i += 2) {
      const a = eps[i];
      const b = eps[i + 1];
      if (!(a.bEndpointAddress & 0x80) || b.bEndpointAddress & 0x80) {
        throw new Refused('EINVAL', `USB device ${where}: invalid configuration of endpoints`);
      }
      found.push({
        in: a.bEndpointAddress,
        out: b.bEndpointAddress,
        inPacket: a.wMaxPacketSize || 512,
        outPacket: b.wMaxPacketSize || 512,
      });
    }
    if (bad) throw new Refused('EINVAL', `USB device ${where}: invalid configuration of endpoints`);
    try {
      d.setAutoDetachKernelDriver(true);
    } catch {
      // not supported everywhere; claiming says what is wrong
    }
    try {
      d.interface(intf).claim();
    } catch (err) {
      if ((err as UsbError).errno === -6) {
        throw new Refused(
          'EBUSY',
          `the IIO interface of USB device ${where} is claimed by another program (another iiokit or libiio client)`,
        );
      }
      throw new Refused(
        'EIO',
        `cannot claim interface ${intf} of USB device ${where}: ${(err as Error).message}`,
      );
    }
    const [m, p, s] = await strings(d);
    dev = d;
    couples = found;
    await control(CMD_RESET_PIPES, 0);
    return {
      bus: d.busNumber,
      address: d.deviceAddress,
      intf,
      vid: dd.idVendor,
      pid: dd.idProduct,
      bcdUSB: dd.bcdUSB,
      manufacturer: m,
      product: p,
      serial: s,
      ports: (d.portNumbers ?? []).join('.'),
      couples: found,
    };
  } catch (err) {
    dev = undefined;
    tryClose(d);
    throw err;
  }
}

function control(req: number, value: number): Promise<void> {
  const d = dev!;
  d.timeout = PIPE_CTRL_TIMEOUT_MS;
  return cb<unknown>((done) =>
    d.controlTransfer(VENDOR_OUT_INTERFACE, req, value, intf, Buffer.alloc(0), (e) => done(e)),
  ).then(() => undefined);
}

function bulk(key: string, ep: number, buf: Buffer): Promise<{ n: number; buf: Buffer }> {
  return new Promise((resolve, reject) => {
    const t = new usb!.Transfer(dev!, ep, TRANSFER_TYPE_BULK, 0, (err, _b, n) => {
      pending.delete(key);
      if (err) reject(Object.assign(err, { transferStatus: true }));
      else resolve({ n, buf });
    });
    try {
      t.submit(buf);
      pending.set(key, t);
    } catch (err) {
      reject(err as Error);
    }
  });
}

async function closeDevice(): Promise<void> {
  const d = dev;
  if (!d) return;
  for (const t of pending.values()) {
    try {
      t.cancel();
    } catch {
      // done meanwhile
    }
  }
  await control(CMD_RESET_PIPES, 0).catch(() => undefined);
  await cb<void>((done) => d.interface(intf).release(done)).catch(() => undefined);
  dev = undefined;
  tryClose(d);
}

async function handle(req: UsbRequest): Promise<{ reply: UsbReply; transfer?: ArrayBuffer[] }> {
  if (!usb) return { reply: { id: req.id, loadError } };
  switch (req.op) {
    case 'scan':
      return { reply: { id: req.id, result: await scan(req.vid, req.pid) } };
    case 'open':
      return { reply: { id: req.id, result: await openDevice(req) } };
    case 'control':
      if (!dev) throw new Refused('ENODEV', 'the USB device is not open');
      await control(req.req, req.value);
      return { reply: { id: req.id, result: null } };
    case 'read': {
      if (!dev) throw new Refused('ENODEV', 'the USB device is not open');
      const { n, buf } = await bulk(`${req.pipe}i`, couples[req.pipe].in, Buffer.alloc(req.length));
      return {
        reply: { id: req.id, result: { n, data: buf.buffer as ArrayBuffer } },
        transfer: [buf.buffer as ArrayBuffer],
      };
    }
    case 'write': {
      if (!dev) throw new Refused('ENODEV', 'the USB device is not open');
      const key = `${req.pipe}o`;
      const ep = couples[req.pipe].out;
      const { n } = await bulk(key, ep, Buffer.from(req.data));
      // a zero-length packet ends a command line that filled whole packets
      if (req.zlp) await bulk(key, ep, Buffer.alloc(0));
      return { reply: { id: req.id, result: n } };
    }
    case 'cancel': {
      for (const k of [`${req.pipe}i`, `${req.pipe}o`]) {
        try {
          pending.get(k)?.cancel();
        } catch {
          // done meanwhile
        }
      }
      return { reply: { id: req.id, result: null } };
    }
    case 'close':
      await closeDevice();
      return { reply: { id: req.id, result: null } };
  }
}

port?.on('message', (req: UsbRequest) => {
  handle(req).then(
    ({ reply, transfer }) => port.postMessage(reply, transfer ?? []),
    (err: unknown) => {
      const e: WireError =
        err instanceof Refused
          ? { message: err.message, code: err.code, status: false }
          : wire(err, (err as { transferStatus?: boolean }).transferStatus === true);
      port.postMessage({ id: req.id, error: e } satisfies UsbReply);
    },
  );
});
