/**
 * `local:` — the IIO devices of this machine, through sysfs and debugfs (plain files) for
 * the description, attributes, triggers and registers, and through src/backends/local/
 * buffer.ts (the native streaming layer) for buffers and events.
 */
import { IioError, type IioErrorContext } from '../../errors';
import type { ContextInfo, DeviceInfo } from '../../model/info';
import type {
  AttrRef,
  Backend,
  BackendBuffer,
  BackendEventStream,
  BackendOpenOptions,
  BufferOpenOptions,
} from '../../model/backend';
import { openLocalBuffer, type LocalDeviceHandle } from './buffer';
import { openLocalEvents } from './events';
import { tracer } from '../../util/trace';
import { attrText, readBytes, writeValue, type ReaddirOrder } from './files';
import {
  hostUname,
  scanSysfs,
  type LocalDevicePaths,
  type LocalScan,
  type UnameInfo,
} from './sysfs-scan';

const trace = tracer('local');

/** libiio's local backend timeout (DEFAULT_TIMEOUT_MS). */
export const LOCAL_DEFAULT_TIMEOUT_MS = 1000;

/** Options of `local:` (through createContext's options). */
export interface LocalOpenOptions extends BackendOpenOptions {
  /** Where sysfs is mounted; devices at `<root>/bus/iio/devices`, debugfs at `<root>/kernel/debug/iio`. Default `/sys`. */
  readonly sysfsRoot?: string;
  /** Where the device nodes are (`<devDir>/iio:deviceN`). Default `/dev`. */
  readonly devDir?: string;
  /** Also list hwmon devices (`<root>/class/hwmon`), as libiio built WITH_HWMON does. Default false. */
  readonly hwmon?: boolean;
  /** libiio's INI file of extra context attributes. Default `/etc/libiio.ini`; '' for none. */
  readonly iniFile?: string;
  /** What uname(2) reports, for a sysfs copied from another machine. Default: this machine's. */
  readonly uname?: UnameInfo;
  /** Directory order of a copied sysfs tree (written by scripts/snapshot-sysfs.sh). */
  readonly readdirOrder?: ReaddirOrder;
}

/** Hints added to an errno where sysfs gives it a well-known meaning. */
function hint(code: string, op: 'read' | 'write'): string {
  switch (code) {
    case 'EACCES':
      return op === 'read' ? 'the attribute is write-only' : 'the attribute is read-only';
    case 'EBUSY':
      return 'the device refuses while its buffer is enabled';
    case 'EINVAL':
      return op === 'write' ? 'the driver refused the value' : '';
    case 'ENOENT':
      return 'the attribute file does not exist (device removed?)';
    default:
      return '';
  }
}

/** Serialises async sections per key (register access is "write address, read value"). */
class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, f: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(f, f);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}

const REG_FILE = 'direct_reg_access';

export class LocalBackend implements Backend {
  readonly name = 'local';
  readonly info: ContextInfo;
  private readonly paths: ReadonlyMap<string, LocalDevicePaths>;
  private readonly regLock = new KeyedLock();
  private timeoutMs: number;
  private closed = false;

  constructor(
    readonly uri: string,
    scan: LocalScan,
    private readonly devDir: string,
    timeoutMs: number,
  ) {
    this.info = scan.info;
    this.paths = scan.paths;
    this.timeoutMs = timeoutMs;
  }

  private pathsOf(device: DeviceInfo | undefined, what: IioErrorContext): LocalDevicePaths {
    const p = device ? this.paths.get(device.id) : undefined;
    if (!p) {
      throw new IioError('ENODEV', 'not a device of this local context', {
        ...what,
        uri: this.uri,
      });
    }
    return p;
  }

  /** The file an attribute reference names. */
  fileOf(ref: AttrRef): string {
    const where: IioErrorContext = {
      device: ref.device?.id,
      channel: ref.channel?.id,
      attr: ref.attr.name,
    };
    const p = this.pathsOf(ref.device, where);
    const file = ref.attr.filename ?? ref.attr.name;
    switch (ref.kind) {
      case 'device':
      case 'channel':
        return `${p.dir}/${file}`;
      case 'debug':
        return `${p.debugDir}/${file}`;
      case 'buffer': {
        const idx = ref.bufferIndex ?? 0;
        const dir = idx === 0 ? p.bufferDir : `${p.dir}/buffer${idx}`;
        if (!dir)
          throw new IioError('ENOENT', 'the device has no buffer', { ...where, uri: this.uri });
        return `${dir}/${file}`;
      }
      default:
        throw new IioError('ENOSYS', `${ref.kind} attributes are not files of sysfs`, {
          ...where,
          uri: this.uri,
        });
    }
  }

  private ctxOf(ref: AttrRef, file: string | undefined, op: string): IioErrorContext {
    return {
      uri: this.uri,
      device: ref.device?.id,
      channel: ref.channel?.id,
      attr: ref.attr.name,
      ...(file ? { file } : {}),
      op,
    };
  }

  private fail(err: unknown, ctx: IioErrorContext, op: 'read' | 'write'): IioError {
    const e = IioError.wrap(err);
    const h = hint(e.code, op);
    return new IioError(e.code, h ? `${e.detail}: ${h}` : e.detail, ctx, { cause: err });
  }

  private async readFileAttr(ref: AttrRef): Promise<string> {
    const file = this.fileOf(ref);
    const ctx = this.ctxOf(ref, file, 'read');
    let bytes: Buffer;
    try {
      bytes = await readBytes(file);
    } catch (err) {
      throw this.fail(err, ctx, 'read');
    }
    const text = attrText(bytes);
    if (text === undefined) {
      // libiio answers EIO for an empty file, and so do we (the value is not "").
      throw new IioError('EIO', 'the attribute file is empty', ctx);
    }
    return text;
  }

  async readAttr(ref: AttrRef): Promise<string> {
    if (ref.kind === 'context') {
      const found = this.info.attrs.find(([k]) => k === ref.attr.name);
      if (found) return found[1];
      throw new IioError('ENOENT', 'no such context attribute', this.ctxOf(ref, undefined, 'read'));
    }
    if (ref.kind === 'debug' && (ref.attr.filename ?? ref.attr.name) === REG_FILE && ref.device) {
      return this.regLock.run(ref.device.id, () => this.readFileAttr(ref));
    }
    return this.readFileAttr(ref);
  }

  private async writeFileAttr(ref: AttrRef, value: string): Promise<number> {
    const file = this.fileOf(ref);
    const ctx = this.ctxOf(ref, file, `write ${JSON.stringify(value)}`);
    trace(`write ${JSON.stringify(value)} to ${file}`);
    try {
      return await writeValue(file, value);
    } catch (err) {
      throw this.fail(err, ctx, 'write');
    }
  }

  async writeAttr(ref: AttrRef, value: string): Promise<number> {
    if (ref.kind === 'context') {
      throw new IioError(
        'EACCES',
        'context attributes are read-only',
        this.ctxOf(ref, undefined, 'write'),
      );
    }
    if (ref.kind === 'debug' && (ref.attr.filename ?? ref.attr.name) === REG_FILE && ref.device) {
      return this.regLock.run(ref.device.id, () => this.writeFileAttr(ref, value));
    }
    return this.writeFileAttr(ref, value);
  }

  async getTrigger(device: DeviceInfo): Promise<string | null> {
    const p = this.pathsOf(device, { device: device.id });
    const file = `${p.dir}/trigger/current_trigger`;
    let bytes: Buffer;
    try {
      bytes = await readBytes(file);
    } catch (err) {
      const e = IioError.wrap(err);
      const detail = e.code === 'ENOENT' ? 'the device has no trigger' : e.detail;
      throw new IioError(e.code, detail, {
        uri: this.uri,
        device: device.id,
        file,
        op: 'get trigger',
      });
    }
    // The kernel shows nothing at all when no trigger is set (libiio 0.24 calls that EIO).
    const name = attrText(bytes);
    return name === undefined || name === '' ? null : name;
  }

  async setTrigger(device: DeviceInfo, trigger: DeviceInfo | null): Promise<void> {
    const p = this.pathsOf(device, { device: device.id });
    const file = `${p.dir}/trigger/current_trigger`;
    const value = trigger ? (trigger.name ?? trigger.id) : '';
    try {
      await writeValue(file, value);
    } catch (err) {
      const e = IioError.wrap(err);
      const detail =
        e.code === 'ENOENT'
          ? 'the device has no trigger'
          : e.code === 'EBUSY'
            ? `${e.detail}: the trigger cannot change while the buffer is enabled`
            : e.code === 'EINVAL'
              ? `${e.detail}: the driver refused trigger "${value}"`
              : e.detail;
      throw new IioError(e.code, detail, {
        uri: this.uri,
        device: device.id,
        file,
        op: trigger ? `set trigger ${value}` : 'clear trigger',
      });
    }
  }

  private regRef(device: DeviceInfo): AttrRef {
    const attr = device.debugAttrs.find((a) => a.name === REG_FILE);
    if (!attr) {
      throw new IioError(
        'ENOENT',
        'the device has no register access (no debugfs direct_reg_access)',
        {
          uri: this.uri,
          device: device.id,
          attr: REG_FILE,
        },
      );
    }
    return { kind: 'debug', device, attr };
  }

  /** Writes the address, reads the value back: one atomic step per device. */
  async readRegister(device: DeviceInfo, address: number): Promise<number> {
    const ref = this.regRef(device);
    const addr = `0x${(address >>> 0).toString(16)}`;
    return this.regLock.run(device.id, async () => {
      await this.writeFileAttr(ref, addr);
      const text = (await this.readFileAttr(ref)).trim();
      const v = /^0[xX][0-9a-fA-F]+$/.test(text)
        ? parseInt(text, 16)
        : /^\d+$/.test(text)
          ? Number(text)
          : NaN;
      if (!Number.isFinite(v)) {
        throw new IioError('EIO', `register ${addr} read back "${text}"`, {
          uri: this.uri,
          device: device.id,
          attr: REG_FILE,
          file: this.fileOf(ref),
        });
      }
      return v >>> 0;
    });
  }

  async writeRegister(device: DeviceInfo, address: number, value: number): Promise<void> {
    const ref = this.regRef(device);
    const text = `0x${(address >>> 0).toString(16)} 0x${(value >>> 0).toString(16)}`;
    await this.regLock.run(device.id, () => this.writeFileAttr(ref, text));
  }

  /** What the streaming layer needs to know about a device. */
  handleOf(device: DeviceInfo): LocalDeviceHandle {
    const p = this.pathsOf(device, { device: device.id });
    if (!p.streamBufferDir || !p.streamScanDir) {
      throw new IioError('ENODEV', 'the device has no buffer', {
        uri: this.uri,
        device: device.id,
      });
    }
    return {
      uri: this.uri,
      device,
      sysfsDir: p.dir,
      devNode: `${this.devDir}/${device.id}`,
      bufferDir: p.streamBufferDir,
      scanElementsDir: p.streamScanDir,
      scanElementStems: p.scanStems,
      timeoutMs: this.timeoutMs,
    };
  }

  async openBuffer(device: DeviceInfo, options: BufferOpenOptions): Promise<BackendBuffer> {
    return openLocalBuffer(this.handleOf(device), options);
  }

  async openEvents(device: DeviceInfo): Promise<BackendEventStream> {
    const p = this.pathsOf(device, { device: device.id });
    return openLocalEvents({
      uri: this.uri,
      device,
      sysfsDir: p.dir,
      devNode: `${this.devDir}/${device.id}`,
      bufferDir: p.streamBufferDir ?? '',
      scanElementsDir: p.streamScanDir ?? '',
      scanElementStems: p.scanStems,
      timeoutMs: this.timeoutMs,
    });
  }

  async setTimeout(timeoutMs: number): Promise<void> {
    this.timeoutMs = timeoutMs;
  }

  /** The current timeout (ms, 0 = forever). */
  get timeout(): number {
    return this.timeoutMs;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

function stringOption(options: BackendOpenOptions, key: string, dflt: string): string {
  const v = options[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'string') {
    throw new IioError('EINVAL', `local: option ${key} must be a string, not ${typeof v}`);
  }
  return v.replace(/\/+$/, '') || (dflt === '' ? '' : '/');
}

/** Opens `local:` (the URI has nothing after the colon). */
export async function openLocalBackend(
  uri: string,
  options: BackendOpenOptions = {},
): Promise<LocalBackend> {
  const rest = uri.slice(uri.indexOf(':') + 1);
  if (rest !== '') {
    throw new IioError('EINVAL', `local: takes no address, got "${rest}"`, { uri });
  }
  const o = options as LocalOpenOptions;
  const sysfsRoot = stringOption(options, 'sysfsRoot', '/sys');
  const devDir = stringOption(options, 'devDir', '/dev');
  const iniFile =
    o.iniFile === undefined ? '/etc/libiio.ini' : stringOption(options, 'iniFile', '');
  const timeoutMs = o.timeoutMs ?? LOCAL_DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0) {
    throw new IioError('EINVAL', `timeout must be a whole number of ms ≥ 0, not ${timeoutMs}`, {
      uri,
    });
  }
  const scan = await scanSysfs(
    {
      sysfsRoot,
      hwmon: !!o.hwmon,
      readdirOrder: o.readdirOrder,
      uname: o.uname ?? hostUname(),
      iniFile,
    },
    'local:',
  );
  trace(
    `opened local: from ${sysfsRoot} with ${scan.info.devices.length} devices (${scan.info.devices.map((d) => d.id).join(' ')})`,
  );
  return new LocalBackend('local:', scan, devDir, timeoutMs);
}
