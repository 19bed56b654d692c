import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { convert, createContext, type Context, type IioError } from '../../src';
import { decodeXmlBytes, parseContextXml } from '../../src/xml';
import { formatRange } from '../../src/backends/emu/element-writer';
import { iiokit } from '../helpers/cli';
import { PEERS, requirePeer, run } from '../helpers/peers';

const DIR = join(__dirname, '../../../test/fixtures/xml');
const FIXTURES = readdirSync(DIR)
  .filter((f) => f.endsWith('.xml'))
  .sort();

const ENOSYS = 'ERROR: Function not implemented (38)';
/** What iio_info prints for a read that fails with EIO: emu's answer to a captured ERROR. */
const EIO = 'ERROR: Input/output error (5)';
const TRIGGER_ENOSYS = 'ERROR: checking for trigger : Function not implemented (38)';

/**
 * Attributes a device-family model computes instead of repeating the capture: the
 * AD9361 cores' `sampling_frequency_available` ("R R/8 ") is rebuilt from the rate.
 */
function modelled(device: string | undefined, attr: string): boolean {
  return /^cf-ad9361-/.test(device ?? '') && attr === 'sampling_frequency_available';
}

describe('emu:file.xml brings any XML context to life', function () {
  this.timeout(60000);

  for (const f of FIXTURES) {
    describe(f, () => {
      const file = join(DIR, f);
      let ctx: Context | undefined;
      let xmlError: string | undefined;
      before(async () => {
        xmlError = await createContext(`xml:${file}`).then(
          (c) => void c.close(),
          (e: IioError) => e.code,
        );
        if (!xmlError) ctx = await createContext(`emu:${file}`);
      });
      after(async () => {
        await ctx?.close();
      });

      it('describes the same context iio_info -x does, with the XML values or defaults', async function () {
        requirePeer(this, PEERS.iioInfo);
        if (xmlError) {
          // A file the XML reader refuses is refused the same way.
          await assert.rejects(createContext(`emu:${file}`), (e: IioError) => e.code === xmlError);
          return;
        }
        const theirs = run('iio_info', ['-x', file]);
        const ours = await iiokit(['info', '-u', `emu:${file}`]);
        assert.equal(ours.status, 0, ours.stderr);
        const cut = (s: string): string[] => s.slice(s.indexOf('IIO context has')).split('\n');
        const a = cut(theirs.stdout);
        const b = cut(ours.stdout);
        let values = 0;
        let failed = 0;
        let i = 0;
        let j = 0;
        while (i < a.length && j < b.length) {
          if (a[i] === b[j]) {
            i++;
            j++;
          } else if (a[i].endsWith(ENOSYS)) {
            // libiio 0.24 reads nothing from an XML context; we answer a value (maybe
            // several lines long) for each.
            const prefix = a[i].slice(0, -ENOSYS.length);
            if (b[j] === `${prefix}${EIO}`) failed++;
            else assert.ok(b[j].startsWith(`${prefix}value: `), `"${a[i]}" vs "${b[j]}"`);
            const next = a[i + 1] ?? '';
            const nextBase = next.endsWith(ENOSYS) ? next.slice(0, -ENOSYS.length) : undefined;
            const isNext = (l: string): boolean =>
              l === next ||
              (nextBase !== undefined &&
                (l.startsWith(`${nextBase}value: `) || l === `${nextBase}${EIO}`)) ||
              (next === TRIGGER_ENOSYS && /^\t\tNo trigger/.test(l));
            j++;
            while (j < b.length && !isNext(b[j])) j++;
            i++;
            values++;
          } else if (a[i] === TRIGGER_ENOSYS) {
            // An XML context cannot tell; the emulator knows which devices take a trigger.
            assert.match(b[j], /^\t\tNo trigger (on this device|assigned to device)$/);
            i++;
            j++;
          } else assert.fail(`line ${i}: "${a[i]}" vs "${b[j]}"`);
        }
        assert.equal(a.length - i, b.length - j, 'both listings end together');
        const xml = parseContextXml(decodeXmlBytes(readFileSync(file)));
        const attrCount = xml.devices.reduce(
          (n, d) => n + d.attrs.length + d.channels.reduce((m, c) => m + c.attrs.length, 0),
          0,
        );
        assert.ok(values > 0 || attrCount === 0, 'attribute values are answered');
        // Reads the capture saw fail (value="ERROR") fail again, with EIO, and only those.
        const captured = xml.devices.reduce(
          (n, d) =>
            n +
            [
              ...d.attrs,
              ...d.bufferAttrs,
              ...d.debugAttrs,
              ...d.channels.flatMap((c) => c.attrs),
            ].filter((x) => x.value === 'ERROR').length,
          0,
        );
        assert.equal(failed, captured, 'one EIO per captured ERROR');
        // Values the XML carries come back as they are (the live `raw` of buffered inputs aside).
        for (const d of ctx!.devices) {
          for (const c of d.channels) {
            for (const at of c.attrs) {
              const live = at.name === 'raw' && c.isScanElement && !c.isOutput;
              if (at.staticValue === 'ERROR') await assert.rejects(at.read(), /^IioError: EIO/);
              else if (at.staticValue !== undefined && !live && !modelled(d.name, at.name))
                assert.equal(await at.read(), at.staticValue);
            }
          }
          for (const at of d.attrs) {
            if (at.staticValue === 'ERROR') await assert.rejects(at.read(), /^IioError: EIO/);
            else if (at.staticValue !== undefined) assert.equal(await at.read(), at.staticValue);
          }
        }
      });

      it('streams every buffered input channel from its format', async () => {
        for (const d of ctx?.devices ?? []) {
          const inputs = d.channels.filter(
            (c) => c.isScanElement && !c.isOutput && c.format && c.format.length > 0,
          );
          if (!inputs.length) continue;
          const buf = await d.createBuffer(8, { channels: inputs });
          const data = await buf.refill();
          assert.equal(data.length, 8 * buf.scanBytes, `${d.id}: 8 scans`);
          for (const slot of buf.layout.slots) {
            const ch = d.channels[slot.key];
            if (ch.type === 'timestamp') continue;
            const { min, max } = formatRange(slot.format);
            const vals = Array.from({ length: 8 }, (_, i) =>
              Number(convert(data, i * buf.scanBytes + slot.offset, slot.format)),
            );
            assert.ok(
              vals.every((v) => v >= min && v <= max),
              `${d.id} ${ch.id}: ${vals}`,
            );
            if (slot.format.bits >= 8)
              assert.ok(new Set(vals).size > 1, `${d.id} ${ch.id} moves: ${vals}`);
          }
          await buf.close();
        }
      });
    });
  }

  it('keeps writes for the context life, shared where the XML shares a file', async () => {
    const ctx = await createContext(`emu:${join(DIR, 'adxl345.xml')}`);
    try {
      const dev = ctx.device('adxl345');
      const x = dev.channel('accel_x');
      const y = dev.channel('accel_y');
      assert.equal(await x.readAttr('sampling_frequency'), '100.000000000');
      await x.writeAttr('sampling_frequency', '200');
      // in_accel_sampling_frequency is one file for all three axes
      assert.equal(await y.readAttr('sampling_frequency'), '200');
      await assert.rejects(
        x.writeAttr('sampling_frequency', '201'),
        /EINVAL.*sampling_frequency accepts/,
      );
      await x.writeAttr('calibbias', '7');
      assert.equal(await x.readAttr('calibbias'), '7');
      assert.equal(await y.readAttr('calibbias'), '100');
      await assert.rejects(dev.writeAttr('sampling_frequency_available', '1'), /EACCES/);
    } finally {
      await ctx.close();
    }
  });
});
