import { IioError } from '../../errors';
import { strtol, toUint32 } from '../../util/cnumber';
import type { AttrSlot } from './attrs';
import type { EmuDevice } from './device';

/**
 * The kernel's `sscanf("%i")` on one word, into a 32-bit register: decimal, 0x-hex or
 * 0-octal, optionally signed, modulo 2^32; undefined unless the whole word is a number.
 */
function parseRegisterWord(word: string): number | undefined {
  const r = strtol(word, 0);
  return r.end === word.length && word.length > 0 ? toUint32(r.value) : undefined;
}

/** Reads a 32-bit register of an emulated device (all start at 0). */
export function readRegister(dev: EmuDevice, address: number): number {
  return dev.registers.get(address >>> 0) ?? 0;
}

export function writeRegister(dev: EmuDevice, address: number, value: number): void {
  dev.registers.set(address >>> 0, value >>> 0);
}

/**
 * The debugfs `direct_reg_access` attribute as the IIO core implements it: writing
 * "addr" selects a register, "addr value" writes it, reading gives "0x%X" of the
 * selected register.
 */
export function registerSlot(dev: EmuDevice): AttrSlot {
  return {
    read: () => `0x${readRegister(dev, dev.registerAddress).toString(16).toUpperCase()}`,
    write: (v) => {
      const parts = v.trim().split(/\s+/);
      const nums = parts.map(parseRegisterWord);
      if (!parts[0] || parts.length > 2 || nums.some((n) => n === undefined)) {
        throw new IioError('EINVAL', `"${v}" is not "address" or "address value"`);
      }
      dev.registerAddress = nums[0]!;
      if (nums.length === 2) writeRegister(dev, nums[0]!, nums[1]!);
    },
  };
}
