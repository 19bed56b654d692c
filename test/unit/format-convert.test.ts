import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IioError } from '../../src/errors';
import { convert, convertInverse, fromSI, toSI } from '../../src/format/convert';
import { parseScanType } from '../../src/format/scan-type';
import { formatArb } from './format-arbitraries';
import {
  refDecode,
  refEncode,
  refTypeString,
  refValueBits,
  type RefFormat,
} from './format-reference';

/** What convert() must return for a reference value: a number up to 53 bits. */
function expectedValue(v: bigint, f: RefFormat): number | bigint {
  return refValueBits(f) <= 53 ? Number(v) : v;
}

/** A format, a buffer holding one element at some offset, and a repeat index. */
const caseArb = formatArb.chain((f) => {
  const size = f.storage / 8;
  return fc.record({
    f: fc.constant(f),
    pad: fc.integer({ min: 0, max: 5 }),
    r: fc.integer({ min: 0, max: f.repeat - 1 }),
    bytes: fc.uint8Array({ minLength: size * f.repeat + 5, maxLength: size * f.repeat + 5 }),
  });
});

/** Any value, in or out of the format's range (out of range tests the wrap-around). */
function valueArb(f: RefFormat): fc.Arbitrary<bigint> {
  const vb = BigInt(refValueBits(f));
  const lo = f.signed ? -(1n << (vb - 1n)) : 0n;
  const hi = f.signed ? (1n << (vb - 1n)) - 1n : (1n << vb) - 1n;
  return fc.oneof(
    { weight: 4, arbitrary: fc.bigInt({ min: lo, max: hi }) },
    { weight: 1, arbitrary: fc.constantFrom(lo, hi, 0n, -1n, 1n) },
    { weight: 1, arbitrary: fc.bigInt({ min: lo - (1n << vb) * 3n, max: hi + (1n << vb) * 3n }) },
  );
}

describe('format: convert / convertInverse', () => {
  it('convert matches the bit-string reference for every width, shift, sign and order', () => {
    fc.assert(
      fc.property(caseArb, ({ f, pad, r, bytes }) => {
        const df = parseScanType(refTypeString(f));
        const size = f.storage / 8;
        const start = pad + r * size;
        const want = refDecode([...bytes.subarray(start, start + size)], f);
        const got = convert(bytes, pad, df, r);
        assert.equal(typeof got, refValueBits(f) <= 53 ? 'number' : 'bigint');
        assert.equal(got, expectedValue(want, f));
      }),
      { numRuns: 3000 },
    );
  });

  it('convertInverse writes exactly the reference bytes and nothing else', () => {
    fc.assert(
      fc.property(
        caseArb.chain((c) =>
          fc.record({ c: fc.constant(c), v: valueArb(c.f), asNumber: fc.boolean() }),
        ),
        ({ c: { f, pad, r, bytes }, v, asNumber }) => {
          const df = parseScanType(refTypeString(f));
          const size = f.storage / 8;
          const start = pad + r * size;
          const buf = Uint8Array.from(bytes);
          // Numbers only where they are exact.
          const useNumber = asNumber && v >= -(2n ** 53n) && v <= 2n ** 53n;
          convertInverse(useNumber ? Number(v) : v, buf, pad, df, r);
          const want = [...bytes];
          want.splice(start, size, ...refEncode(v, f));
          assert.deepEqual([...buf], want);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('convert(convertInverse(v)) is v for every value in range', () => {
    fc.assert(
      fc.property(
        formatArb.chain((f) => fc.record({ f: fc.constant(f), v: valueArb(f) })),
        ({ f, v }) => {
          const df = parseScanType(refTypeString(f));
          const vb = BigInt(refValueBits(f));
          const inRange = f.signed
            ? v >= -(1n << (vb - 1n)) && v < 1n << (vb - 1n)
            : v >= 0n && v < 1n << vb;
          fc.pre(inRange);
          const buf = new Uint8Array((f.storage / 8) * f.repeat);
          convertInverse(v, buf, 0, df, f.repeat - 1);
          assert.equal(convert(buf, 0, df, f.repeat - 1), expectedValue(v, f));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('decodes fully defined formats as libiio: the whole storage word', () => {
    const bytes = Uint8Array.from([0xff, 0x0f]);
    assert.equal(convert(bytes, 0, parseScanType('le:s12/16>>0')), -1);
    assert.equal(convert(bytes, 0, parseScanType('le:S12/16>>0')), 4095);
    assert.equal(convert(Uint8Array.from([0xff, 0xff]), 0, parseScanType('le:S12/16>>0')), -1);
    const out = new Uint8Array(2);
    convertInverse(-1, out, 0, parseScanType('le:S12/16>>0'));
    assert.deepEqual([...out], [0xff, 0xff]);
    convertInverse(-1, out, 0, parseScanType('le:s12/16>>0'));
    assert.deepEqual([...out], [0xff, 0x0f]);
  });

  it('decodes the iio_dummy constants and a shifted big-endian value', () => {
    const b = Uint8Array.from([0x07, 0x00, 0xdf, 0xff, 0xfe, 0xff, 0x58, 0x01]);
    assert.equal(convert(b, 0, parseScanType('le:u13/16>>0')), 7);
    assert.equal(convert(b, 2, parseScanType('le:s12/16>>0')), -33);
    assert.equal(convert(b, 4, parseScanType('le:s11/16>>0')), -2);
    assert.equal(convert(b, 6, parseScanType('le:s16/16>>0')), 344);
    // 0xABC left-justified in 16 bits, big endian: AB C0, >>4.
    assert.equal(convert(Uint8Array.from([0xab, 0xc0]), 0, parseScanType('be:u12/16>>4')), 0xabc);
    assert.equal(
      convert(Uint8Array.from([0xab, 0xc0]), 0, parseScanType('be:s12/16>>4')),
      0xabc - 4096,
    );
    // A 64-bit timestamp stays exact as a BigInt.
    const ts = Buffer.alloc(8);
    ts.writeBigInt64LE(1_700_000_000_123_456_789n);
    assert.equal(convert(ts, 0, parseScanType('le:s64/64>>0')), 1_700_000_000_123_456_789n);
  });

  it('rounds numbers, refuses NaN and elements outside the buffer', () => {
    const f = parseScanType('le:s16/16>>0');
    const b = new Uint8Array(4);
    convertInverse(2.5, b, 0, f);
    assert.equal(convert(b, 0, f), 3);
    convertInverse(-2.4, b, 0, f);
    assert.equal(convert(b, 0, f), -2);
    const isErr = (code: string) => (e: unknown) => e instanceof IioError && e.code === code;
    assert.throws(() => convertInverse(NaN, b, 0, f), isErr('EINVAL'));
    assert.throws(() => convertInverse(Infinity, b, 0, f), isErr('EINVAL'));
    assert.throws(() => convert(b, 3, f), isErr('ERANGE'));
    assert.throws(() => convert(b, -1, f), isErr('ERANGE'));
    assert.throws(() => convert(b, 0, f, 2), isErr('ERANGE'));
    assert.throws(() => convertInverse(1, b, 3, f), isErr('ERANGE'));
    assert.deepEqual([...b.subarray(2)], [0, 0]);
  });

  it('toSI / fromSI are the kernel ABI formula and its inverse', () => {
    // iio_dummy voltage0: raw 73, offset 7, scale 0.001333 -> 0.10664 (mV).
    assert.equal(toSI(73, 0.001333, 7), (73 + 7) * 0.001333);
    assert.equal(toSI(1n << 60n, 2, 0), 2 ** 61);
    assert.equal(Math.round(fromSI(toSI(-33, 0.000001344, 0), 0.000001344, 0)), -33);
  });
});
