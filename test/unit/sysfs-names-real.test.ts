/**
 * The naming rules against libiio's own results on real boards: the XML fixtures that
 * libiio's local backend produced on Linux (ADALM-Pluto, FMCOMMS2/3, AD9081, ADRV9002,
 * DAQ2, ...) name every channel attribute's sysfs file. Rebuilding each device's file list
 * from them and naming it again must give back libiio's channels, extended names,
 * attribute names and device attributes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeXmlBytes } from '../../src/xml';
import { parseContextXml } from '../../src/xml/parser';
import type { DeviceInfo } from '../../src/model/info';
import { nameSysfsDevice } from '../../src/names/sysfs-names';

const DIR = join(__dirname, '../../../test/fixtures/xml');

/**
 * Contexts from Linux sysfs with file names. Left out: libiio-ad5541a/ad5628-1/ad7091r/
 * adis16488/event_attrs (written by hand or by old libiio, without file names), ad5592r
 * and ad7124-8 (no-OS firmware, not sysfs), ad405x (malformed).
 */
const FROM_SYSFS = [
  'ad4020.xml',
  'ad9081.xml',
  'adis16475.xml',
  'adrv9002.xml',
  'adrv9361-z7035.xml',
  'adxl345.xml',
  'adxl355.xml',
  'cn0540.xml',
  'daq2.xml',
  'fmcomms2-3.xml',
  'libiio-fmcomms2.xml',
  'lm75.xml',
  'ltc2688.xml',
  'max31865.xml',
  'pluto.xml',
];

/** 1.0's event attributes live in events/: not part of the 0.x naming. */
const isEventFile = (f: string): boolean => f.includes('/');

function rebuild(d: DeviceInfo): { files: string[]; scanFiles: string[] } {
  const files = new Set<string>();
  for (const a of d.attrs) if (!isEventFile(a.name)) files.add(a.name);
  const scanFiles: string[] = [];
  for (const c of d.channels) {
    for (const a of c.attrs) if (a.filename && !isEventFile(a.filename)) files.add(a.filename);
    if (c.isScanElement) {
      const stem = `${c.isOutput ? 'out' : 'in'}_${c.id}${c.name ? `_${c.name}` : ''}`;
      scanFiles.push(`${stem}_en`, `${stem}_index`, `${stem}_type`);
    }
  }
  return { files: [...files], scanFiles };
}

function key(c: {
  isOutput: boolean;
  id: string;
  name?: string;
  attrs: ReadonlyArray<{ name: string; filename?: string }>;
}): string {
  const attrs = c.attrs
    .filter((a) => !isEventFile(a.filename ?? ''))
    .map((a) => `${a.name}=${a.filename}`);
  return `${c.isOutput ? 'out' : 'in'}:${c.id}(${c.name ?? ''}) ${attrs.join(',')}`;
}

describe('sysfs naming reproduces libiio on contexts captured from real boards', () => {
  let devices = 0;
  for (const f of FROM_SYSFS) {
    it(f, () => {
      const info = parseContextXml(decodeXmlBytes(readFileSync(join(DIR, f))));
      const iio = info.devices.filter((d) => !d.id.startsWith('hwmon'));
      assert.ok(iio.length > 0);
      for (const d of iio) {
        const named = nameSysfsDevice(rebuild(d));
        // sysfs order is lost in the XML: compare channels as sets
        assert.deepEqual(
          named.channels.map(key).sort(),
          d.channels.map(key).sort(),
          `${f} ${d.id} (${d.name}): channels`,
        );
        assert.deepEqual(
          named.attrs,
          d.attrs
            .map((a) => a.name)
            .filter((n) => !isEventFile(n))
            .sort(),
          `${f} ${d.id}: device attributes`,
        );
        devices++;
      }
    });
  }
  it('covered many devices', () => {
    assert.ok(devices >= 50, `${devices} devices`);
  });
});
