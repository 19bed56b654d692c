/**
 * local: against libiio 0.24 on the real kernel: iiokit info vs iio_info, toXml vs
 * iio_genxml (through iio_info -x), iiokit attr vs iio_attr on every query of
 * test/fixtures/sysfs/iio-attr-queries.txt. Nothing is normalised away: both list every
 * entry of /sys/bus/iio/devices (iio_evgen and iio_sysfs_trigger included).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext } from '../../src';
import { parseContextXml } from '../../src/xml/parser';
import type { ContextInfo } from '../../src/model/info';
import { cFixed } from '../../src/util/cformat';
import { iiokit } from '../helpers/cli';
import { PEERS, requirePeer, run } from '../helpers/peers';
import { attrQueries, dropVersionLines } from '../helpers/sysfs-snapshot';

function shape(i: ContextInfo): unknown {
  return {
    description: i.description,
    attrs: i.attrs,
    devices: i.devices.map((d) => ({
      id: d.id,
      name: d.name,
      label: d.label,
      attrs: d.attrs.map((a) => a.name),
      bufferAttrs: d.bufferAttrs.map((a) => a.name),
      debugAttrs: d.debugAttrs.map((a) => a.name),
      eventAttrs: (d.eventAttrs ?? []).map((a) => a.name),
      channels: d.channels.map((c) => ({
        id: c.id,
        name: c.name,
        isOutput: c.isOutput,
        index: c.index,
        format: c.format,
        scan: c.isScanElement,
        scale: c.scanScale === undefined ? undefined : cFixed(c.scanScale),
        attrs: c.attrs.map((a) => [a.name, a.filename]),
        eventAttrs: (c.eventAttrs ?? []).map((a) => [a.name, a.filename]),
      })),
    })),
  };
}

describe(`local: vs libiio 0.24 on Linux ${process.env.IIO_VM_KERNEL ?? '?'}`, function () {
  this.timeout(600000);
  before(function () {
    requirePeer(this, PEERS.vm);
    requirePeer(this, PEERS.iioInfo);
  });

  it('iiokit info -u local: prints what iio_info -u local: prints', async () => {
    const theirs = run('iio_info', ['-u', 'local:']);
    const ours = await iiokit(['info', '-u', 'local:']);
    assert.equal(theirs.status, 0, theirs.stderr);
    assert.equal(ours.status, 0, ours.stderr);
    assert.match(theirs.stdout, /^\tiio_sysfs_trigger:$/m);
    assert.match(theirs.stdout, /^\tiio_evgen:$/m);
    assert.equal(dropVersionLines(ours.stdout), dropVersionLines(theirs.stdout));
    assert.equal(ours.stderr, theirs.stderr);
  });

  it('the local scanner reports what libiio reports (iio_info -S local)', async () => {
    const theirs = run('iio_info', ['-S', 'local']);
    const ours = await iiokit(['info', '-S', 'local']);
    assert.match(theirs.stdout, /\[local:\]/);
    assert.equal(dropVersionLines(ours.stdout), dropVersionLines(theirs.stdout));
  });

  it('toXml(): iio_info -x prints the same as on iio_genxml, and it parses back the same', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'iiokit-xml-'));
    try {
      const gen = run('iio_genxml', ['-u', 'local:']);
      const theirsXml = gen.stdout.split('\n').find((l) => l.startsWith('<?xml'));
      assert.ok(theirsXml, gen.stdout + gen.stderr);
      const ctx = await createContext('local:');
      const oursXml = ctx.toXml();
      const info = ctx.info;
      await ctx.close();
      writeFileSync(join(tmp, 'theirs.xml'), theirsXml);
      writeFileSync(join(tmp, 'ours.xml'), oursXml);
      const a = run('iio_info', ['-x', join(tmp, 'theirs.xml')]);
      const b = run('iio_info', ['-x', join(tmp, 'ours.xml')]);
      assert.equal(a.status, 0, a.stderr);
      assert.equal(b.status, 0, b.stderr);
      assert.equal(dropVersionLines(b.stdout), dropVersionLines(a.stdout));
      assert.deepEqual(shape(parseContextXml(oursXml)), shape(info));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('iiokit attr prints what iio_attr prints, for every query (reads and writes)', async () => {
    const queries = attrQueries();
    assert.ok(queries.length >= 40);
    // The list restores every value it writes, so running it whole with iio_attr, then
    // whole with iiokit, lets verbose writes show the same "before" values.
    const recorded = queries.map((q) => run('iio_attr', ['-u', 'local:', ...q.args]));
    const failures: string[] = [];
    for (const [i, q] of queries.entries()) {
      const theirs = recorded[i];
      const ours = await iiokit(['attr', '-u', 'local:', ...q.args]);
      const want = theirs.stdout;
      if (ours.stdout !== want)
        failures.push(`"${q.line}": stdout\n--- iio_attr\n${want}--- iiokit\n${ours.stdout}`);
      if (ours.status !== theirs.status)
        failures.push(`"${q.line}": status ${theirs.status} vs ours ${ours.status}`);
      if (ours.stderr !== theirs.stderr)
        failures.push(`"${q.line}": stderr "${theirs.stderr}" vs ours "${ours.stderr}"`);
    }
    assert.deepEqual(failures, []);
  });
});
