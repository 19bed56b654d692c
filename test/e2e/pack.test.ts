/**
 * The package as users get it: `npm pack`, then `npm install --ignore-scripts` into a fresh
 * Node-RED user directory (npm 11 runs no dependency install script unless approved, and
 * boards often have no compiler), then Node-RED 4 started on it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import {
  assertKernelIoctls,
  assertSelfTest,
  NATIVE_CHECK,
  REPO,
  XML_FIXTURE,
  installTarball,
  packOnce,
  parseProbe,
  tempDir,
  type Packed,
} from './pack-fixture';
import { createContext } from '../../src';

const PREBUILT = [
  'prebuilds/linux-x64/iiokit.napi.glibc.node',
  'prebuilds/linux-arm64/iiokit.napi.glibc.node',
  'prebuilds/linux-arm/iiokit.napi.armv7.glibc.node',
];

describe('e2e: the npm package', function () {
  // Building three prebuilds from scratch and installing from the registry take a while;
  // later runs reuse both.
  this.timeout(600_000);
  let packed: Packed;
  let userDir: { dir: string; remove(): void };
  let installed: string;

  before(function () {
    packed = packOnce();
    userDir = tempDir('iiokit-userdir-');
    installed = installTarball(userDir.dir, packed.tarball);
  });
  after(() => userDir?.remove());

  it('ships the prebuilt binaries, the compiled library and the sources for a fallback build, nothing else', () => {
    const paths = packed.files.map((f) => f.path);
    for (const p of PREBUILT) assert.ok(paths.includes(p), `${p} is in the tarball`);
    for (const p of [
      'package.json',
      'README.md',
      'LICENSE',
      'binding.gyp',
      'native/addon.cc',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/native/diagnose.js',
      'bin/iiokit.js',
    ]) {
      assert.ok(paths.includes(p), `${p} is in the tarball`);
    }
    // docs/nodes.md ships on purpose: the nodes' help links to it as their reference.
    assert.ok(paths.includes('docs/nodes.md'), 'the node reference the help links to');
    const stray = paths.filter(
      (p) =>
        (p !== 'docs/nodes.md' &&
          /^(src|test|bench|scripts|docs|build|\.ci|node_modules|dist\/test|dist\/bench)\//.test(
            p,
          )) ||
        /\.(map|tsbuildinfo|ts)$/.test(p.replace(/\.d\.ts$/, '')),
    );
    assert.deepEqual(stray, [], 'no tests, TypeScript sources, maps or build output');
    // Every node file Node-RED is told about is shipped.
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
      'node-red'?: { nodes?: Record<string, string> };
    };
    for (const file of Object.values(pkg['node-red']?.nodes ?? {})) {
      assert.ok(paths.includes(path.posix.normalize(file)), `node file ${file} is shipped`);
      const html = file.replace(/\.js$/, '.html');
      assert.ok(paths.includes(path.posix.normalize(html)), `editor file ${html} is shipped`);
    }
  });

  it('is as big as README says (within a factor 1.5)', () => {
    const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const m = /npm package is about ([\d.]+) (kB|MB) packed/.exec(readme);
    assert.ok(m, 'README states the packed size ("npm package is about N kB packed")');
    const stated = Number(m[1]) * (m[2] === 'MB' ? 1e6 : 1e3);
    const ratio = packed.size / stated;
    assert.ok(
      ratio > 1 / 1.5 && ratio < 1.5,
      `tarball is ${packed.size} bytes, README says ${m[1]} ${m[2]}: update README`,
    );
  });

  it('installs with --ignore-scripts and loads the prebuilt binary, compiling nothing', () => {
    assert.ok(existsSync(path.join(installed, 'package.json')));
    assert.ok(
      !existsSync(path.join(installed, 'build')),
      'no build/ directory: nothing was compiled',
    );
    const probe = parseProbe(
      spawnSync(process.execPath, [NATIVE_CHECK, installed], { encoding: 'utf8' }).stdout,
    );
    assert.ok(probe.status.loaded, JSON.stringify(probe.status));
    assert.equal(probe.status.prebuilt, true);
    assert.equal(
      probe.status.file,
      path.join(installed, 'prebuilds', 'linux-x64', 'iiokit.napi.glibc.node'),
    );
    assertSelfTest(probe);
    assertKernelIoctls(probe.ioctls);
  });

  it('without a matching binary, says why and how to fix it, and xml: still works', async () => {
    // node-gyp-build's LIBC override: what an Alpine (musl) system sees, since we ship glibc only.
    const r = spawnSync(process.execPath, [NATIVE_CHECK, installed, XML_FIXTURE], {
      encoding: 'utf8',
      env: { ...process.env, LIBC: 'musl' },
    });
    assert.equal(r.status, 0, r.stderr);
    const probe = parseProbe(r.stdout);
    assert.equal(probe.status.loaded, false);
    if (probe.status.loaded) return;
    assert.equal(probe.status.code, 'ELIBACC');
    assert.match(probe.status.reason, /no build of the native module for linux-x64 \(musl\)/);
    assert.match(probe.status.reason, /linux-arm64 \(glibc\)/, 'names what is shipped');
    assert.match(probe.status.fix, /node-gyp rebuild/);
    assert.match(probe.status.fix, /apk add/, 'the Alpine packages to build with');
    assert.match(probe.status.fix, /ip:, usb:, serial:, xml:, emu:/);
    assert.equal(probe.xmlError, undefined);
    // The same devices this checkout's library reads from the same XML.
    const ctx = await createContext(`xml:${XML_FIXTURE}`);
    const expected = ctx.devices.map((d) => d.id);
    await ctx.close();
    assert.ok(expected.length > 0);
    assert.deepEqual(probe.xmlDevices, expected);
  });

  it('Node-RED 4 started on the user directory loads the iio nodes', async function () {
    const pkg = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as {
      'node-red'?: { nodes?: Record<string, string> };
    };
    const sets = Object.keys(pkg['node-red']?.nodes ?? {});
    if (sets.length === 0) {
      // PENDING: the nodes land from the `nodes` branch; until then there is nothing to load.
      console.warn('\n  *** SKIPPED: package.json "node-red".nodes declares no node set yet ***');
      this.skip();
    }
    const red = await startNodeRed(userDir.dir);
    try {
      const list = JSON.parse(await get(red.port, '/nodes')) as {
        id: string;
        module: string;
        types: string[];
        enabled: boolean;
        err?: string;
      }[];
      const ours = list.filter((s) => s.module === '@iiokit/node-red-iio');
      assert.deepEqual(ours.map((s) => s.id.split('/').pop()).sort(), [...sets].sort());
      for (const s of ours) {
        assert.equal(s.err, undefined, `${s.id}: ${s.err}`);
        assert.equal(s.enabled, true, `${s.id} enabled`);
        assert.ok(s.types.length > 0, `${s.id} registers node types`);
      }
      const types = ours.flatMap((s) => s.types);
      assert.ok(types.includes('iio-context'), `iio-context among ${types.join(', ')}`);
      assert.doesNotMatch(red.log(), /\[@iiokit\/node-red-iio[^\]]*\] Error/);
    } finally {
      await red.stop();
    }
  });
});

interface RunningRed {
  port: number;
  log(): string;
  stop(): Promise<void>;
}

/** Starts the repo's Node-RED 4 on `userDir`, on an ephemeral port bound to 127.0.0.1. */
async function startNodeRed(userDir: string): Promise<RunningRed> {
  writeFileSync(
    path.join(userDir, 'settings.js'),
    "module.exports = { uiHost: '127.0.0.1', flowFile: 'flows.json', credentialSecret: false, " +
      "logging: { console: { level: 'info' } } };\n",
  );
  const redJs = path.join(REPO, 'node_modules', 'node-red', 'red.js');
  const child: ChildProcess = spawn(process.execPath, [redJs, '-u', userDir, '-p', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /Server now running at http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`Node-RED exited ${code}:\n${out}`)));
  });
  return {
    port,
    log: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function get(port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: urlPath, headers: { Accept: 'application/json' } },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(body)
            : reject(new Error(`GET ${urlPath}: ${res.statusCode} ${body}`)),
        );
      },
    );
    req.on('error', reject);
  });
}
