import { contextToXml, type XmlWriteOptions } from '../xml/writer';
import { EventEmitter } from 'node:events';
import type { Backend, BackendStatusEvent } from './backend';
import { IioError } from '../errors';
import { Device } from './device';
import type { ContextInfo, ContextVersion } from './info';

/** Events a Context emits: `status` for all, and one event per type. */
export interface ContextEvents {
  status: [BackendStatusEvent];
  disconnected: [Error];
  reconnecting: [{ attempt: number; delayMs: number }];
  reconnected: [{ changed: boolean }];
}

/**
 * An IIO context: the devices of one machine (local kernel, remote iiod, USB gadget,
 * XML description or emulator), as libiio's iio_context.
 *
 * Emits `disconnected`, `reconnecting`, `reconnected` (remote contexts) and `status`.
 */
export class Context extends EventEmitter<ContextEvents> {
  readonly devices: readonly Device[];
  private closed = false;

  /** @internal use createContext(). */
  constructor(private readonly backend: Backend) {
    super();
    this.devices = backend.info.devices.map((d) => new Device(this, d, backend));
  }

  /** @internal called by the backend's status hook. */
  handleStatus(ev: BackendStatusEvent): void {
    this.emit('status', ev);
    if (ev.type === 'disconnected') this.emit('disconnected', ev.error);
    else if (ev.type === 'reconnecting')
      this.emit('reconnecting', { attempt: ev.attempt, delayMs: ev.delayMs });
    else if (ev.type === 'reconnected') this.emit('reconnected', { changed: ev.changed });
  }

  /** @internal the description as the backend built it. */
  get info(): ContextInfo {
    return this.backend.info;
  }

  /** The URI it was opened with (`local:`, `ip:192.168.2.1`, `xml:ctx.xml`). */
  get uri(): string {
    return this.backend.uri;
  }

  /** The backend name libiio prints: `local`, `xml`, `network`, `usb`, `serial`, `emu`. */
  get name(): string {
    return this.backend.info.name;
  }

  get description(): string {
    return this.backend.info.description;
  }

  get version(): ContextVersion {
    return this.backend.info.version;
  }

  /** Context attributes (`local,kernel`, `uri`, `ip,ip-addr`, ...). */
  get attrs(): Readonly<Record<string, string>> {
    return Object.fromEntries(this.backend.info.attrs);
  }

  /** Finds a device by id (`iio:device0`), then name, then label. */
  findDevice(idOrNameOrLabel: string): Device | undefined {
    return (
      this.devices.find((d) => d.id === idOrNameOrLabel) ??
      this.devices.find((d) => d.name === idOrNameOrLabel) ??
      this.devices.find((d) => d.label === idOrNameOrLabel)
    );
  }

  /** Like findDevice, but throws ENODEV naming the URI. */
  device(idOrNameOrLabel: string): Device {
    const d = this.findDevice(idOrNameOrLabel);
    if (!d) {
      throw new IioError('ENODEV', `no device "${idOrNameOrLabel}" in this context`, {
        uri: this.uri,
      });
    }
    return d;
  }

  /** Changes the timeout of later operations (ms, 0 = forever). */
  async setTimeout(timeoutMs: number): Promise<void> {
    if (this.backend.setTimeout) await this.backend.setTimeout(timeoutMs);
  }

  /** Whether setTimeout() reaches the backend (libiio: iio_context_set_timeout may be ENOSYS). */
  get supportsTimeout(): boolean {
    return this.backend.setTimeout !== undefined;
  }

  /** The context as libiio XML (0.x dialect with its DTD, like iio_genxml). */
  toXml(options: XmlWriteOptions = {}): string {
    return contextToXml(this.backend.info, options);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the backend: open buffers and event streams end. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.backend.close();
    this.removeAllListeners();
  }

  /** @internal the backend, for tests that inspect it; src/ uses named capabilities (lint rule). */
  get backendForInternalUse(): Backend {
    return this.backend;
  }
}
