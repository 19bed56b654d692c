import { readFile } from 'node:fs/promises';
import { IioError, type IioErrorContext } from '../../errors';
import type { ContextInfo, DeviceInfo } from '../../model/info';
import { LIBRARY_VERSION } from '../../version';
import type {
  AttrRef,
  Backend,
  BackendBuffer,
  BackendEventStream,
  BackendOpenOptions,
  BufferOpenOptions,
} from '../../model/backend';
import { decodeXmlBytes, parseContextXml } from '../../xml';
import { cleanValue, validate } from './attrs';
import { now } from './clock';
import { EmuInputBuffer, EmuOutputBuffer } from './buffers';
import { buildDefaultContext } from './default-context';
import type { EmuDevice } from './device';
import { EmuEventStream } from './events';
import { ModelBuilder, type EmuModel } from './model';
import { readRegister, writeRegister } from './registers';
import { buildXmlContext } from './xml-context';
import { tracer } from '../../util/trace';

const trace = tracer('emu');

/** Options of `emu:` contexts (given to createContext). */
export interface EmuOptions {
  /**
   * Highest rate (scans/s) streamed in real time; devices set faster still report their
   * sampling_frequency, but deliver at this pace. Default 2,000,000.
   */
  readonly maxRate?: number;
  /** Operation timeout in ms; 0 (the default) waits as long as the device needs. */
  readonly timeoutMs?: number;
}

const DEFAULT_MAX_RATE = 2e6;
/** Kernel buffers count when the caller gives none (libiio's default). */
const DEFAULT_BLOCKS = 4;

/**
 * `emu:` and `emu:file.xml`: emulated devices with live data, attribute storage and
 * validation, buffers in the kernel's layout paced by each device's sample clock,
 * a DAC looped back into an ADC, threshold events and registers. Nothing runs while
 * no buffer or event stream is open.
 */
export class EmuBackend implements Backend {
  readonly name = 'emu';
  readonly info: ContextInfo;
  private timeoutMs: number;
  private closed = false;

  constructor(
    readonly uri: string,
    private readonly model: EmuModel,
    options: EmuOptions,
  ) {
    this.info = model.info;
    this.timeoutMs = options.timeoutMs ?? 0;
  }

  private ctx(ref: {
    device?: DeviceInfo;
    channel?: { id: string };
    attr?: { name: string };
  }): IioErrorContext {
    return {
      uri: this.uri,
      device: ref.device?.id,
      channel: ref.channel?.id,
      attr: ref.attr?.name,
    };
  }

  private dev(device: DeviceInfo): EmuDevice {
    if (this.closed) throw new IioError('EBADF', 'the context is closed', { uri: this.uri });
    const d =
      this.model.devices.get(device) ??
      [...this.model.devices.values()].find((x) => x.info.id === device.id);
    if (!d)
      throw new IioError('ENODEV', `no device ${device.id} in this context`, { uri: this.uri });
    return d;
  }

  async readAttr(ref: AttrRef): Promise<string> {
    if (ref.kind === 'context') {
      const hit = this.info.attrs.find(([k]) => k === ref.attr.name);
      if (hit) return hit[1];
      throw new IioError('ENOENT', `no context attribute "${ref.attr.name}"`, { uri: this.uri });
    }
    if (ref.device) this.dev(ref.device);
    const slot = this.model.slots.get(ref.attr);
    if (!slot) throw new IioError('ENOENT', 'no such attribute', this.ctx(ref));
    try {
      return slot.read();
    } catch (err) {
      throw IioError.wrap(err, { ...this.ctx(ref), op: 'read' });
    }
  }

  async writeAttr(ref: AttrRef, value: string): Promise<number> {
    if (ref.kind === 'context') {
      throw new IioError('EACCES', 'context attributes are read-only', {
        uri: this.uri,
        attr: ref.attr.name,
      });
    }
    if (ref.device) this.dev(ref.device);
    const slot = this.model.slots.get(ref.attr);
    if (!slot) throw new IioError('ENOENT', 'no such attribute', this.ctx(ref));
    const where = this.ctx(ref);
    const v = validate(slot, cleanValue(value), ref.attr.name, where);
    trace(
      `write ${[ref.device?.id, ref.channel?.id, ref.attr.name].filter(Boolean).join('/')} = ${JSON.stringify(v)}`,
    );
    try {
      slot.write!(v);
    } catch (err) {
      throw IioError.wrap(err, { ...where, op: 'write' });
    }
    return Buffer.byteLength(value);
  }

  async getTrigger(device: DeviceInfo): Promise<string | null> {
    const d = this.dev(device);
    if (!d.canTrigger) {
      throw new IioError('ENOENT', 'this device takes no trigger', {
        uri: this.uri,
        device: device.id,
      });
    }
    return d.trigger ? (d.trigger.info.name ?? d.trigger.info.id) : null;
  }

  async setTrigger(device: DeviceInfo, trigger: DeviceInfo | null): Promise<void> {
    const d = this.dev(device);
    if (!d.canTrigger) {
      throw new IioError('ENOENT', 'this device takes no trigger', {
        uri: this.uri,
        device: device.id,
      });
    }
    if (trigger === null) {
      d.setTrigger(null);
      return;
    }
    const t = this.dev(trigger);
    if (!t.isTrigger) {
      throw new IioError('EINVAL', `${trigger.id} is not a trigger`, {
        uri: this.uri,
        device: device.id,
      });
    }
    d.setTrigger(t);
  }

  async readRegister(device: DeviceInfo, address: number): Promise<number> {
    return readRegister(this.registersOf(device), address);
  }

  async writeRegister(device: DeviceInfo, address: number, value: number): Promise<void> {
    writeRegister(this.registersOf(device), address, value);
  }

  private registersOf(device: DeviceInfo): EmuDevice {
    const d = this.dev(device);
    if (!device.debugAttrs.some((a) => a.name === 'direct_reg_access')) {
      throw new IioError('ENOENT', 'this device has no register access (direct_reg_access)', {
        uri: this.uri,
        device: device.id,
      });
    }
    return d;
  }

  async openBuffer(device: DeviceInfo, options: BufferOpenOptions): Promise<BackendBuffer> {
    const d = this.dev(device);
    const where = { uri: this.uri, device: device.id, op: 'open buffer' };
    if (!Number.isInteger(options.samples) || options.samples <= 0) {
      throw new IioError('EINVAL', `bad buffer size ${options.samples}`, where);
    }
    if (options.mask.isEmpty()) throw new IioError('EINVAL', 'no channel enabled', where);
    const blocks = options.blocks ?? DEFAULT_BLOCKS;
    const common = {
      samples: options.samples,
      blocks: Math.max(1, blocks),
      timeoutMs: () => this.timeoutMs,
      uri: this.uri,
    };
    for (const i of options.mask.indices()) {
      const c = device.channels[i];
      if (!c || c.isOutput !== options.isOutput) {
        throw new IioError(
          'EINVAL',
          `channel ${c?.id ?? i} is not an ${options.isOutput ? 'output' : 'input'} channel`,
          where,
        );
      }
    }
    if (options.isOutput) {
      if (!d.playback) throw new IioError('EINVAL', 'the device has no output buffer', where);
      if (d.output) throw new IioError('EBUSY', 'the output buffer is already open', where);
      const buf = new EmuOutputBuffer(d, options.mask.clone(), {
        ...common,
        cyclic: options.cyclic,
      });
      d.output = buf;
      trace(
        `${device.id}: output buffer of ${options.samples} samples${options.cyclic ? ', cyclic' : ''}`,
      );
      return buf;
    }
    if (options.cyclic) throw new IioError('EINVAL', 'only output buffers can be cyclic', where);
    if (d.input) throw new IioError('EBUSY', 'the buffer is already open', where);
    const buf = new EmuInputBuffer(d, options.mask.clone(), common);
    d.input = buf;
    trace(
      `${device.id}: input buffer of ${options.samples} samples, channels ${options.mask
        .indices()
        .map((i) => device.channels[i].id)
        .join(',')}`,
    );
    return buf;
  }

  async openEvents(device: DeviceInfo): Promise<BackendEventStream> {
    const d = this.dev(device);
    const detectors = this.model.detectors.get(d);
    if (!detectors?.length) {
      throw new IioError('ENODEV', 'the device has no events', {
        uri: this.uri,
        device: device.id,
      });
    }
    if (d.events) {
      throw new IioError('EBUSY', 'the event stream is already open', {
        uri: this.uri,
        device: device.id,
      });
    }
    const s = new EmuEventStream(d, detectors, this.uri);
    d.events = s;
    trace(`${device.id}: event stream open`);
    return s;
  }

  async setTimeout(timeoutMs: number): Promise<void> {
    this.timeoutMs = timeoutMs;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.model.devices.values()].map((d) => d.closeAll()));
    this.closed = true;
  }
}

/** Opens `emu:` (the default demo context) or `emu:path.xml`. */
export async function openEmuBackend(
  uri: string,
  options: BackendOpenOptions = {},
): Promise<EmuBackend> {
  const rest = uri.slice(uri.indexOf(':') + 1).trim();
  const maxRate = Number(options.maxRate ?? DEFAULT_MAX_RATE);
  if (!Number.isFinite(maxRate) || maxRate <= 0) {
    throw new IioError(
      'EINVAL',
      `maxRate must be a positive number, not ${String(options.maxRate)}`,
      { uri },
    );
  }
  const timeoutMs = typeof options.timeoutMs === 'number' ? options.timeoutMs : 0;
  const b = new ModelBuilder();
  const start = now();
  let model: EmuModel;
  if (!rest) {
    model = buildDefaultContext(b, 'emu:', { maxRate, start });
  } else {
    let text: string;
    try {
      text = decodeXmlBytes(await readFile(rest));
    } catch (err) {
      throw IioError.wrap(err, { uri, file: rest, op: 'read XML context' });
    }
    const parsed = parseContextXml(text, { source: rest, defaultVersion: LIBRARY_VERSION });
    model = buildXmlContext(b, parsed, rest, { maxRate, start });
  }
  trace(
    `opened ${uri} with ${model.info.devices.length} devices (${model.info.devices.map((d) => d.id).join(' ')}), real time up to ${maxRate} scans/s`,
  );
  return new EmuBackend(uri, model, { maxRate, timeoutMs });
}
