/**
 * libusb lives in a worker thread, one per `usb:` link (and one short-lived per scan).
 *
 * Why: the `usb` package keeps one libusb context per thread, and libusb (built with
 * udev) learns of devices plugged in after its start only through udevd's events. Where
 * no udevd runs (containers, small boards, the test VM) a context never sees a device
 * that came back: an unplugged Pluto, a rebound gadget. A fresh worker is a fresh libusb
 * context that enumerates the bus anew; a lost link ends its worker and the reconnect
 * starts another. Scans get a fresh view the same way.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { IioError } from '../../errors';

/** An error from the worker: a libusb error number, or one of ours with its code. */
export interface WireError {
  readonly message: string;
  /** libusb error (negative) or transfer status (positive, when `status`). */
  readonly errno?: number;
  readonly status: boolean;
  /** Set for errors the worker phrased itself (no device, no permission...). */
  readonly code?: string;
}

export interface UsbScanEntry {
  readonly bus: number;
  readonly address: number;
  readonly intf: number;
  readonly vid: number;
  readonly pid: number;
  readonly manufacturer?: string;
  readonly product?: string;
  readonly serial?: string;
}

export interface UsbCouple {
  readonly in: number;
  readonly out: number;
  readonly inPacket: number;
  readonly outPacket: number;
}

export interface UsbDeviceInfo extends UsbScanEntry {
  readonly bcdUSB: number;
  readonly ports: string;
  readonly couples: readonly UsbCouple[];
}

type Body =
  | { op: 'scan'; vid?: number; pid?: number }
  | {
      op: 'open';
      intf: number;
      bus?: number;
      address?: number;
      /** Find the device by identity (after a loss): ids and serial, else port path. */
      vid?: number;
      pid?: number;
      serial?: string;
      ports?: string;
    }
  | { op: 'control'; req: number; value: number }
  | { op: 'read'; pipe: number; length: number }
  | { op: 'write'; pipe: number; data: ArrayBuffer; zlp: boolean }
  | { op: 'cancel'; pipe: number }
  | { op: 'close' };

export type UsbRequest = Body & { readonly id: number };

export type UsbReply =
  | { readonly id: number; readonly result: unknown }
  | { readonly id: number; readonly error: WireError }
  | { readonly id: number; readonly loadError: string | undefined };

/** The reply to a read: `n` bytes at the start of `data`. */
export interface ReadResult {
  readonly n: number;
  readonly data: ArrayBuffer;
}

/** A worker thread running libusb, and the requests under way to it. */
export class UsbHost {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: unknown) => void }
  >();
  private dead?: Error;
  private refs = 0;

  constructor() {
    this.worker = new Worker(join(__dirname, 'usb-worker.js'));
    // an idle worker must not keep the process alive
    this.worker.unref();
    this.worker.on('message', (m: UsbReply) => this.answer(m));
    this.worker.on('error', (err) => this.die(err));
    this.worker.on('exit', (code) => this.die(new Error(`the USB worker exited (${code})`)));
  }

  private answer(m: UsbReply): void {
    const w = this.waiting.get(m.id);
    if (!w) return;
    this.waiting.delete(m.id);
    this.unrefOne();
    if ('loadError' in m) {
      w.reject(
        new IioError(
          'ENOSYS',
          `usb: contexts need the "usb" npm package (libusb) and its native binary for ${process.platform}-${process.arch}, which could not be loaded: ${m.loadError ?? 'unknown error'}. Install it with "npm install usb@2".`,
        ),
      );
    } else if ('error' in m) w.reject(m.error);
    else w.resolve(m.result);
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    for (const [, w] of this.waiting)
      w.reject({ message: err.message, status: false, code: 'EIO' });
    this.waiting.clear();
  }

  /** Keeps the process alive while a request is under way (a transfer, a scan). */
  private refOne(): void {
    if (this.refs++ === 0) this.worker.ref();
  }

  private unrefOne(): void {
    if (--this.refs === 0) this.worker.unref();
  }

  /** Sends a request; rejects with a WireError (or an IioError if libusb cannot load). */
  request<T>(body: Body, transfer?: ArrayBuffer[]): Promise<T> {
    if (this.dead) {
      return Promise.reject({ message: this.dead.message, status: false, code: 'EIO' });
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.refOne();
      this.worker.postMessage({ ...body, id } as UsbRequest, transfer ?? []);
    });
  }

  /** Ends the worker (its libusb context, and any handle it still has). */
  async terminate(): Promise<void> {
    this.die(new Error('the USB worker was stopped'));
    await this.worker.terminate().catch(() => undefined);
  }
}

/** Opens a worker for one request (a scan), then ends it. */
export async function withUsbHost<T>(f: (h: UsbHost) => Promise<T>): Promise<T> {
  const h = new UsbHost();
  try {
    return await f(h);
  } finally {
    await h.terminate();
  }
}
