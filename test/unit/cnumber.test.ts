/**
 * src/util/cnumber.ts against glibc itself: the same strings go through strtol, strtoul,
 * strtoll, strtoull (several bases), atol and atoi in a C program compiled here with gcc,
 * and every value, end offset and ERANGE must agree. The strings are edge cases written
 * by hand plus a few thousand drawn (with a fixed seed) from the characters these
 * parsers care about.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atoi, atol, strtol, strtoll, strtoul, strtoull, toUint32 } from '../../src/util/cnumber';
import { requirePeer, which, type Peer } from '../helpers/peers';

const gcc: Peer = {
  name: 'gcc',
  install: 'apt-get install -y gcc',
  available: () => !!which('gcc'),
};

const BASES = [0, 2, 8, 10, 16, 36];

// One line per input: for each function and base, "value end erange"; then atol, atoi.
// Inputs arrive hex-encoded on stdin, one per line, so any byte but NUL can be tested.
const PROGRAM = String.raw`
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static const int bases[] = { ${BASES.join(', ')} };
int main(void) {
  static char hex[8192], s[4096];
  while (fgets(hex, sizeof hex, stdin)) {
    size_t n = strlen(hex) / 2, i;
    for (i = 0; i < n; i++) { unsigned v; sscanf(hex + 2 * i, "%2x", &v); s[i] = (char)v; }
    s[n] = 0;
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
      char *end; int base = bases[b];
      errno = 0; long l = strtol(s, &end, base);
      printf("%ld %ld %d ", l, (long)(end - s), errno == ERANGE);
      errno = 0; unsigned long ul = strtoul(s, &end, base);
      printf("%lu %ld %d ", ul, (long)(end - s), errno == ERANGE);
      errno = 0; long long ll = strtoll(s, &end, base);
      printf("%lld %ld %d ", ll, (long)(end - s), errno == ERANGE);
      errno = 0; unsigned long long ull = strtoull(s, &end, base);
      printf("%llu %ld %d ", ull, (long)(end - s), errno == ERANGE);
    }
    printf("%ld %d\n", atol(s), atoi(s));
  }
  return 0;
}
`;

const HAND: string[] = [
  '',
  '0',
  '-0',
  '+0',
  '42',
  '  \t\n\v\f\r42',
  '42abc',
  '-42',
  '+-42',
  '- 42',
  '0x',
  '0x1A',
  '0X1a',
  '0xg',
  '-0x10',
  '0x0x10',
  '010',
  '08',
  '09',
  '0b101',
  '0o17',
  'zz',
  'Zz9',
  '9223372036854775807',
  '9223372036854775808',
  '-9223372036854775808',
  '-9223372036854775809',
  '18446744073709551615',
  '18446744073709551616',
  '-18446744073709551615',
  '-18446744073709551616',
  '0x7fffffffffffffff',
  '0x8000000000000000',
  '0xffffffffffffffff',
  '0x10000000000000000',
  '-0xffffffffffffffff',
  '99999999999999999999999999999',
  '01777777777777777777777',
  '02000000000000000000000',
  '2147483647',
  '2147483648',
  '4294967295',
  '4294967296',
  '-2147483649',
  '4294967297000',
  '\u00a042',
  '1e5',
  '12.5',
  ' +0x1f ',
];

/** A small deterministic generator (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function drawn(count: number): string[] {
  const alphabet = ' \t+-00001111789xXaAfFgGzZ';
  const r = rng(20240611);
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const len = Math.floor(r() * 26);
    let s = '';
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(r() * alphabet.length)];
    out.push(s);
  }
  return out;
}

function fromGlibc(inputs: readonly string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'iiokit-cnumber-'));
  try {
    writeFileSync(join(dir, 'strto.c'), PROGRAM);
    execFileSync('gcc', ['-O1', '-o', join(dir, 'strto'), join(dir, 'strto.c')]);
    const stdin = inputs.map((s) => Buffer.from(s, 'latin1').toString('hex')).join('\n') + '\n';
    return execFileSync(join(dir, 'strto'), { input: stdin, encoding: 'utf8' })
      .trimEnd()
      .split('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ours(s: string): string {
  const parts: string[] = [];
  for (const base of BASES) {
    for (const f of [strtol, strtoul, strtoll, strtoull]) {
      const r = f(s, base);
      parts.push(`${r.value} ${r.end} ${r.erange ? 1 : 0}`);
    }
  }
  return `${parts.join(' ')} ${atol(s)} ${atoi(s)}`;
}

describe('C number parsers (util/cnumber) agree with glibc', function () {
  this.timeout(60000);

  it('on hand-picked edge cases and 3000 drawn strings, for every function and base', function () {
    requirePeer(this, gcc);
    // latin1 round trip: the C side sees one byte per character.
    const inputs = [...HAND.map((s) => Buffer.from(s, 'utf8').toString('latin1')), ...drawn(3000)];
    const expected = fromGlibc(inputs);
    assert.equal(expected.length, inputs.length);
    const mismatches: string[] = [];
    for (let i = 0; i < inputs.length; i++) {
      // atol beyond 2^53 is a double on our side: compare it through BigInt's rounding.
      const want = expected[i].split(' ');
      const wantAtol = Number(BigInt(want[want.length - 2]));
      want[want.length - 2] = String(wantAtol);
      const got = ours(inputs[i]);
      if (got !== want.join(' '))
        mismatches.push(`${JSON.stringify(inputs[i])}: glibc ${want.join(' ')}, ours ${got}`);
    }
    assert.deepEqual(mismatches.slice(0, 5), []);
  });

  it('converts to unsigned int modulo 2^32 as C does', function () {
    // (unsigned int) of these, worked by hand: 2^32 + 1 → 1, -1 → 2^32 - 1.
    assert.equal(toUint32(4294967297n), 1);
    assert.equal(toUint32(-1n), 4294967295);
    assert.equal(toUint32(9223372036854775807n), 4294967295);
    assert.equal(toUint32(0n), 0);
  });

  it('refuses a base C does not have', function () {
    assert.throws(() => strtol('1', 1), RangeError);
    assert.throws(() => strtol('1', 37), RangeError);
  });
});
