import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext } from '../../src';
import { parseContextXml } from '../../src/xml/parser';
import { decodeXmlBytes } from '../../src/xml';
import type { ContextInfo } from '../../src/model/info';
import { iiokit } from '../helpers/cli';
import { compareInfo } from '../helpers/info-compare';
import { libiioMain, PEERS, requirePeer, run } from '../helpers/peers';

const DIR = join(__dirname, '../../../test/fixtures/xml');
const FIXTURES = readdirSync(DIR)
  .filter((f) => f.endsWith('.xml'))
  .sort();

/** Attribute values in the order iio_info prints attributes. */
function attrValuesInPrintOrder(info: ContextInfo): Array<string | undefined> {
  const out: Array<string | undefined> = [];
  for (const d of info.devices) {
    for (const c of d.channels) for (const a of c.attrs) out.push(a.value);
    for (const list of [d.attrs, d.bufferAttrs, d.debugAttrs])
      for (const a of list) out.push(a.value);
  }
  return out;
}

function hasOwnVersion(file: string): boolean {
  return /version-git=/.test(decodeXmlBytes(readFileSync(file)).slice(0, 4000));
}

describe('iiokit info -x matches libiio iio_info -x on real-world XML contexts', function () {
  this.timeout(60000);
  before(function () {
    requirePeer(this, PEERS.iioInfo);
  });

  it('has at least 15 fixtures', () => {
    assert.ok(FIXTURES.length >= 15, `${FIXTURES.length} fixtures`);
  });

  for (const f of FIXTURES) {
    it(f, async () => {
      const file = join(DIR, f);
      const theirs = run('iio_info', ['-x', file]);
      const ours = await iiokit(['info', '-x', file]);
      assert.equal(
        ours.status === 0,
        theirs.status === 0,
        `exit status: libiio ${theirs.status}, ours ${ours.status}\n${ours.stderr}`,
      );
      let values: Array<string | undefined> | undefined;
      if (theirs.status === 0) {
        values = attrValuesInPrintOrder(parseContextXml(decodeXmlBytes(readFileSync(file))));
      }
      const r = compareInfo(theirs.stdout, ours.stdout, {
        skipBackendVersion: !hasOwnVersion(file),
        attrValues: values,
      });
      assert.ok(r.ok, `${f}: ${r.firstDifference}`);
      if (values) {
        assert.equal(
          r.substitutions,
          values.filter((v) => v !== undefined).length,
          'every value the XML carries is printed',
        );
      }
    });
  }
});

describe('iiokit info -T: what iio_info -T prints and returns', function () {
  this.timeout(30000);
  before(function () {
    requirePeer(this, PEERS.iioInfo);
  });
  const xml = join(__dirname, '../../../test/fixtures/xml/adxl345.xml');
  const drop = (t: string): string =>
    t
      .split('\n')
      .filter((l) => !/^(Library version|Compiled with backends): /.test(l))
      .join('\n');
  for (const t of ['500', '0', 'abc', '-5', '99999999999', '0x10']) {
    it(`-T ${t}`, async () => {
      const theirs = run('iio_info', ['-T', t, '-x', xml]);
      const ours = await iiokit(['info', '-T', t, '-x', xml]);
      assert.equal(ours.status, theirs.status, ours.stderr);
      assert.equal(ours.stderr, theirs.stderr);
      assert.equal(drop(ours.stdout), drop(theirs.stdout));
    });
  }
});

describe('Context.toXml() round trip through libiio', function () {
  this.timeout(60000);
  before(function () {
    requirePeer(this, PEERS.iioInfo);
  });
  const tmp = mkdtempSync(join(tmpdir(), 'iiokit-xml-'));

  for (const f of FIXTURES) {
    it(f, async function () {
      const file = join(DIR, f);
      const theirs = run('iio_info', ['-x', file]);
      if (theirs.status !== 0) {
        await assert.rejects(createContext(`xml:${file}`), /EINVAL/);
        return;
      }
      const ctx = await createContext(`xml:${file}`);
      const again = join(tmp, f);
      writeFileSync(again, ctx.toXml());
      await ctx.close();
      const reread = run('iio_info', ['-x', again]);
      assert.equal(reread.status, 0, reread.stderr);
      // Our XML names the backend "xml" and carries our version when the source had none.
      const strip = (s: string): string =>
        s
          .split('\n')
          .filter((l) => !/^(Library version|Compiled with|Backend version)/.test(l))
          .join('\n');
      assert.equal(strip(reread.stdout), strip(theirs.stdout));
      // and it parses back to the same model
      const back = parseContextXml(readFileSync(again, 'utf8'));
      const orig = parseContextXml(decodeXmlBytes(readFileSync(file)));
      const shape = (i: ContextInfo): unknown => ({
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
            attrs: c.attrs.map((a) => [a.name, a.filename]),
          })),
        })),
      });
      assert.deepEqual(shape(back), shape(orig));
    });
  }
});

describe('event attributes in XML (libiio 1.0 dialect), read and written', function () {
  this.timeout(60000);
  const EVENTS = join(DIR, 'libiio-event_attrs.xml');

  it('are parsed into Channel.eventAttrs and Device.eventAttrs, with their values', async () => {
    const ctx = await createContext(`xml:${EVENTS}`);
    try {
      const dev = ctx.device('test_event_device');
      const x = dev.channel('accel_x');
      // the fixture's own event-attribute elements, in libiio's order (sorted by name)
      assert.deepEqual(
        x.eventAttrs.map((a) => [a.name, a.filename]),
        [
          ['thresh_falling_en', 'in_accel_x_thresh_falling_en'],
          ['thresh_falling_value', 'in_accel_x_thresh_falling_value'],
          ['thresh_rising_en', 'in_accel_x_thresh_rising_en'],
          ['thresh_rising_value', 'in_accel_x_thresh_rising_value'],
        ].sort(),
      );
      assert.equal(await x.readEventAttr('thresh_falling_value'), '-1000');
      assert.equal(await dev.channel('accel_z').readEventAttr('thresh_rising_value'), '1500');
      assert.deepEqual(
        dev.eventAttrs.map((a) => a.name),
        ['events_enabled'],
      );
      assert.equal(await dev.readEventAttr('events_enabled'), '1');
      // an XML context has nothing to write to
      await assert.rejects(x.writeEventAttr('thresh_rising_en', 1), (e: Error) =>
        /^ENOSYS: .*accel_x.*thresh_rising_en/.test(e.message),
      );
    } finally {
      await ctx.close();
    }
  });

  const withEvents = FIXTURES.filter((f) =>
    decodeXmlBytes(readFileSync(join(DIR, f))).includes('<event-attribute'),
  );

  describe("toXml() writes them so that libiio main's iio_info reads the same context", function () {
    before(function () {
      requirePeer(this, PEERS.iiodMain);
    });

    it('has fixtures with event attributes', () => {
      assert.ok(withEvents.length >= 1, withEvents.join());
    });

    for (const f of withEvents) {
      it(f, async () => {
        const main = libiioMain()!;
        const iioInfo = join(main.dir, 'bin/iio_info');
        const file = join(DIR, f);
        const ctx = await createContext(`xml:${file}`);
        const again = join(mkdtempSync(join(tmpdir(), 'iiokit-xml-')), f);
        writeFileSync(again, ctx.toXml());
        await ctx.close();
        const theirs = run(iioInfo, ['-u', `xml:${file}`], { env: main.env });
        const ours = run(iioInfo, ['-u', `xml:${again}`], { env: main.env });
        assert.equal(theirs.status, 0, theirs.stderr);
        assert.equal(ours.status, 0, ours.stderr);
        const body = (s: string): string =>
          s
            .split('\n')
            .filter((l) => !l.startsWith('Backend version: '))
            .join('\n');
        assert.match(theirs.stdout, /event-specific attributes found/);
        assert.equal(body(ours.stdout), body(theirs.stdout));
        // libiio 0.24 reads it too, with no complaint about the added elements
        const old = run('iio_info', ['-x', again]);
        assert.equal(old.status, 0, old.stderr);
        assert.equal(old.stderr, '');
      });
    }
  });
});
