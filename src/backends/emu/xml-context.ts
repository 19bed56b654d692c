import { basename } from 'node:path';
import type { AttrInfo, ChannelInfo, ContextInfo, DeviceInfo } from '../../model/info';
import { cFixed } from '../../util/cformat';
import { isAvailableList } from '../../model/attr';
import { CAPTURED_ERROR, live, stored, unknownReadOnly, type AttrSlot } from './attrs';
import { BoardContext } from './board';
import { EmuDevice, type EmuChannel } from './device';
import { channelEventCode, type Detector } from './events';
import type { EmuModel, ModelBuilder } from './model';
import { registerSlot } from './registers';
import { modelBoards } from './transceivers';
import { Generator } from './waveform';

const DEFAULT_RATE = 1000;

/** The sampling rate a described device reports: its sampling_frequency, wherever it sits. */
function describedRate(d: DeviceInfo): number {
  const candidates = [
    ...d.attrs.filter((a) => a.name === 'sampling_frequency'),
    ...d.channels.flatMap((c) => c.attrs.filter((a) => a.name === 'sampling_frequency')),
  ];
  for (const a of candidates) {
    const v = Number(a.value?.trim());
    if (Number.isFinite(v) && v > 0) return v;
  }
  return DEFAULT_RATE;
}

/**
 * Where a channel attribute is stored: its sysfs file, shared by the channels that name
 * the same one (`in_accel_scale`); per channel when the XML gives no real file name.
 */
function fileKey(a: AttrInfo, c: ChannelInfo): string {
  return a.filename && a.filename !== a.name
    ? a.filename
    : `${c.isOutput ? 'out' : 'in'}/${c.id}/${a.name}`;
}

function defaultValue(a: AttrInfo, c?: ChannelInfo): string {
  if (a.value !== undefined) return a.value;
  if (isAvailableList(a.name)) return '';
  if (a.name === 'scale') return c?.scanScale !== undefined ? cFixed(c.scanScale) : '1.000000';
  return '0';
}

/** The buffer's data_available: scans waiting to be read, or queued to be played. */
function waitingScans(dev: EmuDevice): number {
  const input = dev.input as { available?: () => number } | null;
  if (input?.available) return input.available();
  const output = dev.output as { queued?: () => number } | null;
  return output?.queued ? output.queued() : 0;
}

/**
 * `emu:file.xml` — any libiio XML context brought to life: attributes answer the XML's
 * values (or plausible defaults) and keep what is written; buffered input channels
 * generate sine tones from their format (I/Q pairs 90° apart) at the device's
 * sampling_frequency; output buffers play at that rate; `thresh_*` event attributes
 * arm threshold events. The description is the XML's, unchanged, so `iiokit info`
 * prints what `iio_info -x` prints, values included.
 */
export function buildXmlContext(
  b: ModelBuilder,
  parsed: ContextInfo,
  source: string,
  options: { maxRate: number; start: number },
): EmuModel {
  const shared = new Map<string, AttrSlot>();
  const built: EmuDevice[] = [];
  for (const d of parsed.devices) {
    const rate = describedRate(d);
    const dev = new EmuDevice(d, {
      rate,
      maxRate: options.maxRate,
      start: options.start,
      canTrigger: d.channels.some((c) => !c.isOutput && c.isScanElement),
    });
    b.devices.set(d, dev);
    built.push(dev);
    let k = 0;
    for (const ch of dev.channels) {
      const c = ch.info;
      if (c.isOutput || !c.isScanElement || !c.format?.length || ch.isTimestamp) continue;
      const { min, max } = ch.range;
      const span = max - min;
      ch.generator = new Generator(
        {
          waveform: 'sine',
          frequency: rate / (64 * (1 + (Math.floor(k / 2) % 4))),
          amplitude: Math.floor(span / 4),
          offset: c.format.isSigned ? 0 : Math.floor((min + max) / 2),
          phase: (k % 2) * 0.25,
        },
        dev.rate,
        ch.range,
        0x3000 + k,
      );
      k++;
    }

    const slotFor = (key: string, a: AttrInfo, make: () => AttrSlot): AttrSlot => {
      let s = shared.get(key);
      if (!s) {
        s = make();
        shared.set(key, s);
      }
      b.slots.set(a, s);
      return s;
    };
    const plain = (a: AttrInfo, c?: ChannelInfo): AttrSlot => {
      const failed = a.value === CAPTURED_ERROR;
      if (isAvailableList(a.name)) {
        return failed ? unknownReadOnly() : live(() => defaultValue(a, c));
      }
      if (a.name === 'sampling_frequency') {
        const initial = defaultValue(a, c);
        return stored(failed ? undefined : initial === '0' ? String(rate) : initial, {
          numeric: true,
          min: 1e-6,
          onWrite: (v) => dev.setOwnRate(Number(v)),
        });
      }
      return stored(failed ? undefined : defaultValue(a, c));
    };
    for (const a of d.attrs) slotFor(`${d.id}\0dev\0${a.name}`, a, () => plain(a));
    for (const a of d.bufferAttrs) {
      if (a.name === 'data_available')
        b.slots.set(
          a,
          live(() => String(waitingScans(dev))),
        );
      else slotFor(`${d.id}\0buf\0${a.name}`, a, () => plain(a));
    }
    for (const a of d.eventAttrs ?? []) slotFor(`${d.id}\0evt\0${a.name}`, a, () => plain(a));
    for (const a of d.debugAttrs) {
      if (a.name === 'direct_reg_access') b.slots.set(a, registerSlot(dev));
      else slotFor(`${d.id}\0dbg\0${a.name}`, a, () => plain(a));
    }
    for (const ch of dev.channels) {
      const c = ch.info;
      for (const a of c.attrs) {
        const key = `${d.id}\0chn\0${fileKey(a, c)}`;
        if (a.name === 'raw' && ch.generator) {
          b.slots.set(
            a,
            live(() => String(ch.valueAt(Math.max(0, dev.nowIndex() - 1)))),
          );
        } else slotFor(key, a, () => plain(a, c));
      }
      for (const a of c.eventAttrs ?? []) {
        slotFor(`${d.id}\0evt\0${fileKey(a, c)}`, a, () => plain(a, c));
      }
    }
  }

  // Device families the XML identifies get their drivers' behaviour (transceivers.ts).
  modelBoards(new BoardContext(built, b.slots));

  for (const dev of built) {
    const d = dev.info;
    for (const ch of dev.channels) {
      const c = ch.info;
      // Channel attributes are validated against their own _available, else the device's.
      for (const a of c.attrs) {
        const sib =
          c.attrs.find((x) => x.name === `${a.name}_available`) ??
          d.attrs.find((x) => x.name === `${a.name}_available`);
        const slot = b.slots.get(a);
        if (sib && slot && slot.write) slot.available = b.slots.get(sib);
      }
      const det = detectorOf(b, ch);
      if (det) b.detectors.set(dev, [...(b.detectors.get(dev) ?? []), det]);
    }
    b.linkAvailable(d.attrs);
    b.linkAvailable(d.debugAttrs);
  }
  const desc = `Emulated by iiokit (emu:) from ${basename(source)}`;
  return b.build({
    ...parsed,
    name: 'emu',
    description: parsed.description ? `${desc}: ${parsed.description}` : desc,
  });
}

/** A threshold detector for a channel whose event attributes include thresh_*_en/value. */
function detectorOf(b: ModelBuilder, ch: EmuChannel): Detector | undefined {
  if (!ch.generator) return undefined;
  const ev = ch.info.eventAttrs ?? [];
  const find = (n: string): AttrSlot | undefined => {
    const a = ev.find((x) => x.name === n);
    return a ? b.slots.get(a) : undefined;
  };
  const dir = (
    d: 'rising' | 'falling',
  ): { enabled: () => boolean; value: () => number } | undefined => {
    const en = find(`thresh_${d}_en`) ?? find('thresh_either_en');
    const val = find(`thresh_${d}_value`) ?? find('thresh_either_value');
    if (!en || !val) return undefined;
    // A captured ERROR reads as "off" here rather than failing the event loop.
    const text = (s: AttrSlot): string => {
      try {
        return s.read().trim();
      } catch {
        return '';
      }
    };
    return { enabled: () => text(en) === '1', value: () => Number(text(val)) };
  };
  const rising = dir('rising');
  const falling = dir('falling');
  if (!rising && !falling) return undefined;
  return {
    channel: ch,
    settings: { rising, falling },
    risingCode: channelEventCode(ch.info.id, 'rising'),
    fallingCode: channelEventCode(ch.info.id, 'falling'),
  };
}
