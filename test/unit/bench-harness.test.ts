import assert from 'node:assert/strict';
import { compare, meetsGoal, renderTable, stat, type Run } from '../../bench/harness';
import { replaceBetweenMarkers } from '../../bench/run';

// The bench's statistics decide what README.md claims: these pin them with figures worked
// out by hand.

const run = (mbPerS: number, round: number, cpuS = 0.5): Run => ({
  bytes: 1e9,
  wallNs: 1e9 * (1000 / mbPerS),
  cpuNs: cpuS * 1e9,
  round,
});

describe('bench harness', () => {
  it('stat: median of odd and even counts, min and max, non-finite values left out', () => {
    assert.deepEqual(stat([5, 1, 3]), { median: 3, min: 1, max: 5, n: 3 });
    assert.deepEqual(stat([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, n: 4 });
    assert.deepEqual(stat([NaN, 2, Infinity]), { median: 2, min: 2, max: 2, n: 1 });
    assert.equal(stat([]).n, 0);
  });

  it('compare: the ratio is the median of per-round ratios, paired by round', () => {
    // round 1 of the reference failed: ours' round 1 has no partner and is left out
    const ours = [run(100, 0), run(300, 1), run(200, 2)];
    const ref = [run(100, 0), run(400, 2)];
    const row = compare('c', { name: 'a', runs: ours }, { name: 'b', runs: ref });
    // pairs: 100/100 = 1, 200/400 = 0.5
    assert.deepEqual(row.ratio, { median: 0.75, min: 0.5, max: 1, n: 2 });
    assert.equal(row.ours.rate.median, 200);
    assert.equal(row.reference!.rate.median, 250);
    // 0.5 CPU seconds for 1 GB
    assert.equal(row.ours.cpu.median, 0.5);
  });

  it('meetsGoal: a ratio goal uses the median ratio, an absolute goal our median', () => {
    const ours = [run(90, 0), run(110, 1), run(100, 2)];
    const ref = [run(100, 0), run(100, 1), run(100, 2)];
    const r = (goal: { ratio: number } | { atLeast: number }) =>
      compare('c', { name: 'a', runs: ours }, { name: 'b', runs: ref }, { goal });
    assert.equal(meetsGoal(r({ ratio: 1.0 })), true);
    assert.equal(meetsGoal(r({ ratio: 1.01 })), false);
    assert.equal(meetsGoal(r({ atLeast: 100 })), true);
    assert.equal(meetsGoal(r({ atLeast: 101 })), false);
    assert.equal(
      meetsGoal(compare('c', { name: 'a', runs: ours }, { name: 'b', runs: ref })),
      undefined,
    );
  });

  it('renderTable: one header row, a row per case, pipes in notes escaped', () => {
    const row = compare(
      'x',
      { name: 'a', runs: [run(100, 0)] },
      { name: 'b', runs: [run(50, 0)] },
      { goal: { ratio: 1.5 }, note: 'iio_readdev | cat' },
    );
    const lines = renderTable([{ ...row, group: 'g' }]).split('\n');
    assert.equal(lines.length, 3);
    assert.equal(lines.filter((l) => l.startsWith('| benchmark')).length, 1);
    assert.match(lines[2], /\| 2\.00× \(2\.00–2\.00\) \| ≥ 1\.50× ✓ \|/);
    assert.match(lines[2], /iio_readdev \\\| cat/);
  });

  it('replaceBetweenMarkers: replaces what stands between the markers only', () => {
    const start = '<!-- bench:table:start (written by `npm run bench`; do not edit) -->';
    const end = '<!-- bench:table:end -->';
    const text = `before\n${start}\nold\n${end}\nafter\n`;
    assert.equal(replaceBetweenMarkers(text, 'new'), `before\n${start}\nnew\n${end}\nafter\n`);
    assert.throws(() => replaceBetweenMarkers('no markers', 'x'), /no .* section/);
  });
});
