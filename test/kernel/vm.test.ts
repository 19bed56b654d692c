import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { PEERS, requirePeer } from '../helpers/peers';

describe('kernel suite: the VM itself', function () {
  before(function () {
    requirePeer(this, PEERS.vm);
  });

  it('has the iio_dummy and loopback devices the suite relies on', () => {
    const names = ['iio:device0', 'iio:device1', 'iio:device2', 'iio:device3'].map((d) =>
      readFileSync(`/sys/bus/iio/devices/${d}/name`, 'utf8').trim(),
    );
    assert.deepEqual(names, ['dummy0', 'dummy1', 'loopback_dac', 'loopback_adc']);
    assert.ok(existsSync('/dev/iio:device0'));
  });
});
