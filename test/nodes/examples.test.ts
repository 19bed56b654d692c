/**
 * The example flows as a user imports them (issue 14 item 7): one shared iio-context
 * config node (the editor reuses a config node with the same id on import, instead of
 * adding one "emulator" per example), devices named by label (never iio:deviceN), no two
 * nodes with the same label in a flow, and no node where another one's status is drawn.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exampleFlows } from '../../scripts/start';
import { ROOT } from './helpers';

interface Item {
  id: string;
  type: string;
  z?: string;
  name?: string;
  label?: string;
  x?: number;
  y?: number;
  context?: string;
  device?: string;
  attr?: string;
  channel?: string;
  [k: string]: unknown;
}

const DIR = join(ROOT, 'examples');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
const load = (f: string): Item[] => JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Item[];

/** The label the editor shows (our nodes' label functions; core nodes: name or type). */
function shownLabel(n: Item): string {
  if (n.name) return n.name;
  if (n.label) return n.label;
  if (n.type === 'iio-attr-read' && n.attr)
    return [n.device, n.channel, n.attr].filter(Boolean).join('/');
  if (n.type === 'iio-attr-write' && n.attr)
    return `${[n.device, n.channel, n.attr].filter(Boolean).join('/')} =`;
  if (n.device) return `${n.type} ${n.device}`;
  return n.type;
}

describe('examples: what a user imports', function () {
  it('all examples share one iio-context config node', function () {
    const configs = files.flatMap((f) => load(f).filter((n) => n.type === 'iio-context'));
    for (const f of files) {
      const uses = load(f).some((n) => n.type.startsWith('iio-') && n.type !== 'iio-context');
      const own = load(f).filter((n) => n.type === 'iio-context').length;
      assert.equal(own, uses ? 1 : 0, `${f}: its iio-context`);
    }
    const distinct = new Set(configs.map((c) => JSON.stringify(c)));
    assert.equal(distinct.size, 1, [...distinct].join('\n'));
    const id = configs[0].id;
    for (const f of files)
      for (const n of load(f).filter((x) => x.type.startsWith('iio-') && x.type !== 'iio-context'))
        assert.equal(n.context, id, `${f}: ${n.id}`);
    // npm start deploys them all: one context for everything.
    assert.equal(exampleFlows().filter((n) => n.type === 'iio-context').length, 1);
  });

  it('devices are named by label or name, with the id only as a hint', function () {
    for (const f of files)
      for (const n of load(f).filter((x) => typeof x.device === 'string' && x.device)) {
        assert.doesNotMatch(String(n.device), /^iio:device\d+$/, `${f}: ${n.id}`);
        assert.match(String(n.deviceId), /^iio:device\d+$/, `${f}: ${n.id} keeps the id as a hint`);
      }
  });

  it("no two nodes of a flow show the same label, and no node covers another one's status", function () {
    for (const f of files) {
      const nodes = load(f).filter((n) => typeof n.x === 'number' && typeof n.y === 'number');
      const labels = nodes.map(shownLabel);
      const dup = labels.filter((l, i) => labels.indexOf(l) !== i);
      assert.deepEqual(dup, [], `${f}: ${dup.join(', ')}`);
      for (const a of nodes)
        for (const b of nodes) {
          if (a === b || a.z !== b.z) continue;
          const dy = b.y! - a.y!;
          // A status is drawn under its node: the next row must leave it room.
          const close = dy > 0 && dy < 60 && Math.abs(a.x! - b.x!) < 160;
          assert.ok(!close, `${f}: ${b.id} (${shownLabel(b)}) sits on ${a.id}'s status`);
        }
    }
  });
});
