/**
 * The flows.nodered.org scorecard (`node-red-dev validate`). The tool itself runs first;
 * here it stops where it needs the public catalogue (no network but the registries), so
 * the rules it cannot reach are checked the same way below: keyword, Node-RED and Node
 * version ranges, statically parseable editor files, every node in an example,
 * dependency count, known-bad packages.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { ROOT } from './helpers';

interface Pkg {
  name: string;
  license?: string;
  keywords?: string[];
  repository?: unknown;
  bugs?: unknown;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  'node-red'?: { version?: string; nodes?: Record<string, string> };
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Pkg;
const devTool = dirname(require.resolve('node-red-dev/package.json'));
// The scorecard's own parser and semver, as node-red-dev uses them.
const acorn = require(require.resolve('acorn', { paths: [devTool] })) as {
  parse(src: string, opts: { ecmaVersion: 'latest' }): unknown;
};
const walk = require(require.resolve('acorn-walk', { paths: [devTool] })) as {
  simple(ast: unknown, visitors: Record<string, (node: AstNode) => void>): void;
};
const semver = require(require.resolve('semver', { paths: [devTool] })) as {
  satisfies(v: string, range: string): boolean;
  intersects(a: string, b: string): boolean;
  minVersion(range: string): { version: string } | null;
};

interface AstNode {
  type: string;
  value?: unknown;
  callee?: { property?: { name?: string } };
  arguments?: AstNode[];
  properties?: Array<{ key: { name?: string; value?: string }; value: AstNode }>;
}

/** What N01/N02 read from an editor file: the literal registerType calls and their definitions. */
function nodeDefinitions(htmlFile: string): Map<string, Record<string, AstNode>> {
  const html = readFileSync(htmlFile, 'utf8');
  const defs = new Map<string, Record<string, AstNode>>();
  const re = /<script.+?type=['"]text\/javascript['"].*?>([\S\s]*?)<\/script>/gi;
  let m: RegExpExecArray | null;
  while ((m = re.exec(html)) !== null) {
    walk.simple(acorn.parse(m[1], { ecmaVersion: 'latest' }), {
      CallExpression(node: AstNode) {
        if (node.callee?.property?.name !== 'registerType') return;
        const [type, def] = node.arguments ?? [];
        assert.equal(type.type, 'Literal', `${htmlFile}: registerType needs a literal type`);
        assert.equal(
          def.type,
          'ObjectExpression',
          `${htmlFile}: registerType needs an inline definition`,
        );
        const props: Record<string, AstNode> = {};
        for (const p of def.properties ?? []) props[p.key.name ?? p.key.value ?? ''] = p.value;
        defs.set(String(type.value), props);
      },
    });
  }
  return defs;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('nodes: flows.nodered.org scorecard', function () {
  this.timeout(60000);

  it('node-red-dev validate passes every rule it reaches', function () {
    const bin = join(devTool, 'bin', 'run');
    const r = spawnSync(process.execPath, [bin, 'validate', '-p', ROOT], {
      encoding: 'utf8',
      timeout: 50000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    // Each rule prints a ✅ line when it passes and a warning naming the rule otherwise.
    const passed = out.split('\n').filter((l) => l.startsWith('✅'));
    assert.ok(passed.length >= 4, out);
    assert.doesNotMatch(out, /\b(P0\d|N0\d|D0\d)\b/, out);
    for (const ok of ['licensed', 'Repository/Bugs Link', 'Scoped Name'])
      assert.match(out, new RegExp(ok));
    // Without network it stops at the catalogue lookup (P08); with network it completes.
    assert.match(out, /ENOTFOUND|EAI_AGAIN|Complete/, out);
  });

  it('P05: keywords contain node-red; P01, P03, P04: license, repository, scoped name', function () {
    assert.ok(pkg.keywords?.includes('node-red'));
    assert.ok(pkg.license);
    assert.ok(pkg.repository || pkg.bugs);
    assert.match(pkg.name, /^@[a-z\d][\w-.]+\/[a-z\d][\w-.]*$/);
  });

  it('P06: node-red.version covers Node-RED 4.x and 5.x, and the installed runtime', function () {
    const range = pkg['node-red']?.version ?? '';
    assert.ok(range, 'node-red.version is declared');
    assert.ok(semver.intersects(range, '4.x'), `${range} covers 4.x`);
    assert.ok(semver.intersects(range, '5.x'), `${range} covers 5.x`);
    assert.ok(!semver.satisfies('3.1.0', range), `${range} excludes 3.x (untested)`);
    const installed = (require('node-red/package.json') as { version: string }).version;
    assert.ok(semver.satisfies(installed, range), `installed Node-RED ${installed}`);
  });

  it('P07: engines.node accepts the minimum Node of Node-RED 4 (installed) and 5 (22.9)', function () {
    const range = pkg.engines?.node ?? '';
    assert.ok(range);
    const nr = require('node-red/package.json') as { engines: { node: string } };
    const min4 = semver.minVersion(nr.engines.node)?.version ?? '';
    assert.ok(semver.satisfies(min4, range), `Node ${min4} (Node-RED 4's minimum) in ${range}`);
    assert.ok(semver.satisfies('22.9.0', range), `Node 22.9.0 (Node-RED 5's minimum) in ${range}`);
    assert.ok(semver.satisfies(process.versions.node, range));
  });

  it('editor files: literal registerType next to each node .js, help, locale, icon', function () {
    const nodes = pkg['node-red']?.nodes ?? {};
    assert.deepEqual(Object.keys(nodes).sort(), [
      'iio-attr-read',
      'iio-attr-write',
      'iio-capture',
      'iio-context',
      'iio-event',
      'iio-push',
      'iio-sparkplug',
    ]);
    for (const [type, js] of Object.entries(nodes)) {
      const file = join(ROOT, js);
      assert.ok(existsSync(file), js);
      const defs = nodeDefinitions(file.replace(/\.js$/, '.html'));
      assert.deepEqual([...defs.keys()], [type], `${js}: registers exactly ${type}`);
      const def = defs.get(type)!;
      assert.equal(def.defaults?.type, 'ObjectExpression', `${type}: defaults inline`);
      assert.equal(def.category?.type, 'Literal', `${type}: category literal`);
      const dir = dirname(file);
      const help = readFileSync(join(dir, 'locales', 'en-US', `${type}.html`), 'utf8');
      assert.match(help, new RegExp(`data-help-name="${type}"`));
      assert.match(help, /<p>[^<]{10,}<\/p>/, `${type}: help starts with a summary paragraph`);
      const locale = JSON.parse(
        readFileSync(join(dir, 'locales', 'en-US', `${type}.json`), 'utf8'),
      ) as Record<string, unknown>;
      assert.ok(locale[type], `${type}: locale catalogue`);
      if (def.category?.value !== 'config') {
        assert.equal(def.icon?.type, 'Literal', `${type}: icon literal`);
        assert.ok(existsSync(join(dir, 'icons', String(def.icon?.value))), `${type}: icon file`);
      }
      // Every i18n key the editor template uses exists in the catalogue.
      const html = readFileSync(file.replace(/\.js$/, '.html'), 'utf8');
      for (const [, attrKey] of html.matchAll(/data-i18n="([^":]+)"/g)) {
        // `[placeholder]key` sets an attribute instead of the text.
        const key = attrKey.replace(/^\[[a-z]+\]/, '');
        const value = key
          .split('.')
          .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], locale);
        assert.equal(typeof value, 'string', `${type}: i18n key ${key}`);
      }
    }
  });

  it('N02: every non-config node appears in an example flow', function () {
    const used = new Set(
      filesUnder(join(ROOT, 'examples'))
        .filter((f) => extname(f) === '.json')
        .flatMap((f) =>
          (JSON.parse(readFileSync(f, 'utf8')) as Array<{ type: string }>).map((n) => n.type),
        ),
    );
    for (const [type, js] of Object.entries(pkg['node-red']?.nodes ?? {})) {
      const def = nodeDefinitions(join(ROOT, js.replace(/\.js$/, '.html'))).get(type)!;
      if (def.category?.value === 'config') continue;
      assert.ok(used.has(type), `${type} is in examples/`);
    }
  });

  it('D01: at most 6 runtime dependencies; D02: none of the known-bad packages in the runtime tree', function () {
    const deps = Object.keys(pkg.dependencies ?? {});
    assert.ok(deps.length <= 6, `${deps.length} runtime dependencies: ${deps.join(', ')}`);
    for (const dev of [
      'node-red',
      '@flowfuse/node-red-dashboard',
      'playwright-core',
      'node-red-node-test-helper',
      'node-red-dev',
    ]) {
      assert.ok(!deps.includes(dev), `${dev} is not a runtime dependency`);
    }
    const bad = JSON.parse(
      readFileSync(join(devTool, 'src', 'badpackages.json'), 'utf8'),
    ) as Record<string, string>;
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; dev?: boolean; devOptional?: boolean }>;
    };
    const runtime = Object.entries(lock.packages).filter(
      ([p, e]) => p.startsWith('node_modules/') && !e.dev,
    );
    for (const [p, e] of runtime) {
      const name = p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length);
      if (bad[name] && e.version)
        assert.ok(!semver.satisfies(e.version, bad[name]), `${name}@${e.version} is known bad`);
    }
  });
});
