import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IioError } from '../../src/errors';
import {
  formatScanType,
  parseScanType,
  valueBits,
  type DataFormat,
} from '../../src/format/scan-type';
import { formatArb } from './format-arbitraries';
import { refTypeString, refValueBits } from './format-reference';

describe('format: parseScanType / formatScanType', () => {
  it('parses what the kernel and ADI drivers print', () => {
    const cases: Array<[string, Partial<DataFormat>]> = [
      [
        'le:s12/16>>4',
        { isBigEndian: false, isSigned: true, bits: 12, length: 16, shift: 4, repeat: 1 },
      ],
      [
        'be:u24/32X4>>0',
        { isBigEndian: true, isSigned: false, bits: 24, length: 32, shift: 0, repeat: 4 },
      ],
      ['le:u13/16>>0\n', { bits: 13, length: 16, isFullyDefined: false }],
      ['le:s64/64>>0', { bits: 64, length: 64, isSigned: true, isFullyDefined: true }],
      ['le:S12/16>>0', { isSigned: true, bits: 12, isFullyDefined: true }],
      ['le:U10/16>>0', { isSigned: false, bits: 10, isFullyDefined: true }],
      ['be:s12/16', { shift: 0, repeat: 1, isBigEndian: true }],
      ['le:u8/8X3', { repeat: 3, shift: 0 }],
      ['le:s100/128>>20', { bits: 100, length: 128, shift: 20 }],
      ['  le:u1/8>>7  ', { bits: 1, length: 8, shift: 7 }],
    ];
    for (const [text, want] of cases) {
      const f = parseScanType(text);
      for (const [k, v] of Object.entries(want)) {
        assert.equal(f[k as keyof DataFormat], v, `${JSON.stringify(text)}: ${k}`);
      }
    }
  });

  it('round-trips every generated format and writes it like libiio', () => {
    fc.assert(
      fc.property(formatArb, (r) => {
        const text = refTypeString(r);
        const f = parseScanType(text);
        assert.equal(f.isBigEndian, r.be);
        assert.equal(f.isSigned, r.signed);
        assert.equal(f.bits, r.bits);
        assert.equal(f.length, r.storage);
        assert.equal(f.shift, r.shift);
        assert.equal(f.repeat, r.repeat);
        assert.equal(f.isFullyDefined, r.upper || r.bits === r.storage);
        assert.equal(valueBits(f), refValueBits(r));
        // libiio prints upper case exactly when fully defined, X only for repeat > 1.
        const expected = refTypeString({ ...r, upper: f.isFullyDefined });
        assert.equal(formatScanType(f), expected);
        assert.deepEqual(parseScanType(formatScanType(f)), f);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects garbage and inconsistent values with EINVAL naming the string', () => {
    const bad: Array<[string, RegExp]> = [
      ['', /not a scan type/],
      ['garbage', /not a scan type/],
      ['xe:s12/16>>0', /not a scan type/],
      ['LE:s12/16>>0', /not a scan type/],
      ['le:x12/16>>0', /not a scan type/],
      ['le:s12/16>>', /not a scan type/],
      ['le:s12/16X>>0', /not a scan type/],
      ['le:s12/16>>-1', /not a scan type/],
      ['le:s12.5/16>>0', /not a scan type/],
      ['le:s12/16>>0 extra', /not a scan type/],
      ['le:s12/16 >>0', /not a scan type/],
      ['le:s0/16>>0', /value bits must be at least 1/],
      ['le:s17/16>>0', /value bits \(17\) exceed the storage bits \(16\)/],
      ['le:s12/16>>5', /value bits \+ shift \(12 \+ 5\) exceed the storage bits \(16\)/],
      ['be:u24/32X4>>9', /value bits \+ shift/],
      ['le:s12/12>>0', /storage bits \(12\) must be a non-zero multiple of 8/],
      ['le:s8/0>>0', /storage bits \(0\) must be a non-zero multiple of 8/],
      ['le:s12/16X0>>0', /repeat must be at least 1/],
      ['le:s12/16X70000>>0', /repeat \(70000\) above/],
      ['le:s12/99999992>>0', /storage bits \(99999992\) above/],
      ['le:s12/16>>99999999999999999999', /value bits \+ shift/],
    ];
    for (const [text, why] of bad) {
      assert.throws(
        () => parseScanType(text),
        (err: unknown) => {
          assert.ok(err instanceof IioError, `${JSON.stringify(text)} threw ${String(err)}`);
          assert.equal(err.code, 'EINVAL');
          assert.ok(
            err.message.includes(JSON.stringify(text.trim())),
            `message names ${JSON.stringify(text)}: ${err.message}`,
          );
          assert.match(err.message, why);
          return true;
        },
      );
    }
  });

  it('accepts every storage width that is a multiple of 8, up to 8192 bits', () => {
    for (let storage = 8; storage <= 8192; storage += 8) {
      const f = parseScanType(`be:s${storage - 3}/${storage}>>3`);
      assert.equal(f.length, storage);
      assert.equal(f.bits, storage - 3);
    }
  });
});
