/**
 * local: on copies of the VM's sysfs (test/fixtures/sysfs, both kernels): what we print
 * must be what libiio 0.24 printed on the real kernel when the copy was taken.
 */
import assert from 'node:assert/strict';
import { createContext } from '../../src';
import { parseContextXml } from '../../src/xml/parser';
import { printContextInfo } from '../../src/cli/info';
import { Out } from '../../src/cli/io';
import type { ContextInfo } from '../../src/model/info';
import { cFixed } from '../../src/util/cformat';
import { Capture, iiokit } from '../helpers/cli';
import {
  attrQueries,
  copySnapshot,
  dropVersionLines,
  loadSnapshot,
  snapshotNames,
  snapshotOptions,
  withSnapshotBackend,
  type Snapshot,
} from '../helpers/sysfs-snapshot';

/**
 * A copy cannot refuse a read: the write-only files (trigger_now, iio_sysfs_trigger's
 * add_trigger and remove_trigger, iio_evgen's poke_evN) are empty files there, which read
 * as EIO where the kernel said EACCES. This is the only substitution, and the number of
 * lines it touches is checked against the manifest.
 */
function expectUnreadableAsEio(s: Snapshot, text: string): { text: string; count: number } {
  let count = 0;
  let out = text;
  for (const f of s.manifest.unreadable) {
    const m = /^bus\/iio\/devices\/([^/]+)\/([^/]+)$/.exec(f);
    if (!m) continue;
    const re = new RegExp(`(: ${m[2]} )ERROR: Permission denied \\(13\\)`, 'g');
    out = out.replace(re, (_all, head: string) => {
      count++;
      return `${head}ERROR: Input/output error (5)`;
    });
  }
  return { text: out, count };
}

/** Where two long strings first differ, with some context; undefined when equal. */
function firstDifference(a: string, b: string): string | undefined {
  if (a === b) return undefined;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `at ${i}: ours …${a.slice(Math.max(0, i - 80), i + 80)}… theirs …${b.slice(Math.max(0, i - 80), i + 80)}…`;
}

/** A model shape that XML must carry unchanged (scan scales as libiio prints them). */
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

for (const name of snapshotNames()) {
  describe(`local: on the ${name} snapshot`, function () {
    this.timeout(60000);
    const s = loadSnapshot(name);

    it('iiokit info prints what iio_info printed, every entry of /sys/bus/iio/devices', async () => {
      const ctx = await createContext('local:', snapshotOptions(s));
      const cap = new Capture();
      const out = new Out(cap);
      await printContextInfo(ctx, out);
      out.flush();
      await ctx.close();
      assert.match(s.iioInfo, /^\tiio_sysfs_trigger:$/m, 'libiio listed iio_sysfs_trigger');
      assert.match(s.iioInfo, /^\tiio_evgen:$/m, 'libiio listed iio_evgen');
      const want = expectUnreadableAsEio(s, dropVersionLines(s.iioInfo));
      // trigger_now, add_trigger, remove_trigger and poke_ev0..9 are write-only
      assert.equal(want.count, 13, 'every write-only attribute libiio lists');
      assert.equal(dropVersionLines(cap.text), want.text);
    });

    it('toXml() is iio_genxml plus the event attributes (of events/, as libiio 1.0 writes them)', async () => {
      const ctx = await createContext('local:', snapshotOptions(s));
      const ours = ctx.toXml();
      const info = ctx.info;
      await ctx.close();
      // What libiio 0.24 cannot carry, taken out of ours: the event-attribute elements and
      // their DTD declarations. Each removed element must name a file of an events/ folder.
      const events: string[] = [];
      const oursIn024 = ours
        .replace(/<event-attribute name="([^"]*)" (?:filename="([^"]*)" )?\/>/g, (_all, n, f) => {
          events.push((f as string | undefined) ?? (n as string));
          return '';
        })
        .replace(' | event-attribute', '')
        .replace(', event-attribute*', '')
        .replace('<!ELEMENT event-attribute EMPTY>', '')
        .replace('<!ATTLIST event-attribute name CDATA #REQUIRED filename CDATA #IMPLIED>', '');
      const theirs = s.genxml.replace(
        /version-minor="24" version-git="v0.24"/,
        'version-minor="1" version-git="iiokit"',
      );
      assert.equal(firstDifference(oursIn024, theirs), undefined);
      assert.equal(oursIn024, theirs);
      const eventFiles = Object.entries(s.manifest.readdirOrder)
        .filter(([dir]) => /^bus\/iio\/devices\/[^/]+\/events$/.test(dir))
        .flatMap(([, files]) => files.filter((f) => f.startsWith('in_') || f.startsWith('out_')));
      assert.ok(eventFiles.length >= 14, 'the dummies have events');
      assert.deepEqual([...events].sort(), [...eventFiles].sort());
      assert.deepEqual(shape(parseContextXml(ours)), shape(info));
    });

    it('iiokit attr prints what iio_attr printed, query by query', async () => {
      const copy = copySnapshot(s);
      try {
        await withSnapshotBackend(snapshotOptions(s, copy.root), async () => {
          const onCopy = new Set(
            attrQueries()
              .filter((q) => !q.kernelOnly)
              .map((q) => q.line),
          );
          let ran = 0;
          for (const rec of s.attr) {
            if (!onCopy.has(rec.query)) continue;
            ran++;
            const r = await iiokit(['attr', '-u', 'local:', ...rec.query.split(' ')]);
            assert.equal(r.stdout, rec.stdout, `stdout of "${rec.query}"`);
            assert.equal(r.status, rec.status, `status of "${rec.query}"`);
            assert.equal(r.stderr, rec.stderr, `stderr of "${rec.query}"`);
          }
          assert.equal(ran, onCopy.size, 'every query that can run on a copy was recorded');
        });
      } finally {
        copy.remove();
      }
    });
  });
}
