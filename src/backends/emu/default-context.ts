import { parseScanType } from '../../format/scan-type';
import type { AttrInfo, ChannelInfo, ContextInfo, DeviceInfo } from '../../model/info';
import { LIBRARY_VERSION } from '../../version';
import { boolSlot, live, stored, type AttrSlot } from './attrs';
import { EmuDevice, type EmuChannel } from './device';
import { channelEventCode } from './events';
import type { EmuModel, ModelBuilder } from './model';
import { registerSlot } from './registers';
import { Generator, WAVEFORMS, type WaveParams, type Waveform } from './waveform';

/** What the default context's description says, so nobody mistakes it for hardware. */
export const DEFAULT_DESCRIPTION =
  'iiokit emulated context (emu:): synthetic data, no hardware. ' +
  'ad7606-emu 4-channel 16-bit ADC, ad5689-emu 2-channel DAC looped back into ADC voltage0/1, ' +
  'adxl345-emu 3-axis accelerometer with threshold events, emu-trig0 trigger';

const S16 = parseScanType('le:s16/16>>0');
const TS64 = parseScanType('le:s64/64>>0');
const ADC_SCALE = '0.152587890'; // ±5 V over 16 bits, in mV
const ACCEL_SCALE = '0.002394202'; // ±8 g over 16 bits, in m/s²
const ADC_RATES = '100 200 500 1000 2000 5000 10000 20000 50000 100000 200000';
const ACCEL_RATES = '12.5 25 50 100 200 400 800 1600 3200';

function channel(
  id: string,
  isOutput: boolean,
  index: number,
  format = S16,
  scanScale?: number,
): ChannelInfo {
  return {
    id,
    isOutput,
    index,
    isScanElement: true,
    format,
    scanScale,
    attrs: [],
    eventAttrs: [],
  };
}

function device(id: string, name: string, label: string, channels: ChannelInfo[]): DeviceInfo {
  return { id, name, label, channels, attrs: [], bufferAttrs: [], debugAttrs: [], eventAttrs: [] };
}

/** sampling_frequency + sampling_frequency_available of a device that has its own clock. */
function rateAttrs(b: ModelBuilder, dev: EmuDevice, available: string): void {
  const list = dev.info.attrs;
  b.add(
    list,
    'sampling_frequency',
    stored(String(dev.ownSamplingRate), {
      numeric: true,
      onWrite: (v) => dev.setOwnRate(Number(v)),
    }),
  );
  b.add(
    list,
    'sampling_frequency_available',
    live(() => available),
  );
  b.linkAvailable(list);
}

/** The signal and its waveform_* attributes (waveform selectable per channel). */
function signalAttrs(
  b: ModelBuilder,
  ch: EmuChannel,
  prefix: string,
  params: WaveParams,
  seed: number,
  waveformsAvailable: AttrSlot,
): void {
  const dev = ch.device;
  const gen = new Generator(params, dev.rate, ch.range, seed);
  ch.generator = gen;
  const list = ch.info.attrs as AttrInfo[];
  const set = (changes: Partial<WaveParams>): void => gen.update(changes, dev.nowIndex());
  b.add(
    list,
    'waveform',
    stored(params.waveform, { onWrite: (v) => set({ waveform: v as Waveform }) }),
    `${prefix}_waveform`,
  );
  b.add(
    list,
    'waveform_amplitude',
    stored(String(params.amplitude), {
      numeric: true,
      min: 0,
      onWrite: (v) => set({ amplitude: Number(v) }),
    }),
    `${prefix}_waveform_amplitude`,
  );
  const shared = prefix.replace(/\d+$|_[xyz]$/, '');
  b.add(list, 'waveform_available', waveformsAvailable, `${shared}_waveform_available`);
  b.add(
    list,
    'waveform_frequency',
    stored(String(params.frequency), {
      numeric: true,
      min: 0,
      // Above Nyquist the samples would alias to another tone: refused, as a DDS core
      // refuses a frequency its clock cannot make.
      maxOf: () => dev.rate / 2,
      onWrite: (v) => set({ frequency: Number(v) }),
    }),
    `${prefix}_waveform_frequency`,
  );
  b.add(
    list,
    'waveform_offset',
    stored(String(params.offset), { numeric: true, onWrite: (v) => set({ offset: Number(v) }) }),
    `${prefix}_waveform_offset`,
  );
  b.linkAvailable(list);
}

/** The live `raw` value of an input channel: its most recent sample. */
function rawAttr(ch: EmuChannel): AttrSlot {
  return live(() => String(ch.valueAt(Math.max(0, ch.device.nowIndex() - 1))));
}

/**
 * `emu:` — an ADC, a DAC looped back into it, an accelerometer with threshold events
 * and a trigger, named and shaped like real parts (and described as emulated).
 */
export function buildDefaultContext(
  b: ModelBuilder,
  uri: string,
  options: { maxRate: number; start: number },
): EmuModel {
  const waveforms = live(() => WAVEFORMS.join(' '));
  const common = { maxRate: options.maxRate, start: options.start };

  // ADC: 4 × s16 + timestamp, 1 kHz, triggerable.
  const adcInfo = device('iio:device0', 'ad7606-emu', 'emu-adc', [
    ...[0, 1, 2, 3].map((i) => channel(`voltage${i}`, false, i, S16, 625 / 4096)),
    channel('timestamp', false, 4, TS64),
  ]);
  const adc = new EmuDevice(adcInfo, { ...common, rate: 1000, canTrigger: true });
  const adcScale = live(() => ADC_SCALE);
  const adcSignals: WaveParams[] = [
    { waveform: 'sine', frequency: 10, amplitude: 16000, offset: 0 },
    { waveform: 'square', frequency: 5, amplitude: 8000, offset: 0 },
    { waveform: 'triangle', frequency: 2, amplitude: 12000, offset: 0 },
    { waveform: 'noise', frequency: 0, amplitude: 2000, offset: 0 },
  ];
  for (let i = 0; i < 4; i++) {
    const ch = adc.channels[i];
    const list = ch.info.attrs as AttrInfo[];
    b.add(list, 'raw', rawAttr(ch), `in_voltage${i}_raw`);
    b.add(list, 'scale', adcScale, 'in_voltage_scale');
    signalAttrs(b, ch, `in_voltage${i}`, adcSignals[i], 0x1000 + i, waveforms);
  }
  rateAttrs(b, adc, ADC_RATES);

  // DAC: 2 × s16 output buffer, 1 kHz; what it plays shows on ADC voltage0/1.
  const dacInfo = device('iio:device1', 'ad5689-emu', 'emu-dac', [
    channel('voltage0', true, 0, S16, 625 / 4096),
    channel('voltage1', true, 1, S16, 625 / 4096),
  ]);
  const dac = new EmuDevice(dacInfo, { ...common, rate: 1000, canTrigger: true });
  const dacScale = live(() => ADC_SCALE);
  for (let i = 0; i < 2; i++) {
    const ch = dac.channels[i];
    const list = ch.info.attrs as AttrInfo[];
    b.add(
      list,
      'raw',
      stored('0', { integer: true, min: ch.range.min, max: ch.range.max }),
      `out_voltage${i}_raw`,
    );
    b.add(list, 'scale', dacScale, 'out_voltage_scale');
    adc.channels[i].loop = { dac, channel: i };
  }
  rateAttrs(b, dac, ADC_RATES);

  // Accelerometer: 3 × s16 + timestamp, 100 Hz, threshold events on each axis.
  const accInfo = device('iio:device2', 'adxl345-emu', 'emu-accel', [
    channel('accel_x', false, 0),
    channel('accel_y', false, 1),
    channel('accel_z', false, 2),
    channel('timestamp', false, 3, TS64),
  ]);
  const acc = new EmuDevice(accInfo, { ...common, rate: 100, canTrigger: true });
  const accScale = live(() => ACCEL_SCALE);
  // A board slowly tilting about x and y, gravity on z (4096 LSB = 1 g).
  const accSignals: WaveParams[] = [
    { waveform: 'sine', frequency: 0.5, amplitude: 2458, offset: 0 },
    { waveform: 'sine', frequency: 0.25, amplitude: 1229, offset: 0, phase: 0.25 },
    { waveform: 'noise', frequency: 0, amplitude: 40, offset: 4096 },
  ];
  const detectors = [];
  for (let i = 0; i < 3; i++) {
    const ch = acc.channels[i];
    const axis = 'xyz'[i];
    const prefix = `in_accel_${axis}`;
    const list = ch.info.attrs as AttrInfo[];
    b.add(
      list,
      'calibbias',
      stored('0', {
        integer: true,
        min: -2048,
        max: 2047,
        onWrite: (v) => (ch.bias = Number(v)),
      }),
      `${prefix}_calibbias`,
    );
    b.add(list, 'raw', rawAttr(ch), `${prefix}_raw`);
    b.add(list, 'scale', accScale, 'in_accel_scale');
    signalAttrs(b, ch, prefix, accSignals[i], 0x2000 + i, waveforms);
    // Events: x fires out of the box as the board tilts past ±1500 LSB (≈ 0.37 g).
    const ev = ch.info.eventAttrs as AttrInfo[];
    const range = { integer: true, min: ch.range.min, max: ch.range.max };
    const fallingEn = boolSlot(axis === 'x');
    const fallingValue = stored('-1500', range);
    const risingEn = boolSlot(axis === 'x');
    const risingValue = stored('1500', range);
    b.add(ev, 'thresh_falling_en', fallingEn, `${prefix}_thresh_falling_en`);
    b.add(ev, 'thresh_falling_value', fallingValue, `${prefix}_thresh_falling_value`);
    b.add(ev, 'thresh_rising_en', risingEn, `${prefix}_thresh_rising_en`);
    b.add(ev, 'thresh_rising_value', risingValue, `${prefix}_thresh_rising_value`);
    detectors.push({
      channel: ch,
      settings: {
        rising: { enabled: () => risingEn.value(), value: () => Number(risingValue.read()) },
        falling: { enabled: () => fallingEn.value(), value: () => Number(fallingValue.read()) },
      },
      risingCode: channelEventCode(ch.info.id, 'rising'),
      fallingCode: channelEventCode(ch.info.id, 'falling'),
    });
  }
  rateAttrs(b, acc, ACCEL_RATES);
  b.detectors.set(acc, detectors);

  // Trigger: drives the ADC/accelerometer at its own rate once assigned to them.
  const trigInfo = device('trigger0', 'emu-trig0', 'emu-trigger', []);
  const trig = new EmuDevice(trigInfo, { ...common, rate: 100, canTrigger: false });
  b.add(
    trigInfo.attrs,
    'sampling_frequency',
    stored('100', {
      numeric: true,
      min: 0.001,
      max: 1e6,
      onWrite: (v) => trig.setOwnRate(Number(v)),
    }),
  );

  for (const d of [adc, acc]) {
    b.add(
      d.info.bufferAttrs,
      'data_available',
      live(() => String(bufferedScans(d))),
    );
  }
  for (const d of [adc, dac, acc]) b.add(d.info.debugAttrs, 'direct_reg_access', registerSlot(d));
  for (const d of [adc, dac, acc, trig]) b.devices.set(d.info, d);

  const info: ContextInfo = {
    name: 'emu',
    description: DEFAULT_DESCRIPTION,
    version: LIBRARY_VERSION,
    attrs: [['uri', uri]],
    devices: [adcInfo, dacInfo, accInfo, trigInfo],
  };
  return b.build(info);
}

/** Scans waiting in a device's open input buffer (0 when none is open). */
function bufferedScans(d: EmuDevice): number {
  const input = d.input as { available?: () => number } | null;
  return input?.available ? input.available() : 0;
}
