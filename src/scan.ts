import { IioError } from './errors';

/** A context that a scan found. */
export interface ContextInfoEntry {
  readonly uri: string;
  readonly description: string;
}

/**
 * A source of contexts (local, DNS-SD, USB): each backend registers one. `args` is what
 * followed `name=` in the filter (libiio's `usb=0456:b673`), if anything.
 */
export type ContextScanner = (args?: string) => Promise<ContextInfoEntry[]>;

const scanners = new Map<string, ContextScanner>();

/** Registers the scanner of a backend (`local`, `ip`, `usb`). */
export function registerScanner(name: string, scanner: ContextScanner): void {
  scanners.set(name, scanner);
}

/**
 * Lists reachable contexts. Rejects with ENODEV when the filter names a backend that
 * cannot scan (as libiio does). `filter` is libiio's backend list: `ip`, `usb`,
 * `ip:usb`, `local,usb` (default: all).
 */
export async function scanContexts(filter?: string): Promise<ContextInfoEntry[]> {
  // `usb=0456:b673` keeps its colon: split on commas first, then on colons between names
  const wanted: Array<{ name: string; args?: string }> = filter
    ? filter
        .split(',')
        .flatMap((part) => {
          const eq = part.indexOf('=');
          if (eq >= 0) return [{ name: part.slice(0, eq), args: part.slice(eq + 1) }];
          return part.split(':').map((name) => ({ name }));
        })
        .filter((w) => w.name)
    : [...scanners.keys()].map((name) => ({ name }));
  // libiio's scan refuses a backend it does not know (ENODEV), rather than finding nothing
  const unknown = wanted.find(({ name }) => !scanners.has(name));
  if (unknown) {
    throw new IioError(
      'ENODEV',
      `no backend "${unknown.name}" to scan (known: ${[...scanners.keys()].join(', ')})`,
      { op: 'scan' },
    );
  }
  const results = await Promise.all(
    wanted.map(async ({ name, args }) => {
      const s = scanners.get(name)!;
      try {
        return await s(args);
      } catch {
        return [];
      }
    }),
  );
  return results.flat();
}
