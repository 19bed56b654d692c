import { IioError } from '../../errors';
import type { AttrSlot } from './attrs';
import type { EmuDevice } from './device';

/** C's `%i`: decimal, 0x-hex or 0-octal, optionally signed. */
function parseCInt(text: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return undefined;
  const body = m[2];
  const v = /^0[xX]/.test(body)
    ? parseInt(body.slice(2), 16)
    : body.length > 1 && body.startsWith('0')
      ? parseInt(body, 8)
      : parseInt(body, 10);
  return m[1] === '-' ? -v : v;
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
      const nums = parts.map(parseCInt);
      if (!parts[0] || parts.length > 2 || nums.some((n) => n === undefined)) {
        throw new IioError('EINVAL', `"${v}" is not "address" or "address value"`);
      }
      dev.registerAddress = nums[0]! >>> 0;
      if (nums.length === 2) writeRegister(dev, nums[0]!, nums[1]!);
    },
  };
}
