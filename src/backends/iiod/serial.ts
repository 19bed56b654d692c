/**
 * `serial:` — iiod (or a microcontroller's tinyiiod) over a UART, through the serialport
 * project's native layer, `@serialport/bindings-cpp`. The same ASCII protocol as `ip:`,
 * on a link that carries a single connection: buffers take turns with the context's
 * requests on it (shared-stream.ts), and deadlines count from the last byte received
 * (a large reply at 115200 baud is slow, not late).
 *
 * A UART does not tell the server we went away: a reply it was sending when we gave up
 * (a timeout) still arrives after we reopen the port. Every opening therefore flushes
 * and waits for the line to stay quiet before the first request.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { IioError } from '../../errors';
import { tracer } from '../../util/trace';
import type { BackendOpenOptions } from '../../model/backend';
import { IiodBackend, type IiodOptions } from './client';
import { formatSerialUri, parseSerialUri, type SerialParams } from './serial-uri';
import { LinkLostError, type Link, type Transport, type TransportSink } from './transport';

type Bindings = typeof import('@serialport/bindings-cpp');
type Port = Awaited<ReturnType<ReturnType<Bindings['autoDetect']>['open']>>;

const trace = tracer('serial');

/** libiio 0.24's serial timeout (DEFAULT_TIMEOUT_MS in serial.c), counted per byte there too. */
export const SERIAL_DEFAULT_TIMEOUT_MS = 1000;
/** The line must stay quiet this long (plus 64 characters' time) after opening. */
const QUIET_MS = 50;

let bindings: Bindings | undefined;

/** Loads the serialport bindings on first use, with an error that says what is missing. */
export function loadSerialBindings(): Bindings {
  if (bindings) return bindings;
  try {
    bindings = require('@serialport/bindings-cpp') as Bindings;
    return bindings;
  } catch (err) {
    throw new IioError(
      'ENOSYS',
      `serial: contexts need the "@serialport/bindings-cpp" npm package and its native binary for ${process.platform}-${process.arch}, which could not be loaded: ${(err as Error).message}. Install it with "npm install @serialport/bindings-cpp".`,
      {},
      { cause: err },
    );
  }
}

/** A serialport error as an IioError that says what to do. */
function openError(err: unknown, port: string): IioError {
  const msg = (err as Error | undefined)?.message ?? String(err);
  const o = { cause: err };
  if (/No such file|ENOENT/i.test(msg)) {
    return new LinkLostError('ENOENT', `serial port ${port} does not exist (${msg})`, {}, o);
  }
  if (/Permission denied|EACCES/i.test(msg)) {
    return new IioError(
      'EACCES',
      `no permission to open serial port ${port}: add your user to its group (often "dialout") or run as root (${msg})`,
      {},
      o,
    );
  }
  if (/Cannot lock port|Resource temporarily unavailable|EBUSY|busy/i.test(msg)) {
    return new IioError(
      'EBUSY',
      `serial port ${port} is in use by another program (${msg})`,
      {},
      o,
    );
  }
  if (/Inappropriate ioctl|Not a typewriter|ENOTTY/i.test(msg)) {
    return new IioError('ENOTTY', `${port} is not a serial port (${msg})`, {}, o);
  }
  return new IioError('EIO', `cannot open serial port ${port}: ${msg}`, {}, o);
}

/**
 * What libserialport calls the port's description: a USB adapter's product name, else
 * the device's name under /dev (libiio prints `<port>: <description>`).
 */
export function portDescription(port: string): string {
  let real = port;
  try {
    real = realpathSync(port);
  } catch {
    return port;
  }
  const name = real.startsWith('/dev/') ? real.slice(5) : real;
  try {
    let dir = realpathSync(`/sys/class/tty/${name.replace(/\//g, '!')}/device`);
    for (let i = 0; i < 4 && dir !== '/'; i++, dir = dirname(dir)) {
      try {
        return readFileSync(join(dir, 'product'), 'utf8').trim();
      } catch {
        // not the USB device's directory yet
      }
    }
  } catch {
    // no sysfs device (a pseudo-terminal, a built-in UART without one)
  }
  return name;
}

/** Ports of this process whose close (and so their lock's release) is under way. */
const closing = new Map<string, Promise<void>>();

/** One open serial port: a read loop feeding the sink, writes in order. */
class SerialTransport implements Transport {
  readonly idleTimeouts = true;
  private sink?: TransportSink;
  private ended = false;
  private pendingEnd?: { error?: Error };
  private writes: Promise<void> = Promise.resolve();
  private lastByte = Date.now();
  /** While set, what arrives is what a previous session left: dropped. */
  discarding = true;
  closed = false;

  constructor(
    private readonly port: Port,
    readonly description: string,
    private readonly path: string,
  ) {
    void this.readLoop();
  }

  private async readLoop(): Promise<void> {
    const buf = Buffer.allocUnsafe(64 * 1024);
    while (!this.closed) {
      let n: number;
      try {
        n = (await this.port.read(buf, 0, buf.length)).bytesRead;
      } catch (err) {
        if ((err as { canceled?: boolean }).canceled || this.closed) return;
        this.finish(
          new LinkLostError(
            'EIO',
            `${this.description} failed or went away: ${(err as Error).message}`,
            {},
            { cause: err },
          ),
        );
        return;
      }
      if (n <= 0) continue;
      this.lastByte = Date.now();
      if (!this.discarding) this.sink?.data(buf.subarray(0, n), true);
    }
  }

  /** Resolves once nothing arrived for `quietMs` (at most `maxMs`). */
  async settle(quietMs: number, maxMs: number): Promise<void> {
    const start = Date.now();
    this.lastByte = start;
    for (;;) {
      if (this.closed) throw new IioError('ECONNRESET', `${this.description} closed`);
      const now = Date.now();
      const quietFor = now - this.lastByte;
      if (quietFor >= quietMs || now - start >= maxMs) break;
      await new Promise((r) => setTimeout(r, quietMs - quietFor));
    }
    this.discarding = false;
  }

  attach(sink: TransportSink): void {
    this.sink = sink;
    if (this.pendingEnd) {
      const e = this.pendingEnd.error;
      this.pendingEnd = undefined;
      sink.end(e);
    }
  }

  write(data: Uint8Array): void {
    if (this.closed) return;
    const buf = Buffer.from(data); // the caller may reuse its memory
    this.writes = this.writes.then(async () => {
      if (this.closed) return;
      try {
        await this.port.write(buf);
      } catch (err) {
        if ((err as { canceled?: boolean }).canceled || this.closed) return;
        this.finish(
          new LinkLostError(
            'EIO',
            `cannot write to ${this.description}: ${(err as Error).message}`,
            {},
            { cause: err },
          ),
        );
      }
    });
  }

  drain(): Promise<void> {
    return this.writes;
  }

  private finish(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    trace(`${this.description} closed${error ? `: ${error.message}` : ''}`);
    this.closed = true;
    // The port's lock goes with its close: an open of the same port in this process waits
    // for it (a context closed and opened again, a redeploy) instead of finding it busy.
    const path = this.path;
    const done = this.port.close().catch(() => undefined);
    const entry = done.then(() => {
      if (closing.get(path) === entry) closing.delete(path);
    });
    closing.set(path, entry);
    if (this.sink) this.sink.end(error);
    else this.pendingEnd = { error };
  }

  close(): void {
    this.finish();
  }
}

/** A UART to one iiod. */
export class SerialLink implements Link {
  readonly multiConnection = false;
  readonly descriptionPrefix = '';
  readonly backendName = 'serial';
  readonly defaultTimeoutMs = SERIAL_DEFAULT_TIMEOUT_MS;
  private portDesc?: string;

  constructor(
    private readonly bindings: Bindings,
    readonly params: SerialParams,
  ) {}

  get description(): string {
    return `serial port ${this.params.port}`;
  }

  contextAttrs(): Array<readonly [string, string]> {
    return [['uri', formatSerialUri(this.params)]];
  }

  /** libiio's serial backend replaces the description with the port's: `<port>: <what it is>`. */
  contextDescription(): string {
    this.portDesc ??= portDescription(this.params.port);
    return `${this.params.port}: ${this.portDesc}`;
  }

  async connect(purpose: 'control' | 'stream', timeoutMs: number): Promise<Transport> {
    if (purpose === 'stream') {
      throw new IioError('ENOSYS', `${this.description} carries one connection: buffers share it`);
    }
    const p = this.params;
    if (p.flow === 'dtrdsr') {
      throw new IioError('ENOTSUP', 'DTR/DSR flow control (d) is not supported by serialport');
    }
    if (p.parity === 'mark' || p.parity === 'space') {
      throw new IioError('ENOTSUP', `${p.parity} parity is not supported by serialport on Linux`);
    }
    if (p.dataBits > 8) {
      throw new IioError(
        'ENOTSUP',
        `${p.dataBits} data bits are not supported by serialport (5 to 8)`,
      );
    }
    await closing.get(p.port);
    let port: Port;
    try {
      port = await this.bindings.autoDetect().open({
        path: p.port,
        baudRate: p.baudRate,
        dataBits: p.dataBits as 5 | 6 | 7 | 8,
        stopBits: p.stopBits as 1 | 2,
        parity: p.parity as 'none' | 'odd' | 'even',
        rtscts: p.flow === 'rtscts',
        xon: p.flow === 'xonxoff',
        xoff: p.flow === 'xonxoff',
        lock: true,
      });
    } catch (err) {
      const e = openError(err, p.port);
      trace(`${p.port}: ${e.message}`);
      throw e;
    }
    this.portDesc = portDescription(p.port);
    trace(`${p.port} open at ${p.baudRate} baud (${this.portDesc})`);
    // libiio empties both directions after opening (sp_flush)
    await port.flush().catch(() => undefined);
    const t = new SerialTransport(port, this.description, p.port);
    const charMs = (10 * 1000) / p.baudRate;
    try {
      await t.settle(QUIET_MS + 64 * charMs, Math.max(timeoutMs, 1000));
    } catch (err) {
      t.close();
      throw err;
    }
    return t;
  }
}

/** Opens a `serial:` context. */
export async function openSerialBackend(
  uri: string,
  options: BackendOpenOptions = {},
): Promise<IiodBackend> {
  const params = parseSerialUri(uri.slice(uri.indexOf(':') + 1), uri);
  const b = loadSerialBindings();
  return IiodBackend.open(uri, new SerialLink(b, params), options as IiodOptions);
}
