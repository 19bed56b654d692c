/**
 * src/util/cformat.ts against glibc: the same doubles go through printf("%g") and
 * printf("%.6f") in a C program compiled here with gcc, and the texts must agree. The
 * doubles are edge cases by hand (rounding ties, the %e/%f switch at 1e-4 and 1e6,
 * subnormals) plus a few thousand drawn with a fixed seed over many magnitudes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cFixed, cG } from '../../src/util/cformat';
import { requirePeer, which, type Peer } from '../helpers/peers';

const gcc: Peer = {
  name: 'gcc',
  install: 'apt-get install -y gcc',
  available: () => !!which('gcc'),
};

// Inputs arrive as the 16 hex digits of their IEEE bits, so every double is exact.
const PROGRAM = String.raw`
#include <stdio.h>
#include <string.h>
int main(void) {
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    unsigned long long bits; double d;
    sscanf(line, "%llx", &bits);
    memcpy(&d, &bits, sizeof d);
    printf("%g|%.6f\n", d, d);
  }
  return 0;
}
`;

function bitsOf(x: number): string {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x, 0);
  return b.toString('hex');
}

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('C number formatting (src/util/cformat.ts) against glibc', function () {
  this.timeout(60000);
  before(function () {
    requirePeer(this, gcc);
  });

  it('%g and %.6f print what glibc prints', () => {
    const inputs = [
      0, -0, 1, -1, 0.5, 100, 1e6, 999999.5, 999999.4, 9999995, 9999994, 0.0001, 0.00001,
      0.000099999995, 123456789, 1e-300, 5e-324, 1.7976931348623157e308, 2.5e-5, 0.1, 0.3, 2.675,
      0.0078125, 12345.65, 61440000, 2083333, 520833, 3.14159265, 1e21, -2.5, 0.125,
    ];
    const r = rng(13);
    for (let i = 0; i < 3000; i++) {
      const mag = Math.floor(r() * 40) - 20;
      const v = (r() - 0.5) * 2 * 10 ** mag;
      // some values on a grid, where ties are likely
      inputs.push(i % 3 === 0 ? Math.round(v * 1000) / 1000 : v);
    }
    const dir = mkdtempSync(join(tmpdir(), 'iiokit-cformat-'));
    let lines: string[];
    try {
      writeFileSync(join(dir, 'g.c'), PROGRAM);
      execFileSync('gcc', ['-O1', '-o', join(dir, 'g'), join(dir, 'g.c')]);
      lines = execFileSync(join(dir, 'g'), {
        input: inputs.map(bitsOf).join('\n') + '\n',
        encoding: 'utf8',
      })
        .trimEnd()
        .split('\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(lines.length, inputs.length);
    const bad: string[] = [];
    inputs.forEach((x, i) => {
      const ours = `${cG(x)}|${cFixed(x)}`;
      if (ours !== lines[i]) bad.push(`${x}: glibc ${lines[i]}, ours ${ours}`);
    });
    assert.deepEqual(bad.slice(0, 10), []);
  });
});
