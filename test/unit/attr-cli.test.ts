/**
 * `iiokit attr` against libiio's iio_attr on this machine, on an XML context (the VM's,
 * from iio_genxml): option handling, listings, wildcards, messages and exit statuses.
 * Reads and writes of an XML context fail with ENOSYS in both. (The same queries on the
 * real kernel are in test/kernel/local-compare.test.ts.)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { strMatch } from '../../src/cli/attr';
import { iiokit } from '../helpers/cli';
import { PEERS, requirePeer, run } from '../helpers/peers';
import { SYSFS_FIXTURES } from '../helpers/sysfs-snapshot';

const XML = join(SYSFS_FIXTURES, 'linux-6.12', 'iio_genxml.xml');

const CASES: string[][] = [
  ['-d', '-c'],
  ['-C', '-D', 'x'],
  [],
  ['-q'],
  ['-d', 'a', 'b', 'c', 'd'],
  ['-c', 'a', 'b', 'c', 'd', 'e'],
  ['-B', 'a', 'b', 'c', 'd'],
  ['-D', 'a', 'b', 'c', 'd'],
  ['-C', 'a', 'b'],
  ['-d', 'dummy0', '*', '5'],
  ['-c', '.', 'voltage0', 'raw', '5'],
  ['-d'],
  ['-q', '-d'],
  ['-c'],
  ['-c', '-s', '-o'],
  ['-c', '-i', '-o', '-s'],
  ['-c', '-i'],
  ['-B'],
  ['-D'],
  ['-C'],
  ['-C', '*'],
  ['-C', 'URI'],
  ['-I', '-C', 'URI'],
  ['-c', 'dummy0'],
  ['-c', '-s', 'dummy0'],
  ['-c', '-o', 'dummy0'],
  ['-c', 'hrtimer0'],
  ['-c', 'dummy0', 'voltage0'],
  ['-c', 'dummy0', 'nosuch'],
  ['-c', '-i', 'dummy0', 'nosuch'],
  ['-c', '-o', '-s', 'dummy0', 'nosuch'],
  ['-c', 'dummy0', 'voltage0', 'nosuch'],
  ['-c', 'dummy0', '*age*', 'raw'],
  ['-c', 'dummy0', '*_x'],
  ['-c', 'dummy0', 'voltage0', 'raw', '-5'],
  ['-c', '-o', 'dummy0', 'voltage0', 'raw', '5'],
  ['-v', '-c', '-o', 'dummy0', 'voltage0', 'raw', '5'],
  ['-q', '-c', '-o', 'dummy0', 'voltage0', 'raw', '5'],
  ['-d', 'dummy0'],
  ['-d', 'DUMMY0'],
  ['-I', '-d', 'DUMMY0'],
  ['-d', 'dummy*', '.'],
  ['-d', 'loopback_dac'],
  ['-d', 'dummy0', 'current_timestamp_clock', 'monotonic'],
  ['-v', '-d', 'dummy0', 'current_timestamp_clock', 'monotonic'],
  ['-d', 'nosuch'],
  ['-B', 'loopback_dac'],
  ['-B', 'hrtimer0'],
  ['-B', 'loopback_dac', 'direction', 'in'],
  ['-D', 'loopback_dac'],
  ['-D', 'dummy0'],
  ['-D', 'loopback_dac', 'nosuch'],
  ['-D', 'loopback_dac', 'direct_reg_access', '0x10'],
  ['-z', '-d'],
  ['--device-attr'],
  ['--context-attr', '--ignore-case', 'Uri'],
];

describe("iiokit attr and libiio's iio_attr agree on an XML context", function () {
  this.timeout(60000);
  before(function () {
    requirePeer(this, PEERS.iioInfo);
  });

  for (const args of CASES) {
    it(`iio_attr -x <vm.xml> ${args.join(' ')}`, async () => {
      const theirs = run('iio_attr', ['-x', XML, ...args]);
      const ours = await iiokit(['attr', '-x', XML, ...args]);
      assert.equal(ours.stdout, theirs.stdout);
      assert.equal(ours.status, theirs.status);
      // getopt names the program in its own message: ours is "iiokit attr"
      assert.equal(
        ours.stderr,
        theirs.stderr.replace(/^iio_attr: invalid/m, 'iiokit attr: invalid'),
      );
    });
  }

  it("str_match: iio_attr's wildcard rules, quirks included", () => {
    assert.equal(strMatch('voltage0', 'voltage0', false), true);
    assert.equal(strMatch('voltage0', '.', false), true);
    assert.equal(strMatch('voltage0', '*', false), true);
    assert.equal(strMatch('voltage0', 'volt*', false), true);
    assert.equal(strMatch('voltage0', '*tage0', false), true);
    assert.equal(strMatch('voltage0', '*lta*', false), true);
    assert.equal(strMatch('voltage0', 'VOLTAGE0', false), false);
    assert.equal(strMatch('voltage0', 'VOLTAGE0', true), true);
    assert.equal(strMatch(undefined, '*', false), false);
    assert.equal(strMatch('', '*', false), false);
    // libiio looks at the first occurrence only: "*raw" does not match "rawraw"
    assert.equal(strMatch('rawraw', '*raw', false), false);
    assert.equal(strMatch('xraw', '*raw', false), true);
  });
});
