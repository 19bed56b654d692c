/** fast-check generators of scan formats and devices for the format property tests. */
import fc from 'fast-check';
import type { RefElement, RefFormat } from './format-reference';

/** Storage widths in bytes: the common ones often, every width up to 16 and a few wider. */
const storageBytes = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 2, 4, 8) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 16 }) },
  { weight: 1, arbitrary: fc.integer({ min: 17, max: 40 }) },
);

export const formatArb: fc.Arbitrary<RefFormat> = fc
  .record({
    bytes: storageBytes,
    be: fc.boolean(),
    signed: fc.boolean(),
    upper: fc.boolean(),
    repeat: fc.oneof(
      { weight: 4, arbitrary: fc.constant(1) },
      { weight: 2, arbitrary: fc.integer({ min: 2, max: 4 }) },
      { weight: 1, arbitrary: fc.integer({ min: 5, max: 9 }) },
    ),
    bitsFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    shiftFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    full: fc.boolean(),
  })
  .map((r) => {
    const storage = r.bytes * 8;
    // Half the time all bits carry the value (s16/16), else any width and shift.
    const bits = r.full ? storage : 1 + Math.floor(r.bitsFraction * (storage - 1) + 0.5);
    const shift = Math.floor(r.shiftFraction * (storage - bits) + 0.5);
    return {
      be: r.be,
      signed: r.signed,
      upper: r.upper,
      bits,
      storage,
      shift,
      repeat: r.repeat,
    };
  });

/**
 * A device's scan elements: distinct or shared scan indices, maybe a timestamp, and a
 * random subset enabled.
 */
export const deviceArb: fc.Arbitrary<{ all: RefElement[]; enabled: RefElement[] }> = fc
  .record({
    formats: fc.array(formatArb, { minLength: 1, maxLength: 8 }),
    indexGaps: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 })), {
      minLength: 8,
      maxLength: 8,
    }),
    timestamp: fc.boolean(),
    shuffle: fc.boolean(),
  })
  .chain((d) => {
    let index = 0;
    let owner: RefFormat = d.formats[0];
    const all: RefElement[] = d.formats.map((format, key) => {
      if (key > 0) index += d.indexGaps[key];
      if (key === 0 || d.indexGaps[key] > 0) {
        owner = format;
        return { key, index, format };
      }
      // Channels sharing a scan index share its storage: same width and repeat.
      const storage = owner.storage;
      const bits = Math.min(format.bits, storage);
      const shift = Math.min(format.shift, storage - bits);
      return { key, index, format: { ...format, storage, bits, shift, repeat: owner.repeat } };
    });
    if (d.timestamp) {
      all.push({
        key: all.length,
        index: index + 1,
        isTimestamp: true,
        format: {
          be: false,
          signed: true,
          upper: false,
          bits: 64,
          storage: 64,
          shift: 0,
          repeat: 1,
        },
      });
    }
    return fc
      .subarray(all, { minLength: 1 })
      .chain((enabled) =>
        d.shuffle
          ? fc.shuffledSubarray(enabled, { minLength: enabled.length })
          : fc.constant(enabled),
      )
      .map((enabled) => ({ all, enabled }));
  });
