import type { AttrInfo, ChannelInfo } from '../../model/info';
import type { AttrSlot } from './attrs';
import type { DdsHost } from './dds';
import type { EmuDevice } from './device';

/** Where an attribute of a described device sits. */
export interface AttrPlace {
  readonly info: AttrInfo;
  readonly kind: 'device' | 'channel' | 'buffer' | 'debug';
  readonly channel?: ChannelInfo;
}

/**
 * The devices of an XML context being brought to life, and their attribute slots, as the
 * device-family models (transceivers.ts, ad9361.ts) see them: find devices by driver name,
 * attributes by where they sit, and replace the plain stored slots with behaviour.
 */
export class BoardContext implements DdsHost {
  constructor(
    readonly devices: readonly EmuDevice[],
    private readonly slots: Map<AttrInfo, AttrSlot>,
  ) {}

  /** The first device whose name matches. */
  device(name: string | RegExp): EmuDevice | undefined {
    return this.devices.find((d) =>
      typeof name === 'string' ? d.info.name === name : name.test(d.info.name ?? ''),
    );
  }

  /** Every attribute of a device, with where it sits. */
  places(dev: EmuDevice): AttrPlace[] {
    const d = dev.info;
    return [
      ...d.attrs.map((info) => ({ info, kind: 'device' as const })),
      ...d.channels.flatMap((channel) =>
        channel.attrs.map((info) => ({ info, kind: 'channel' as const, channel })),
      ),
      ...d.bufferAttrs.map((info) => ({ info, kind: 'buffer' as const })),
      ...d.debugAttrs.map((info) => ({ info, kind: 'debug' as const })),
    ];
  }

  /** The attributes of a device that match. */
  find(dev: EmuDevice, match: (p: AttrPlace) => boolean): AttrPlace[] {
    return this.places(dev).filter(match);
  }

  slot(info: AttrInfo): AttrSlot | undefined {
    return this.slots.get(info);
  }

  setSlot(info: AttrInfo, slot: AttrSlot): void {
    this.slots.set(info, slot);
  }

  /** Gives every matching attribute of a device the same slot; returns how many matched. */
  replace(dev: EmuDevice, match: (p: AttrPlace) => boolean, slot: AttrSlot): number {
    const hits = this.find(dev, match);
    for (const p of hits) this.setSlot(p.info, slot);
    return hits.length;
  }

  /** The current text of an attribute, undefined when it cannot be read. */
  text(info: AttrInfo | undefined): string | undefined {
    if (!info) return undefined;
    try {
      return this.slots.get(info)?.read();
    } catch {
      return undefined;
    }
  }
}

/** A device's buffered channels in scan order (timestamps left out). */
export function scanChannels(dev: EmuDevice, output: boolean): EmuDevice['channels'] {
  return dev.channels
    .filter(
      (c) => c.info.isOutput === output && c.info.isScanElement && !c.isTimestamp && c.info.format,
    )
    .sort((a, b) => a.info.index - b.info.index);
}

/**
 * Wires the ADC's buffered channels to the DAC's, in scan order (RX I/Q pair k ← TX I/Q
 * pair k), behind a switch. Values are scaled between the formats' widths: a 12-bit ADC
 * sees the top 12 bits of the 16-bit words the DAC core is given.
 */
export function wireLoopback(
  adc: EmuDevice,
  dac: EmuDevice,
  enabled: (adcChannelPosition: number) => () => boolean,
): number {
  const rx = scanChannels(adc, false);
  const tx = scanChannels(dac, true);
  const n = Math.min(rx.length, tx.length);
  for (let i = 0; i < n; i++) {
    const gain = 2 ** (rx[i].info.format!.bits - tx[i].info.format!.bits);
    rx[i].loop = { dac, channel: tx[i].number, enabled: enabled(i), gain };
  }
  return n;
}
