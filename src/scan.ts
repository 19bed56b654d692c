/** A context that a scan found. */
export interface ContextInfoEntry {
  readonly uri: string;
  readonly description: string;
}

/** A source of contexts (local, DNS-SD, USB): each backend registers one. */
export type ContextScanner = () => Promise<ContextInfoEntry[]>;

const scanners = new Map<string, ContextScanner>();

/** Registers the scanner of a backend (`local`, `ip`, `usb`). */
export function registerScanner(name: string, scanner: ContextScanner): void {
  scanners.set(name, scanner);
}

/**
 * Lists reachable contexts. `filter` is libiio's backend list: `ip`, `usb`,
 * `ip:usb`, `local,usb` (default: all).
 */
export async function scanContexts(filter?: string): Promise<ContextInfoEntry[]> {
  const wanted = filter
    ? filter
        .split(/[:,]/)
        .map((s) => s.split('=')[0])
        .filter(Boolean)
    : [...scanners.keys()];
  const results = await Promise.all(
    wanted.map(async (name) => {
      const s = scanners.get(name);
      if (!s) return [];
      try {
        return await s();
      } catch {
        return [];
      }
    }),
  );
  return results.flat();
}
