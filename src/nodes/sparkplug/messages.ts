/**
 * The texts of the Sparkplug edge node come from the node's locale catalogue
 * (nodes/locales/<lang>/iio-sparkplug.json). Inside Node-RED they go through `RED._`; outside
 * (the library, the benchmark, the test helper whose `RED._` echoes keys) the catalogue file
 * is read directly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `key` (below `iio-sparkplug.`) with `__name__` substitutions → text. */
export type Translate = (key: string, subs?: Readonly<Record<string, unknown>>) => string;

/** nodes/locales of this package (this file runs from dist/src/nodes/sparkplug). */
const LOCALES = join(__dirname, '..', '..', '..', '..', 'nodes', 'locales');

function lookup(catalogue: unknown, key: string): string | undefined {
  const v = key
    .split('.')
    .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], catalogue);
  return typeof v === 'string' ? v : undefined;
}

export function substitute(text: string, subs?: Readonly<Record<string, unknown>>): string {
  return text.replace(/__([A-Za-z0-9_]+)__/g, (m, name: string) =>
    subs && name in subs ? String(subs[name]) : m,
  );
}

const catalogues = new Map<string, unknown>();

/** Reads the catalogue of `lang` (falling back to en-US, then to the key itself). */
export function catalogueTranslate(lang = 'en-US'): Translate {
  const load = (l: string): unknown => {
    if (!catalogues.has(l)) {
      const file = join(LOCALES, l, 'iio-sparkplug.json');
      catalogues.set(
        l,
        existsSync(file)
          ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)['iio-sparkplug']
          : undefined,
      );
    }
    return catalogues.get(l);
  };
  return (key, subs) => {
    const text = lookup(load(lang), key) ?? lookup(load('en-US'), key) ?? key;
    return substitute(text, subs);
  };
}
