import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext, type IioError } from '../../src';
import { contextToXml, parseContextXml } from '../../src/xml';
import { isAvailableList } from '../../src/model/attr';
import { iiokit } from '../helpers/cli';
import { libiioMainTool, PEERS, requirePeer, run } from '../helpers/peers';

/**
 * Issue 13, XML conformance: attribute values as XML 1.0 (libxml2, so libiio) reads
 * them, the 1.0 dialect's buffer attributes, and a writer whose output libiio reads
 * back to the same values — checked against libiio 0.24 and libiio main themselves.
 */

const DIR = join(__dirname, '../../../test/fixtures/xml');
const tmp = mkdtempSync(join(tmpdir(), 'iiokit-xmlconf-'));
let n = 0;
function file(xml: string): string {
  const f = join(tmp, `t${n++}.xml`);
  writeFileSync(f, xml);
  return f;
}

/** Literal line ends and tabs (normalised away) beside character references (kept). */
const TRICKY_SOURCE =
  '<?xml version="1.0" encoding="utf-8"?>\n' +
  '<context name="local" description="two&#10;lines&#9;tab &quot;q&quot; &apos;a&apos; &lt;lt&gt; &amp;amp é 漢 &#x1F600; end ">\n' +
  '<context-attribute name="k&#10;ey" value="v1&#13;&#10;v2&#x41;" />\n' +
  '<context-attribute name="literal" value="l1\nl2\tt3\r\nl4" />\n' +
  '<device id="iio:device0" name="dev&#9;name" label="lab&#10;el">\n' +
  '<channel id="voltage0" name="ext&#10;name" type="input"><attribute name="raw" filename="in_voltage0_ext&#10;name_raw"/></channel>\n' +
  '<attribute name="at&#10;tr" />\n' +
  '</device>\n</context>\n';

/** What an XML 1.0 reader makes of TRICKY_SOURCE (written out by hand). */
const TRICKY = {
  description: `two\nlines\ttab "q" 'a' <lt> &amp é 漢 😀 end `,
  attrs: [
    ['k\ney', 'v1\r\nv2A'],
    ['literal', 'l1 l2 t3 l4'],
  ],
  deviceName: 'dev\tname',
  label: 'lab\nel',
  channelName: 'ext\nname',
  attrName: 'at\ntr',
};

describe('XML conformance: attribute values as XML 1.0 reads them', function () {
  this.timeout(60000);

  it('normalises literal line ends and tabs to spaces, decodes character references', () => {
    const info = parseContextXml(TRICKY_SOURCE);
    assert.equal(info.description, TRICKY.description);
    assert.deepEqual(info.attrs, TRICKY.attrs);
    const d = info.devices[0];
    assert.equal(d.name, TRICKY.deviceName);
    assert.equal(d.label, TRICKY.label);
    assert.equal(d.channels[0].name, TRICKY.channelName);
    assert.equal(d.attrs[0].name, TRICKY.attrName);
  });

  it('prints what libiio 0.24 (iio_info -x) prints for the same file', async function () {
    requirePeer(this, PEERS.iioInfo);
    const f = file(TRICKY_SOURCE);
    const theirs = run('iio_info', ['-x', f]);
    const ours = await iiokit(['info', '-x', f]);
    assert.equal(theirs.status, 0, theirs.stderr);
    const from = (s: string): string => s.slice(s.indexOf('Backend description string'));
    // libiio 0.24 answers ENOSYS for attribute values, we answer none here either (no value=).
    assert.equal(from(ours.stdout), from(theirs.stdout));
  });

  for (const [what, text, error] of [
    ['an undefined entity', 'a&foo;b', /entity &foo; is not defined/],
    ['a character XML forbids', 'a&#1;b', /&#1; is not a character XML allows/],
    ['a surrogate', 'a&#xD800;b', /&#xD800; is not a character XML allows/],
    ['a bare &', 'a & b', /a bare '&'/],
    ['a literal <', 'a < b', /a literal '<'/],
  ] as const) {
    it(`refuses ${what} (EINVAL), as libiio does`, async function () {
      const xml = `<?xml version="1.0"?><context name="xml" description="${text}"></context>`;
      assert.throws(
        () => parseContextXml(xml),
        (e: IioError) => e.code === 'EINVAL' && error.test(e.message),
      );
      requirePeer(this, PEERS.iioInfo);
      const theirs = run('iio_info', ['-x', file(xml)]);
      assert.notEqual(theirs.status, 0, 'libiio 0.24 refuses it too');
      assert.match(theirs.stderr + theirs.stdout, /Unable to create IIO context/);
    });
  }
});

describe('XML conformance: the 1.0 dialect buffer attributes', () => {
  const fmcomms2 = join(DIR, 'libiio-fmcomms2.xml');

  it('keeps <buffer index="0"> values beside valueless <buffer-attribute> tags', async () => {
    const ctx = await createContext(`xml:${fmcomms2}`);
    try {
      const lpc = ctx.device('cf-ad9361-lpc');
      assert.deepEqual(
        lpc.bufferAttrs.map((a) => [a.name, a.staticValue]),
        [
          ['data_available', '0'],
          ['length_align_bytes', '8'],
        ],
      );
      assert.equal(await lpc.readBufferAttr('length_align_bytes'), '8');
    } finally {
      await ctx.close();
    }
  });

  it('data_available is not an _available list', () => {
    assert.equal(isAvailableList('data_available'), false);
    assert.equal(isAvailableList('scale_available'), true);
  });
});

describe('XML conformance: Context.toXml() reads back the same in libiio', function () {
  this.timeout(60000);

  /** The lines both libiio generations print for TRICKY's names and values. */
  function expectations(gen: '0.24' | '1.0'): string[] {
    const attrs = TRICKY.attrs.map(([k, v], i) =>
      gen === '0.24' ? `\t${k}: ${v}\n` : `\tattr  ${i}: ${k} value: ${v}\n`,
    );
    return [
      `Backend description string: ${TRICKY.description}\n`,
      ...attrs,
      `\tiio:device0: ${TRICKY.deviceName} (label: ${TRICKY.label})\n`,
      `\t\t\tvoltage0: ${TRICKY.channelName} (input)\n`,
      `attr  0: ${TRICKY.attrName} `,
    ];
  }

  async function written(): Promise<string> {
    const ctx = await createContext(`xml:${file(TRICKY_SOURCE)}`);
    try {
      // The model holds the decoded values...
      assert.equal(ctx.description, TRICKY.description);
      assert.deepEqual(Object.entries(ctx.attrs), TRICKY.attrs);
      return file(ctx.toXml());
    } finally {
      await ctx.close();
    }
  }

  it('libiio 0.24 (iio_info -x) prints our values: newline, tab, CR, quotes, <, &, non-ASCII', async function () {
    requirePeer(this, PEERS.iioInfo);
    const r = run('iio_info', ['-x', await written()]);
    assert.equal(r.status, 0, r.stderr);
    for (const line of expectations('0.24'))
      assert.ok(r.stdout.includes(line), JSON.stringify(line));
  });

  it('libiio main (iio_info -u xml:) prints our values', async function () {
    requirePeer(this, PEERS.libiioMain);
    const { cmd, env } = libiioMainTool('iio_info');
    const r = run(cmd, ['-u', `xml:${await written()}`], { env });
    for (const line of expectations('1.0'))
      assert.ok(r.stdout.includes(line), JSON.stringify(line));
  });
});

describe("XML for libiio 1.0's clients (the binary server's PRINT)", () => {
  const XML =
    '<?xml version="1.0" encoding="utf-8"?><context name="local" ><device id="iio:device0" name="adc" >' +
    '<channel id="voltage0" type="input" ><scan-element index="0" format="le:u12/16&gt;&gt;0" /></channel>' +
    '<buffer-attribute name="data_available" /><buffer-attribute name="direction" /></device></context>';

  it('lists buffer attributes as libiio 1.0 does: direction is its own, not listed', () => {
    const info = parseContextXml(XML);
    const names = (xml: string): string[] =>
      [...xml.matchAll(/<buffer-attribute name="([^"]+)"/g)].map((m) => m[1]);
    // libiio 0.24 lists every file of buffer/ but length, enable and watermark
    assert.deepEqual(names(contextToXml(info)), ['data_available', 'direction']);
    assert.deepEqual(names(contextToXml(info, { libiio1Buffers: true })), ['data_available']);
  });
});
