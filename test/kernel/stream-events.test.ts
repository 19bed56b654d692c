/** Kernel events from the VM's iio_evgen, decoded; devices without events say so. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createContext } from '../../src/create-context';
import type { IioError } from '../../src/errors';
import type { Context } from '../../src/model/context';
import type { IioEvent } from '../../src/model/event';
import { PEERS, requirePeer } from '../helpers/peers';

describe('kernel: events', function () {
  let ctx: Context;

  before(async function () {
    requirePeer(this, PEERS.vm);
    ctx = await createContext('local:');
  });
  after(async () => ctx?.close());

  it('delivers events poked with iio_evgen, decoded', async () => {
    const it = ctx.device('dummy0').events();
    const first = it.next(); // opens the event fd; events before that are not queued
    await new Promise((r) => setTimeout(r, 500));
    // iio_dummy: 0 = voltage0 threshold rising, 3 = steps change (iio_simple_dummy_events.c)
    writeFileSync('/sys/bus/iio/devices/iio_evgen/poke_ev0', '0');
    writeFileSync('/sys/bus/iio/devices/iio_evgen/poke_ev0', '3');
    const a = (await first).value as IioEvent;
    const b = (await it.next()).value as IioEvent;
    await it.return!();
    assert.deepEqual(
      [
        a.type,
        a.direction,
        a.channelType,
        a.modifier,
        a.channel,
        a.differential,
        a.channelObject?.id,
      ],
      ['thresh', 'rising', 'voltage', '', 0, false, 'voltage0'],
    );
    assert.equal(a.id, 0x0001000000000000n);
    assert.deepEqual(
      [b.type, b.direction, b.channelType, b.channel],
      ['change', 'none', 'steps', 0],
    );
    assert.ok(a.timestamp > 0n && b.timestamp >= a.timestamp);
  });

  it('says "device has no events" for a device without them (ENODEV)', async () => {
    await assert.rejects(
      ctx.device('loopback_adc').events().next(),
      (e: IioError) => e.code === 'ENODEV' && /device has no events/.test(e.message),
    );
  });
});
