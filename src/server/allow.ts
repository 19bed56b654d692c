import { BlockList, isIP } from 'node:net';
import { IioError } from '../errors';

/** `::ffff:1.2.3.4` (an IPv4 peer on a dual-stack socket) → `1.2.3.4`. */
export function normalizeAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1] : address;
}

/** True for 127.0.0.0/8 and ::1. */
export function isLoopback(address: string): boolean {
  const a = normalizeAddress(address);
  return a === '::1' || /^127\./.test(a);
}

/**
 * Who may connect: loopback always, and the addresses in `allow` (CIDR such as
 * `192.168.2.0/24`, `fe80::/10`, or single addresses). Throws EINVAL naming a bad entry.
 */
export class AllowList {
  private readonly list = new BlockList();
  readonly entries: readonly string[];

  constructor(allow: readonly string[] = []) {
    this.entries = [...allow];
    for (const raw of allow) {
      const entry = raw.trim();
      const [addr, prefixText, extra] = entry.split('/');
      const family = isIP(addr);
      const max = family === 4 ? 32 : 128;
      const prefix = prefixText === undefined ? max : Number(prefixText);
      if (
        !family ||
        extra !== undefined ||
        (prefixText !== undefined && !/^\d+$/.test(prefixText)) ||
        !(prefix >= 0 && prefix <= max)
      ) {
        throw new IioError(
          'EINVAL',
          `bad --allow entry "${raw}": expected an address or CIDR such as 192.168.2.0/24 or fe80::/10`,
        );
      }
      this.list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  allows(address: string | undefined): boolean {
    if (!address) return false;
    const a = normalizeAddress(address);
    if (isLoopback(a)) return true;
    const family = isIP(a);
    if (!family) return false;
    return this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}
