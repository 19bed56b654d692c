import type { Backend } from './backend';
import { IioError } from '../errors';
import { Attr, findAttr, findAvailableAttr, type AttrValue, type AvailableValues } from './attr';
import { IioBuffer, type BufferOptions } from './buffer';
import { checkBufferChannels, checkBufferSamples } from './buffer-checks';
import { Channel } from './channel';
import { ChannelMask } from './channel-mask';
import type { Context } from './context';
import { decodeEvent, type IioEvent } from './event';
import type { DeviceInfo } from './info';
import { strtoll, toUint32 } from '../util/cnumber';

/** Registers are 32-bit: anything else is refused before it reaches the kernel. */
function checkRegisterArg(what: string, n: number, dev: Device): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new IioError('EINVAL', `register ${what} must be an integer in 0..0xffffffff, not ${n}`, {
      device: dev.id,
      uri: dev.context.uri,
    });
  }
}

/** Device.events(): the events as an async iterator, and a way to open the queue first. */
export interface EventIterator extends AsyncIterableIterator<IioEvent> {
  /** Opens the device's event queue now; rejects when it cannot be opened. */
  open(): Promise<void>;
}

/** One IIO device (`iio:deviceN`), trigger (`triggerN`) or hwmon device (`hwmonN`). */
export class Device {
  readonly channels: readonly Channel[];
  readonly attrs: readonly Attr[];
  readonly bufferAttrs: readonly Attr[];
  readonly debugAttrs: readonly Attr[];
  /**
   * Device event attributes (libiio 1.0): files of sysfs `events/` that belong to no
   * channel, named by their file (`in_accel_thresh_rising_en`, shared by the accel axes).
   */
  readonly eventAttrs: readonly Attr[];
  private readonly enabled: ChannelMask;

  constructor(
    readonly context: Context,
    /** @internal */ readonly info: DeviceInfo,
    private readonly backend: Backend,
  ) {
    const hwmon = info.id.startsWith('hwmon');
    this.channels = info.channels.map((c, i) => new Channel(this, c, i, backend, hwmon));
    this.attrs = info.attrs.map((a) => new Attr(backend, 'device', a, info));
    this.bufferAttrs = info.bufferAttrs.map((a) => new Attr(backend, 'buffer', a, info));
    this.debugAttrs = info.debugAttrs.map((a) => new Attr(backend, 'debug', a, info));
    this.eventAttrs = (info.eventAttrs ?? []).map(
      (a) => new Attr(backend, 'device-event', a, info),
    );
    this.enabled = new ChannelMask(this.channels.length);
  }

  get id(): string {
    return this.info.id;
  }
  get name(): string | undefined {
    return this.info.name;
  }
  get label(): string | undefined {
    return this.info.label;
  }

  /** libiio's rule: an id starting with `trigger`, a name, and no channels. */
  get isTrigger(): boolean {
    return this.channels.length === 0 && !!this.name && this.id.startsWith('trigger');
  }

  /** True when at least one channel is a scan element (iio_info's "buffer capable"). */
  get isBufferCapable(): boolean {
    return this.channels.some((c) => c.isScanElement);
  }

  /** `iio:device0 (dummy0)`: a readable name for messages. */
  toString(): string {
    return this.name ? `${this.id} (${this.name})` : this.id;
  }

  private where(kind: string): { device: string; kind: string; uri: string } {
    return { device: this.id, kind, uri: this.context.uri };
  }

  /**
   * Finds a channel by id (`voltage0`), extended name or label. With `isOutput`
   * given, only channels of that direction match; otherwise inputs are preferred.
   */
  findChannel(idOrName: string, isOutput?: boolean): Channel | undefined {
    const candidates =
      isOutput === undefined
        ? [...this.channels.filter((c) => !c.isOutput), ...this.channels.filter((c) => c.isOutput)]
        : this.channels.filter((c) => c.isOutput === isOutput);
    return (
      candidates.find((c) => c.id === idOrName) ??
      candidates.find((c) => c.name === idOrName) ??
      candidates.find((c) => c.label === idOrName)
    );
  }

  /** Like findChannel, but throws ENOENT naming the device. */
  channel(idOrName: string, isOutput?: boolean): Channel {
    const c = this.findChannel(idOrName, isOutput);
    if (!c) {
      const dir = isOutput === undefined ? '' : isOutput ? 'output ' : 'input ';
      throw new IioError('ENOENT', `no ${dir}channel "${idOrName}"`, {
        device: this.id,
        uri: this.context.uri,
      });
    }
    return c;
  }

  attr(name: string): Attr {
    return findAttr(this.attrs, name, this.where('device'));
  }
  readAttr(name: string): Promise<string> {
    return this.attr(name).read();
  }
  async writeAttr(name: string, value: AttrValue): Promise<void> {
    await this.attr(name).write(value);
  }

  /**
   * The values a device attribute accepts, from its `_available` companion:
   * `readAvailable('sampling_frequency')` reads and parses `sampling_frequency_available`.
   */
  async readAvailable(name: string): Promise<AvailableValues> {
    return findAvailableAttr(this.attrs, name, this.where('device')).readAvailable();
  }

  bufferAttr(name: string): Attr {
    return findAttr(this.bufferAttrs, name, this.where('buffer'));
  }
  readBufferAttr(name: string): Promise<string> {
    return this.bufferAttr(name).read();
  }
  async writeBufferAttr(name: string, value: AttrValue): Promise<void> {
    await this.bufferAttr(name).write(value);
  }

  /**
   * The attributes of buffer `index` of a multi-buffer device (libiio 1.0's buffers,
   * `bufferN/` in sysfs); buffer 0's are `bufferAttrs`. Empty for a buffer not described.
   */
  bufferAttrsAt(index: number): readonly Attr[] {
    if (index === 0) return this.bufferAttrs;
    const b = this.info.buffers?.find((x) => x.index === index);
    return (b?.attrs ?? []).map(
      (a) => new Attr(this.backend, 'buffer', a, this.info, undefined, index),
    );
  }

  debugAttr(name: string): Attr {
    return findAttr(this.debugAttrs, name, this.where('debug'));
  }
  readDebugAttr(name: string): Promise<string> {
    return this.debugAttr(name).read();
  }
  async writeDebugAttr(name: string, value: AttrValue): Promise<void> {
    await this.debugAttr(name).write(value);
  }

  eventAttr(name: string): Attr {
    return findAttr(this.eventAttrs, name, this.where('event'));
  }
  readEventAttr(name: string): Promise<string> {
    return this.eventAttr(name).read();
  }
  async writeEventAttr(name: string, value: AttrValue): Promise<void> {
    await this.eventAttr(name).write(value);
  }

  /**
   * Reads a register through the backend, or debugfs `direct_reg_access`
   * (write the address, read the value back) where the backend has no direct way.
   */
  async readRegister(address: number): Promise<number> {
    checkRegisterArg('address', address, this);
    if (this.backend.readRegister) return this.backend.readRegister(this.info, address);
    const reg = this.debugAttr('direct_reg_access');
    // "Write the address, read the value" is two steps: one at a time per device
    // (libiio 1.0's local backend flocks the file for the same reason).
    return this.registerLock(async () => {
      await reg.write(`0x${address.toString(16)}`);
      const text = (await reg.read()).trim();
      // libiio's iio_device_reg_read: strtoll(text, &end, 0), cast to uint32_t; refused
      // when nothing parses or it overflows. We also refuse trailing text: the kernel
      // prints "0x%X" alone, anything else is not a register value.
      const r = strtoll(text, 0);
      if (r.end === 0 || r.end !== text.length || r.erange) {
        throw new IioError('EIO', `register 0x${address.toString(16)} read back "${text}"`, {
          device: this.id,
          attr: 'direct_reg_access',
          uri: this.context.uri,
        });
      }
      return toUint32(r.value);
    });
  }

  async writeRegister(address: number, value: number): Promise<void> {
    checkRegisterArg('address', address, this);
    checkRegisterArg('value', value, this);
    if (this.backend.writeRegister) return this.backend.writeRegister(this.info, address, value);
    const reg = this.debugAttr('direct_reg_access');
    await this.registerLock(() =>
      reg.write(`0x${address.toString(16)} 0x${(value >>> 0).toString(16)}`),
    );
  }

  private registerTail: Promise<unknown> = Promise.resolve();

  /** Runs register sections of this device one after another. */
  private registerLock<T>(f: () => Promise<T>): Promise<T> {
    const next = this.registerTail.then(f, f);
    this.registerTail = next.catch(() => undefined);
    return next;
  }

  /** The trigger in use, or null. Rejects ENOENT when the device cannot have one. */
  async getTrigger(): Promise<Device | null> {
    const t = await this.backend.getTrigger(this.info);
    if (t === null || t === '') return null;
    const dev = this.context.devices.find((d) => d.isTrigger && (d.name === t || d.id === t));
    if (!dev) {
      // ENXIO, as libiio's local backend answers for a trigger it does not list.
      throw new IioError('ENXIO', `current trigger "${t}" is not a trigger of this context`, {
        device: this.id,
        uri: this.context.uri,
      });
    }
    return dev;
  }

  /**
   * Puts a trigger back after a buffer closed. A remote server (iiod) releases the
   * kernel buffer only once it has seen the data connection go, and until then the
   * kernel refuses a trigger change with EBUSY: retry for a while before giving up.
   */
  private async restoreTrigger(trigger: Device | null): Promise<void> {
    for (let delay = 5; ; delay *= 2) {
      try {
        await this.setTrigger(trigger);
        return;
      } catch (err) {
        if (!(err instanceof IioError) || err.code !== 'EBUSY' || delay > 1280) throw err;
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** Sets the trigger (a Device, its id or name), or clears it with null. */
  async setTrigger(trigger: Device | string | null): Promise<void> {
    let dev: Device | null = null;
    if (typeof trigger === 'string') {
      dev = this.context.findDevice(trigger) ?? null;
      if (!dev || !dev.isTrigger) {
        throw new IioError('ENODEV', `no trigger "${trigger}" in this context`, {
          device: this.id,
          uri: this.context.uri,
        });
      }
    } else {
      dev = trigger;
    }
    await this.backend.setTrigger(this.info, dev ? dev.info : null);
  }

  /** @internal used by Channel.enable. */
  enableChannel(c: Channel): void {
    this.enabled.set(c.number);
  }
  /** @internal */
  disableChannel(c: Channel): void {
    this.enabled.clear(c.number);
  }
  /** @internal */
  isChannelEnabled(c: Channel): boolean {
    return this.enabled.has(c.number);
  }

  /**
   * Opens a buffer of `samples` scans. Channels come from `options.channels` (Channel
   * objects or ids) or else from those enabled with `channel.enable()`. All must be
   * scan elements of one direction, which decides whether the buffer is input or output.
   */
  async createBuffer(samples: number, options: BufferOptions = {}): Promise<IioBuffer> {
    checkBufferSamples(this, samples);
    let chosen: Channel[];
    if (options.channels && options.channels.length) {
      chosen = options.channels.map((c) => {
        if (typeof c !== 'string') return c;
        const want = options.isOutput;
        const found =
          this.channels.find(
            (x) => x.isScanElement && x.id === c && (want === undefined || x.isOutput === want),
          ) ?? this.findChannel(c, want);
        if (!found) return this.channel(c, want);
        return found;
      });
    } else {
      chosen = this.channels.filter((c) => this.enabled.has(c.number));
    }
    const isOutput = checkBufferChannels(this, samples, chosen, options);
    // The trigger asked for is put back as it was when the buffer closes.
    let restoreTrigger: (() => Promise<void>) | undefined;
    if (options.trigger !== undefined) {
      const before = await this.getTrigger().catch(() => undefined);
      const wanted =
        typeof options.trigger === 'string'
          ? (this.context.findDevice(options.trigger) ?? options.trigger)
          : options.trigger;
      if (before === undefined || before !== wanted) {
        await this.setTrigger(options.trigger);
        if (before !== undefined) restoreTrigger = () => this.restoreTrigger(before);
      }
    }
    const mask = ChannelMask.of(
      this.channels.length,
      chosen.map((c) => c.number),
    );
    let raw;
    try {
      raw = await this.backend.openBuffer(this.info, {
        samples,
        mask,
        cyclic: !!options.cyclic,
        isOutput,
        blocks: options.blocks,
        ...(options.transfer ? { transfer: options.transfer } : {}),
      });
    } catch (err) {
      if (restoreTrigger) await restoreTrigger().catch(() => undefined);
      throw IioError.wrap(err, { device: this.id, uri: this.context.uri, op: 'open buffer' });
    }
    const buffer = new IioBuffer(
      this,
      raw,
      samples,
      isOutput,
      !!options.cyclic,
      mask,
      restoreTrigger,
    );
    await buffer.loadScales();
    return buffer;
  }

  /**
   * Whether an event stream of this device opens (it is closed again at once): libiio's
   * test for "events supported". False with the reason unsaid; events() says why.
   */
  async canOpenEvents(): Promise<boolean> {
    if (!this.backend.openEvents) return false;
    try {
      const s = await this.backend.openEvents(this.info);
      await s.close();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Kernel events of this device, decoded, as an async iterator. Breaking out of the
   * loop (or calling `return()`) closes the event stream. The device's event queue opens
   * with the first `next()`, or with `open()`, which says at once whether it can (a
   * server answering libiio's CREATE_EVSTREAM needs to know before any event comes).
   */
  events(): EventIterator {
    const backend = this.backend;
    const info = this.info;
    const ctxOf = { device: this.id, uri: this.context.uri };
    const decode = (raw: Parameters<typeof decodeEvent>[0]): IioEvent => decodeEvent(raw, this);
    if (!backend.openEvents) {
      throw new IioError('ENOSYS', 'this context cannot deliver events', {
        device: this.id,
        uri: this.context.uri,
      });
    }
    const open = backend.openEvents.bind(backend);
    let streamP: ReturnType<typeof open> | undefined;
    let done = false;
    const it: EventIterator = {
      [Symbol.asyncIterator]() {
        return it;
      },
      async open() {
        streamP ??= open(info);
        try {
          await streamP;
        } catch (err) {
          throw IioError.wrap(err, { ...ctxOf, op: 'open events' });
        }
      },
      async next() {
        if (done) return { done: true, value: undefined };
        streamP ??= open(info);
        const stream = await streamP;
        try {
          const raw = await stream.read();
          return { done: false, value: decode(raw) };
        } catch (err) {
          if ((err as IioError).code === 'ECANCELED' && done)
            return { done: true, value: undefined };
          throw IioError.wrap(err, { ...ctxOf, op: 'read event' });
        }
      },
      async return() {
        done = true;
        if (streamP) await (await streamP.catch(() => undefined))?.close();
        return { done: true, value: undefined };
      },
    };
    return it;
  }
}
