/**
 * The info comparison helper the ip-info, ip-fake-devices, serial, usb and kernel suites
 * rely on: it must not let a value we print stand in for libiio's ENOSYS unless the test
 * gave the value the XML holds.
 */
import assert from 'node:assert/strict';
import { compareInfo } from '../helpers/info-compare';

const ENOSYS = 'ERROR: Function not implemented (38)';
const LIBIIO = [
  'IIO context has 1 devices:',
  '\tiio:device0: adc',
  '\t\t1 channels found:',
  '\t\t\tvoltage0:  (input)',
  '\t\t\t1 channel-specific attributes found:',
  `\t\t\t\tattr  0: raw ${ENOSYS}`,
  '\t\tNo trigger on this device',
  '',
].join('\n');
const OURS = LIBIIO.replace(ENOSYS, 'value: 1234');

describe('test helper: compareInfo', () => {
  it('is exact without attrValues: a printed value does not replace an ENOSYS line', () => {
    const r = compareInfo(LIBIIO, OURS, { skipBackendVersion: false });
    assert.equal(r.ok, false);
    assert.match(r.firstDifference ?? '', /ERROR: Function not implemented/);
  });

  it('accepts the value the XML holds in place of ENOSYS, and only that value', () => {
    const right = compareInfo(LIBIIO, OURS, { skipBackendVersion: false, attrValues: ['1234'] });
    assert.deepEqual(right, { ok: true, substitutions: 1 });
    const wrong = compareInfo(LIBIIO, OURS, { skipBackendVersion: false, attrValues: ['99'] });
    assert.equal(wrong.ok, false);
    const none = compareInfo(LIBIIO, OURS, { skipBackendVersion: false, attrValues: [undefined] });
    assert.equal(none.ok, false);
  });

  it('still skips the lines that name the library', () => {
    const r = compareInfo(
      `Library version: 0.24 (git tag: v0.24)\n${LIBIIO}`,
      `Library version: 0.3.0 (git tag: iiokit)\n${LIBIIO}`,
      { skipBackendVersion: false },
    );
    assert.deepEqual(r, { ok: true, substitutions: 0 });
  });
});
