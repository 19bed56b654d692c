import type { ChannelInfo, DeviceInfo } from '../../model/info';
import { channelKindOf } from '../../names/channel-type';
import { now, SampleClock } from './clock';
import { formatRange } from './element-writer';
import { Playback } from './playback';
import type { Generator } from './waveform';

/** Implemented by open buffers and event streams so the device can close them. */
export interface Closable {
  close(): Promise<void>;
}

/** An ADC channel's wire from a DAC channel (loopback). */
export interface LoopWire {
  readonly dac: EmuDevice;
  /** The DAC channel's number (mask bit). */
  readonly channel: number;
  /**
   * The board's loopback switch (a transceiver's loopback attribute). Absent: always
   * wired, and the ADC shows its own signal while the DAC has nothing queued (the demo
   * context). Present and on: the ADC shows what the DAC outputs — its buffer, else its
   * DDS tones, else zero — as the chip's digital loopback does.
   */
  readonly enabled?: () => boolean;
  /** DAC value → ADC value (16-bit DMA words into a 12-bit ADC: 1/16). */
  readonly gain?: number;
}

/** What a DAC outputs when its buffer plays nothing: DDS tones (cf_axi_dds). */
export interface DacSource {
  /** The value of DAC channel `channel` at DAC sample `m`. */
  valueAt(channel: number, m: number): number;
}

/** One channel of an emulated device and where its samples come from. */
export class EmuChannel {
  /** The synthetic signal of an input channel (none for outputs and timestamps). */
  generator?: Generator;
  /** calibbias, added to the signal. */
  bias = 0;
  /** The DAC channel this ADC channel is wired to (loopback). */
  loop?: LoopWire;
  readonly isTimestamp: boolean;
  readonly range: { readonly min: number; readonly max: number };

  constructor(
    readonly info: ChannelInfo,
    /** Position in the device's channel list (mask bit). */
    readonly number: number,
    readonly device: EmuDevice,
  ) {
    this.isTimestamp = channelKindOf(info.id).type === 'timestamp';
    this.range = info.format ? formatRange(info.format) : { min: -(2 ** 31), max: 2 ** 31 - 1 };
  }

  /** The raw value at the device's sample n: the looped-back DAC if it plays, else the signal. */
  valueAt(n: number): number {
    if (this.loop?.enabled) {
      if (this.loop.enabled()) {
        const { dac, channel, gain = 1 } = this.loop;
        const m = dac.clock.indexAt(this.device.clock.timeOf(n));
        const v = Math.round(dac.outputAt(channel, m) * gain);
        return v < this.range.min ? this.range.min : v > this.range.max ? this.range.max : v;
      }
    } else if (this.loop) {
      const dac = this.loop.dac;
      if (dac.playback && !dac.playback.isEmpty) {
        const m = dac.clock.indexAt(this.device.clock.timeOf(n));
        const v = dac.playback.valueAt(this.loop.channel, m);
        if (v !== undefined) return v;
      }
    }
    if (!this.generator) return 0;
    const v = this.generator.valueAt(n) + this.bias;
    return v < this.range.min ? this.range.min : v > this.range.max ? this.range.max : v;
  }
}

export interface EmuDeviceOptions {
  /** The sampling rate the device reports (Hz). */
  readonly rate: number;
  /** Highest rate the emulator paces samples at in real time. */
  readonly maxRate: number;
  /** The device accepts a trigger (it has a triggered buffer). */
  readonly canTrigger: boolean;
  /** When sample 0 happens (shared by a context's devices so their clocks line up). */
  readonly start?: number;
}

/**
 * An emulated device: its sample clock, channels, trigger, registers, and the buffer
 * and event stream open on it (one of each, as the kernel allows).
 */
export class EmuDevice {
  readonly clock: SampleClock;
  readonly channels: EmuChannel[];
  readonly isTrigger: boolean;
  readonly canTrigger: boolean;
  private ownRate: number;
  private readonly maxRate: number;
  trigger: EmuDevice | null = null;
  /** Devices this trigger drives. */
  readonly users = new Set<EmuDevice>();
  input: Closable | null = null;
  output: Closable | null = null;
  events: Closable | null = null;
  /** What the device outputs (output-capable devices). */
  playback: Playback | null = null;
  /** What it outputs while its buffer plays nothing (a DDS), if modelled. */
  idleSource: DacSource | null = null;
  readonly registers = new Map<number, number>();
  registerAddress = 0;

  constructor(
    readonly info: DeviceInfo,
    options: EmuDeviceOptions,
  ) {
    this.ownRate = options.rate;
    this.maxRate = options.maxRate;
    this.canTrigger = options.canTrigger;
    this.isTrigger = info.id.startsWith('trigger') && info.channels.length === 0;
    this.clock = new SampleClock(Math.min(options.rate, options.maxRate), options.start ?? now());
    this.channels = info.channels.map((c, i) => new EmuChannel(c, i, this));
    if (info.channels.some((c) => c.isOutput && c.isScanElement)) this.playback = new Playback();
  }

  /** The rate the device samples at: its trigger's when it has one, else its own. */
  get rate(): number {
    return this.trigger ? this.trigger.ownRate : this.ownRate;
  }

  /** The device's own sampling_frequency. */
  get ownSamplingRate(): number {
    return this.ownRate;
  }

  /**
   * The value DAC channel `channel` outputs at sample `m`: the buffer's sample if one
   * plays then, else the idle source's (DDS), else 0.
   */
  outputAt(channel: number, m: number): number {
    const v =
      this.playback && !this.playback.isEmpty ? this.playback.valueAt(channel, m) : undefined;
    if (v !== undefined) return v;
    return this.idleSource ? this.idleSource.valueAt(channel, m) : 0;
  }

  /** The index of the next sample (samples 0..n-1 have happened). */
  nowIndex(): number {
    return this.clock.indexAt(now());
  }

  setOwnRate(hz: number): void {
    this.ownRate = hz;
    this.refreshRate();
    for (const u of this.users) u.refreshRate();
  }

  setTrigger(trigger: EmuDevice | null): void {
    this.trigger?.users.delete(this);
    this.trigger = trigger;
    trigger?.users.add(this);
    this.refreshRate();
  }

  /** Re-anchors the clock and the signals at the current sample after a rate change. */
  private refreshRate(): void {
    const at = now();
    const n = this.clock.indexAt(at);
    const rate = this.rate;
    this.clock.setRate(Math.min(rate, this.maxRate), at);
    for (const c of this.channels) c.generator?.setRate(rate, n);
  }

  async closeAll(): Promise<void> {
    const open = [this.input, this.output, this.events].filter((x): x is Closable => !!x);
    await Promise.all(open.map((x) => x.close()));
  }
}
