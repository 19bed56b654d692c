#!/usr/bin/env node
'use strict';
// Developer clones: a build/Release/iiokit.node left from an older checkout loads fine but
// speaks an older interface, and node-gyp-build (npm's install step) only checks that a
// binary exists. Rebuild it when its abiVersion is not the one src/native/index.ts expects.
const { readFileSync, existsSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
const binary = join(root, 'build', 'Release', 'iiokit.node');
const expected = Number(
  /export const NATIVE_ABI = (\d+)/.exec(
    readFileSync(join(root, 'src/native/index.ts'), 'utf8'),
  )?.[1],
);
if (!existsSync(binary) || !expected) process.exit(0);
let found;
try {
  found = require(binary).abiVersion;
} catch {
  found = undefined;
}
if (found === expected) process.exit(0);
process.stderr.write(
  `ensure-native: build/Release/iiokit.node has interface ${found}, the code needs ${expected}: rebuilding\n`,
);
// npm puts its bundled node-gyp on PATH for lifecycle scripts (and names it in npm_config_node_gyp).
const gyp = process.env.npm_config_node_gyp;
const r = gyp
  ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, stdio: 'inherit' })
  : spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit', shell: true });
process.exit(r.status ?? 1);
