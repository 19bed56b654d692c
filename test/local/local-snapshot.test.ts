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
  dropNonIioDevices,
  dropVersionLines,
  loadSnapshot,
  snapshotNames,
  snapshotOptions,
  withSnapshotBackend,
  type Snapshot,
} from '../helpers/sysfs-snapshot';

/**
 * A copy cannot refuse a read: the write-only files (trigger_now) are empty files there,
 * which read as EIO where the kernel said EACCES. This is the only substitution, and the
 * number of lines it touches is checked against the manifest.
 */
function expectUnreadableAsEio(s: Snapshot, text: string): { text: string; count: number } {
  let count = 0;
  let out = text;
  for (const f of s.manifest.unreadable) {
    const m = /^bus\/iio\/devices\/((?:iio:device|trigger)\d+)\/([^/]+)$/.exec(f);
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
      channels: d.channels.map((c) => ({
        id: c.id,
        name: c.name,
        isOutput: c.isOutput,
        index: c.index,
        format: c.format,
        scan: c.isScanElement,
        scale: c.scanScale === undefined ? undefined : cFixed(c.scanScale),
        attrs: c.attrs.map((a) => [a.name, a.filename]),
      })),
    })),
  };
}

for (const name of snapshotNames()) {
  describe(`local: on the ${name} snapshot`, function () {
    this.timeout(60000);
    const s = loadSnapshot(name);

    it('iiokit info prints what iio_info printed (minus the two non-IIO entries)', async () => {
      const ctx = await createContext('local:', snapshotOptions(s));
      const cap = new Capture();
      const out = new Out(cap);
      await printContextInfo(ctx, out);
      out.flush();
      await ctx.close();
      const dropped = dropNonIioDevices(s.iioInfo);
      assert.equal(dropped.removed, 2, 'iio_evgen and iio_sysfs_trigger were listed by libiio');
      const want = expectUnreadableAsEio(s, dropVersionLines(dropped.text));
      assert.equal(want.count, 1, 'trigger_now is the one write-only attribute of an IIO device');
      assert.equal(dropVersionLines(cap.text), want.text);
    });

    it('toXml() is iio_genxml without the two non-IIO entries, and parses back the same', async () => {
      const ctx = await createContext('local:', snapshotOptions(s));
      const ours = ctx.toXml();
      const info = ctx.info;
      await ctx.close();
      const theirs = s.genxml
        .replace(/<device id="(iio_evgen|iio_sysfs_trigger)"[^>]*>.*?<\/device>/g, '')
        .replace(
          /version-minor="24" version-git="v0.24"/,
          'version-minor="1" version-git="iiokit"',
        );
      assert.equal(firstDifference(ours, theirs), undefined);
      assert.equal(ours, theirs);
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
            const want = dropNonIioDevices(rec.stdout).text;
            assert.equal(r.stdout, want, `stdout of "${rec.query}"`);
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
