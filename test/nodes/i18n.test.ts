/**
 * Texts and help (issue 14 items 9 and 10): every key the editor and the runtime use is in
 * the catalogue, a second locale (de) has the same keys and a help page per node, every
 * dialog field is described in the help's Properties, and the help's links work from the
 * npm package (absolute URLs; the page they point to ships in the package too).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers';

const TYPES = [
  'iio-context',
  'iio-attr-read',
  'iio-attr-write',
  'iio-capture',
  'iio-event',
  'iio-push',
];
const LOCALES = join(ROOT, 'nodes', 'locales');
type Catalogue = Record<string, unknown>;

const catalogue = (lang: string, type: string): Catalogue =>
  JSON.parse(readFileSync(join(LOCALES, lang, `${type}.json`), 'utf8')) as Catalogue;

function lookup(cat: Catalogue, key: string): unknown {
  return key.split('.').reduce<unknown>((o, k) => (o as Catalogue | undefined)?.[k], cat);
}

function keysOf(o: Catalogue, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' ? keysOf(v as Catalogue, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

describe('nodes: locales and help', function () {
  it('de has the same keys as en-US, and a help page per node', function () {
    assert.deepEqual(
      readdirSync(join(LOCALES, 'de')).sort(),
      readdirSync(join(LOCALES, 'en-US')).sort(),
    );
    for (const type of TYPES) {
      assert.deepEqual(
        keysOf(catalogue('de', type)).sort(),
        keysOf(catalogue('en-US', type)).sort(),
        type,
      );
      const help = readFileSync(join(LOCALES, 'de', `${type}.html`), 'utf8');
      assert.match(help, new RegExp(`data-help-name="${type}"`));
    }
  });

  it('every key the editor files use is in the catalogue', function () {
    const context = catalogue('en-US', 'iio-context');
    for (const type of TYPES) {
      const cat = catalogue('en-US', type);
      const html = readFileSync(join(ROOT, 'nodes', `${type}.html`), 'utf8');
      for (const [, k] of html.matchAll(/this\._\('([^']+)'/g)) {
        // `'prefix.' + value`: the prefix names a group of keys.
        const want = k.endsWith('.') ? 'object' : 'string';
        assert.equal(typeof lookup(cat, k.replace(/\.$/, '')), want, `${type}: this._('${k}')`);
      }
      for (const [, k] of html.matchAll(/\btr\('([^']+)'/g))
        assert.equal(
          typeof lookup(context, `iio-context.editor.${k}`),
          'string',
          `${type}: tr('${k}')`,
        );
      // Nothing but keys in option texts and placeholders.
      assert.doesNotMatch(html, /placeholder="/, `${type}: a placeholder without a key`);
    }
  });

  it('every key the runtime uses is in the catalogue', function () {
    const dir = join(ROOT, 'src', 'nodes');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
      const src = readFileSync(join(dir, f), 'utf8');
      const uses = [
        ...src.matchAll(
          /\bt\(\s*(?:this\.)?RED,\s*'([\w-]+)',\s*(?:'([\w.]+)'|[^,]+\?\s*'([\w.]+)'\s*:\s*'([\w.]+)')/g,
        ),
        ...src.matchAll(/statusKey\(\s*'([\w-]+)',\s*'([\w.]+)'/g),
      ];
      for (const m of uses) {
        const type = m[1];
        for (const key of m.slice(2).filter(Boolean)) {
          assert.equal(
            typeof lookup(catalogue('en-US', type), `${type}.${key}`),
            'string',
            `${f}: ${type}.${key}`,
          );
        }
      }
    }
  });

  it('every dialog field is described in the help Properties, with links that work from the package', function () {
    for (const type of TYPES) {
      const cat = catalogue('en-US', type);
      const html = readFileSync(join(ROOT, 'nodes', `${type}.html`), 'utf8');
      const help = readFileSync(join(LOCALES, 'en-US', `${type}.html`), 'utf8');
      const props = /<h3>Properties<\/h3>([\s\S]*?)<\/dl>/.exec(help)?.[1] ?? '';
      assert.ok(props, `${type}: a Properties section`);
      const described = [...props.matchAll(/<dt>([^<]+)/g)].map((m) => m[1].trim());
      for (const [, key] of html.matchAll(/data-i18n="([\w-]+\.label\.\w+)"/g)) {
        const label = String(lookup(cat, key));
        assert.ok(
          described.some((d) => d.startsWith(label)),
          `${type}: field "${label}" in Properties (${described.join(', ')})`,
        );
      }
      const refs = /<h3>References<\/h3>([\s\S]*?)<\/ul>/.exec(help)?.[1] ?? '';
      const links = [...refs.matchAll(/href="([^"]+)"/g)].map((m) => m[1]);
      assert.ok(links.length >= 2, `${type}: References`);
      for (const l of links) assert.match(l, /^https:\/\//, `${type}: ${l} is absolute`);
    }
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    assert.ok(pkg.files.includes('docs/nodes.md'), 'the node reference ships in the package');
  });
});
