import type { AttrInfo } from '../../model/info';
import { stored, type AttrSlot } from './attrs';
import type { DacSource, EmuDevice } from './device';

/**
 * The DDS of ADI's FPGA DAC cores (the cf_axi_dds driver), as its sysfs shows it: output
 * channels `altvoltageN` with `frequency` (Hz), `scale` (fraction of full scale),
 * `phase` (millidegrees) and `raw`. Two tones per DAC channel: altvoltage 2k and 2k+1
 * (TX1_I_F1 and TX1_I_F2, or 1A and 1B) add up on the k-th buffer channel. Writing `raw`
 * switches every tone on (DDS) or off (the DAC outputs zero) — one switch for the whole
 * core, as the driver keeps it. While the DAC's buffer plays, its samples replace the
 * tones; when it stops, the tones come back.
 */

interface Tone {
  readonly frequency?: AttrSlot;
  readonly scale?: AttrSlot;
  readonly phase?: AttrSlot;
}

interface ToneParams {
  readonly cyclesPerSample: number;
  readonly amplitude: number;
  readonly phase: number;
}

/** A numeric attribute's value, 0 when it cannot be read or is not a number. */
function numberOf(slot: AttrSlot | undefined): number {
  if (!slot) return 0;
  try {
    const v = Number(slot.read().trim().split(/\s+/)[0]);
    return Number.isFinite(v) ? v : 0;
  } catch {
    return 0;
  }
}

class DdsSource implements DacSource {
  private cache = new Map<number, { rate: number; tones: ToneParams[] }>();

  constructor(
    private readonly dev: EmuDevice,
    private readonly tones: ReadonlyMap<number, readonly Tone[]>,
    private readonly enabled: () => boolean,
    private readonly fullScale: number,
  ) {}

  /** Forgets parsed tone parameters (a tone attribute was written). */
  invalidate(): void {
    this.cache.clear();
  }

  private params(channel: number): ToneParams[] {
    const rate = this.dev.rate;
    const hit = this.cache.get(channel);
    if (hit && hit.rate === rate) return hit.tones;
    const tones = (this.tones.get(channel) ?? []).map((t) => ({
      cyclesPerSample: numberOf(t.frequency) / rate,
      amplitude: numberOf(t.scale) * this.fullScale,
      phase: numberOf(t.phase) / 360000,
    }));
    this.cache.set(channel, { rate, tones });
    return tones;
  }

  valueAt(channel: number, m: number): number {
    if (!this.enabled()) return 0;
    let v = 0;
    for (const t of this.params(channel)) {
      if (t.amplitude === 0) continue;
      const p = m * t.cyclesPerSample + t.phase;
      v += t.amplitude * Math.sin(2 * Math.PI * (p - Math.floor(p)));
    }
    return v;
  }
}

/** What installDds needs from the context being built. */
export interface DdsHost {
  slot(info: AttrInfo): AttrSlot | undefined;
  setSlot(info: AttrInfo, slot: AttrSlot): void;
}

/**
 * Gives a DAC device with `altvoltageN` DDS channels its tones (idle output). Returns
 * false when the device has none.
 */
export function installDds(host: DdsHost, dev: EmuDevice): boolean {
  const dacChannels = dev.channels
    .filter((c) => c.info.isOutput && c.info.isScanElement && !c.isTimestamp)
    .sort((a, b) => a.info.index - b.info.index);
  const ddsChannels = dev.channels.filter(
    (c) =>
      c.info.isOutput &&
      /^altvoltage\d+$/.test(c.info.id) &&
      c.info.attrs.some((a) => a.name === 'frequency'),
  );
  if (!dacChannels.length || !ddsChannels.length) return false;

  const rawAttrs = ddsChannels.flatMap((c) => c.info.attrs.filter((a) => a.name === 'raw'));
  let on = rawAttrs.some((a) => {
    try {
      return host.slot(a)?.read().trim() === '1';
    } catch {
      return false;
    }
  });
  const tones = new Map<number, Tone[]>();
  const bits = dacChannels[0].info.format?.bits || 16;
  const source = new DdsSource(dev, tones, () => on, 2 ** (bits - 1) - 1);
  const retune = (): void => source.invalidate();
  for (const c of ddsChannels) {
    const n = Number(/^altvoltage(\d+)$/.exec(c.info.id)![1]);
    const dac = dacChannels[Math.floor(n / 2)];
    if (!dac) continue;
    const slotOf = (name: string): AttrSlot | undefined => {
      const a = c.info.attrs.find((x) => x.name === name);
      if (!a) return undefined;
      const old = host.slot(a);
      let initial: string | undefined;
      try {
        initial = old?.read();
      } catch {
        initial = undefined;
      }
      const s = stored(initial, { numeric: true, onWrite: retune });
      host.setSlot(a, s);
      return s;
    };
    const list = tones.get(dac.number) ?? [];
    list.push({ frequency: slotOf('frequency'), scale: slotOf('scale'), phase: slotOf('phase') });
    tones.set(dac.number, list);
  }
  // One switch for the core: any raw written sets all (the driver's st->enable).
  const raw: AttrSlot = {
    read: () => (on ? '1' : '0'),
    write: (v) => {
      on = Number(v) !== 0;
    },
    numeric: true,
    integer: true,
  };
  for (const a of rawAttrs) host.setSlot(a, raw);
  dev.idleSource = source;
  return true;
}
