import type { AttrInfo, ContextInfo, DeviceInfo } from '../../model/info';
import type { AttrSlot } from './attrs';
import type { EmuDevice } from './device';
import type { Detector } from './events';

/** An emulated context: its description plus everything that makes it behave. */
export interface EmuModel {
  readonly info: ContextInfo;
  readonly devices: ReadonlyMap<DeviceInfo, EmuDevice>;
  /** How each attribute of the description is read and written. */
  readonly slots: ReadonlyMap<AttrInfo, AttrSlot>;
  /** Threshold detectors per device (devices with events). */
  readonly detectors: ReadonlyMap<EmuDevice, readonly Detector[]>;
}

/** Collects attributes and their slots while a context is described. */
export class ModelBuilder {
  readonly slots = new Map<AttrInfo, AttrSlot>();
  readonly devices = new Map<DeviceInfo, EmuDevice>();
  readonly detectors = new Map<EmuDevice, Detector[]>();

  /** Appends an attribute to `list` and registers its slot. */
  add(list: AttrInfo[], name: string, slot: AttrSlot, filename?: string): AttrInfo {
    const info: AttrInfo = filename === undefined ? { name } : { name, filename };
    list.push(info);
    this.slots.set(info, slot);
    return info;
  }

  /** Links every attribute of a list to its `<name>_available` sibling, for validation. */
  linkAvailable(list: readonly AttrInfo[]): void {
    for (const a of list) {
      const sibling = list.find((x) => x.name === `${a.name}_available`);
      const slot = this.slots.get(a);
      if (sibling && slot) slot.available = this.slots.get(sibling);
    }
  }

  build(info: ContextInfo): EmuModel {
    return { info, devices: this.devices, slots: this.slots, detectors: this.detectors };
  }
}
