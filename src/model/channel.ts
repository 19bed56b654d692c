import type { Backend } from './backend';
import { convert, toSI } from '../format/convert';
import type { DataFormat } from '../format/scan-type';
import { channelKindOf } from '../names/channel-type';
import { Attr, findAttr, findAvailableAttr, type AttrValue, type AvailableValues } from './attr';
import type { Device } from './device';
import type { ChannelInfo } from './info';

/** One channel of a device: `voltage0` input, `accel_x`, `altvoltage1` output, ... */
export class Channel {
  /** Kernel type name (`voltage`, `accel`, `timestamp`) or `unknown`. */
  readonly type: string;
  /** Modifier name (`x`, `i`, `q`) or `''` when there is none. */
  readonly modifier: string;
  readonly attrs: readonly Attr[];
  /**
   * Event attributes (sysfs `events/`, libiio 1.0's channel event attributes):
   * `thresh_rising_value`, `thresh_rising_en`, `thresh_rising_hysteresis`, ...
   */
  readonly eventAttrs: readonly Attr[];
  /** @internal position in device.channels (bit number in a ChannelMask). */
  readonly number: number;

  constructor(
    readonly device: Device,
    /** @internal */ readonly info: ChannelInfo,
    number: number,
    backend: Backend,
    hwmon: boolean,
  ) {
    const kind = channelKindOf(info.id, hwmon);
    this.type = kind.type;
    this.modifier = kind.modifier;
    this.number = number;
    this.attrs = info.attrs.map((a) => new Attr(backend, 'channel', a, device.info, info));
    this.eventAttrs = (info.eventAttrs ?? []).map(
      (a) => new Attr(backend, 'channel-event', a, device.info, info),
    );
  }

  get id(): string {
    return this.info.id;
  }
  /** Extended name (`V1` of `out_voltage0_V1_raw`), if any. */
  get name(): string | undefined {
    return this.info.name;
  }
  get label(): string | undefined {
    return this.info.label;
  }
  get isOutput(): boolean {
    return this.info.isOutput;
  }
  /** Scan index; -1 when the channel is not a scan element. */
  get index(): number {
    return this.info.index;
  }
  get isScanElement(): boolean {
    return this.info.isScanElement;
  }
  /** Storage format of a scan element; undefined otherwise. */
  get format(): DataFormat | undefined {
    return this.info.format;
  }

  /** `voltage0 (input)`: a readable name for messages. */
  toString(): string {
    return `${this.id} (${this.isOutput ? 'output' : 'input'})`;
  }

  attr(name: string): Attr {
    return findAttr(this.attrs, name, {
      kind: 'channel',
      device: this.device.id,
      channel: this.id,
      uri: this.device.context.uri,
    });
  }

  readAttr(name: string): Promise<string> {
    return this.attr(name).read();
  }

  async writeAttr(name: string, value: AttrValue): Promise<void> {
    await this.attr(name).write(value);
  }

  /** An event attribute by name (`thresh_rising_value`) or file name. */
  eventAttr(name: string): Attr {
    return findAttr(this.eventAttrs, name, {
      kind: 'event',
      device: this.device.id,
      channel: this.id,
      uri: this.device.context.uri,
    });
  }

  readEventAttr(name: string): Promise<string> {
    return this.eventAttr(name).read();
  }

  async writeEventAttr(name: string, value: AttrValue): Promise<void> {
    await this.eventAttr(name).write(value);
  }

  /**
   * The values an attribute accepts, from its `_available` companion:
   * `readAvailable('scale')` reads and parses `scale_available`.
   */
  async readAvailable(name: string): Promise<AvailableValues> {
    return findAvailableAttr(this.attrs, name, {
      kind: 'channel',
      device: this.device.id,
      channel: this.id,
      uri: this.device.context.uri,
    }).readAvailable();
  }

  /** True when the channel has an attribute of that name. */
  hasAttr(name: string): boolean {
    return this.attrs.some((a) => a.name === name);
  }

  /**
   * Reads `scale` and `offset` (1 and 0 when absent), for `(raw + offset) * scale`.
   */
  async readScaleOffset(): Promise<{ scale: number; offset: number }> {
    const num = async (n: string, dflt: number): Promise<number> => {
      if (!this.hasAttr(n))
        return n === 'scale' && this.info.scanScale !== undefined ? this.info.scanScale : dflt;
      const v = Number((await this.readAttr(n)).trim());
      return Number.isFinite(v) ? v : dflt;
    };
    return { scale: await num('scale', 1), offset: await num('offset', 0) };
  }

  /** Marks the channel for the device's next buffer (libiio's iio_channel_enable). */
  enable(): void {
    this.device.enableChannel(this);
  }

  disable(): void {
    this.device.disableChannel(this);
  }

  get isEnabled(): boolean {
    return this.device.isChannelEnabled(this);
  }

  /** Decodes one raw value at `offset` of a scan buffer (no scale applied). */
  decode(scan: Buffer, offset: number, repeatIndex = 0): number | bigint {
    if (!this.format) return 0;
    return convert(scan, offset, this.format, repeatIndex);
  }

  /** Applies `(raw + offset) * scale`. */
  static toSI(raw: number | bigint, scale: number, offset: number): number {
    return toSI(raw, scale, offset);
  }
}
