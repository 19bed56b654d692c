/**
 * src/iiod-protocol: the encoders and decoders our client does not exercise on the wire
 * yet (the server's side, issue 13), against the bytes libiio's C structures and code
 * packing give (iiod-responder.h's `struct iiod_command`, responder.c, iiod-client.c),
 * written out here by hand.
 */
import assert from 'node:assert/strict';
import {
  attrCode,
  attrOpcode,
  attrOpKind,
  blockCode,
  blockStatus,
  decodeEvent,
  decodeHeader,
  decodeMaskWords,
  encodeEnqueueFailure,
  encodeEvent,
  encodeFrame,
  encodeHeader,
  encodeMaskWords,
  encodeWriteValue,
  maskBytes,
  opcodeName,
  opcodeSpec,
  parseAttrCode,
  parseBlockCode,
  readU64Length,
  responseHeader,
  wireAttrNames,
  wireDevices,
} from '../../src/iiod-protocol/binary';
import {
  checkToken,
  decodePackedValues,
  encodePackedValues,
  formatInteger,
  formatVersion,
  parseInteger,
  parseVersion,
} from '../../src/iiod-protocol/ascii';
import { decodeValue, encodeValue } from '../../src/iiod-protocol/wire';

const hex = (b: Buffer): string => b.toString('hex');

describe('iiod-protocol: binary frames', () => {
  it('a header is {u16 client_id, u8 op, u8 dev, i32 code}, little-endian', () => {
    const h = { clientId: 0x0102, op: 3, dev: 7, code: -22 };
    assert.equal(hex(encodeHeader(h)), '02010307eaffffff');
    assert.deepEqual(decodeHeader(Buffer.from('02010307eaffffff', 'hex')), h);
    assert.equal(hex(encodeHeader(responseHeader(5, 12))), '050000000c000000');
  });

  it('a frame is the header then its payload; a write carries a u64 length first', () => {
    const payload = encodeWriteValue(encodeValue('10'));
    assert.equal(hex(payload), '0300000000000000' + '313000');
    assert.equal(readU64Length(payload), 3);
    const f = encodeFrame({ clientId: 0, op: 9, dev: 1, code: 0 }, payload);
    assert.equal(hex(f), '0000090100000000' + '0300000000000000313000');
  });

  it('codes pack the attribute (or block) high and the channel (or buffer) low', () => {
    assert.equal(attrCode(2, 5), 0x00020005);
    assert.deepEqual(parseAttrCode(0x00020005), { attr: 2, arg: 5 });
    // an index past 0x7fff makes the i32 negative: its halves still come back
    assert.deepEqual(parseAttrCode(attrCode(0x8001, 3)), { attr: 0x8001, arg: 3 });
    assert.equal(blockCode(1, 4), 0x00040001);
    assert.deepEqual(parseBlockCode(0x00040001), { buffer: 1, block: 4 });
  });

  it('an enqueue failure is shifted 16 bits; any other negative code failed the dequeue', () => {
    assert.equal(encodeEnqueueFailure(-5), -327680); // -EIO << 16
    assert.deepEqual(blockStatus(-327680), { ok: false, stage: 'enqueue', code: -5 });
    assert.deepEqual(blockStatus(-110), { ok: false, stage: 'dequeue', code: -110 });
    assert.deepEqual(blockStatus(4096), { ok: true, bytes: 4096 });
  });

  it('OPEN_BUFFER masks are u32 words, channel 32w+b at bit b of word w', () => {
    const words = encodeMaskWords(40, (c) => c === 0 || c === 33);
    assert.equal(hex(words), '01000000' + '02000000');
    assert.equal(maskBytes(40), 8);
    assert.equal(maskBytes(32), 4);
    assert.deepEqual(decodeMaskWords(words, 40), [0, 33]);
    // bits past the device's channels are ignored
    assert.deepEqual(decodeMaskWords(Buffer.from('ffffffff', 'hex'), 3), [0, 1, 2]);
  });

  it('READ_EVENT carries struct iio_event {u64 id; i64 timestamp}', () => {
    const ev = { id: 0x0102030405060708n, timestamp: -2n };
    assert.equal(hex(encodeEvent(ev)), '0807060504030201' + 'feffffffffffffff');
    assert.deepEqual(decodeEvent(encodeEvent(ev)), ev);
  });

  it('names the opcodes as libiio main numbers them, and one it does not know', () => {
    assert.deepEqual([0, 3, 8, 9, 16, 17, 23, 28, 31, 32].map(opcodeName), [
      'RESPONSE',
      'READ_ATTR',
      'READ_CHN_EVT_ATTR',
      'WRITE_ATTR',
      'SETTRIG',
      'OPEN_BUFFER',
      'TRANSFER_BLOCK',
      'READ_EVENT',
      'REFRESH_FORMAT',
      'NOP',
    ]);
    assert.equal(opcodeName(0x45), 'opcode 0x45');
    assert.equal(opcodeSpec(0), undefined);
    assert.equal(opcodeSpec(33), undefined);
    assert.deepEqual(opcodeSpec(17), { request: 'mask', response: 'data', answeredOn: 'default' });
  });

  it('attribute opcodes map to their family and back', () => {
    assert.equal(attrOpcode('channel-event', true), 14);
    assert.equal(attrOpcode('debug', false), 4);
    assert.deepEqual(attrOpKind(12), { kind: 'channel', write: true });
    assert.deepEqual(attrOpKind(7), { kind: 'device-event', write: false });
    assert.equal(attrOpKind(15), undefined);
  });

  it('wire order is C strcmp: bytes, capitals before lower case', () => {
    assert.deepEqual(
      wireDevices([{ id: 'trigger0' }, { id: 'iio:device10' }, { id: 'iio:device2' }]).map(
        (d) => d.id,
      ),
      ['iio:device10', 'iio:device2', 'trigger0'],
    );
    assert.deepEqual(wireAttrNames([{ name: 'raw' }, { name: 'Scale' }, { name: 'offset' }]), [
      'Scale',
      'offset',
      'raw',
    ]);
  });
});

describe('iiod-protocol: ASCII shapes', () => {
  it('VERSION is %u.%u.%-7.7s', () => {
    assert.equal(formatVersion({ major: 0, minor: 24, git: 'v0.24' }), '0.24.v0.24  \n');
    assert.equal(formatVersion({ major: 1, minor: 0, git: 'abcdef123' }), '1.0.abcdef1\n');
    assert.deepEqual(parseVersion('0.24.v0.24  '), { major: 0, minor: 24, git: 'v0.24' });
    assert.throws(() => parseVersion('garbage'), /bad VERSION reply/);
  });

  it('integer replies are int32 lines', () => {
    assert.equal(formatInteger(-22), '-22\n');
    assert.equal(parseInteger(' 4304 '), 4304);
    assert.throws(() => parseInteger('2147483648'), /out of range/);
    assert.throws(() => parseInteger('12abc'), /expected a number/);
  });

  it('packed values: be32 length (or -errno), the value and its NUL, padded to 4', () => {
    const packed = encodePackedValues(['42', -13, '']);
    assert.equal(hex(packed), '00000003' + '343200' + '00' + 'fffffff3' + '00000001' + '00000000');
    assert.deepEqual(decodePackedValues(packed, 3), {
      values: ['42', -13, ''],
      consumed: packed.length,
    });
    assert.throws(() => decodePackedValues(packed.subarray(0, 6), 1), /truncated/);
  });

  it("names outside the lexer's WORD, and CYCLIC, cannot travel", () => {
    assert.doesNotThrow(() => checkToken('device', 'iio:device0'));
    assert.doesNotThrow(() => checkToken('attribute', 'in_voltage0-voltage1_raw'));
    assert.throws(() => checkToken('attribute', 'has space'), /cannot be sent/);
    assert.throws(() => checkToken('channel', 'cyclic'), /keyword/);
  });

  it('values are C strings', () => {
    assert.equal(hex(encodeValue('ab')), '616200');
    assert.equal(decodeValue(Buffer.from('31000000', 'hex')), '1');
  });
});
