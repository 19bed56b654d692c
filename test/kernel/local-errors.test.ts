/**
 * local: on the real kernel: every error the backend promises is provoked for real and
 * its message checked (code, device, channel, attribute, file, URI); triggers, hrtimer
 * frequency and debugfs registers do what they say.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { createContext, IioError, type Context } from '../../src';
import { PEERS, requirePeer } from '../helpers/peers';

const SYS = '/sys/bus/iio/devices';
const KERNEL = process.env.IIO_VM_KERNEL ?? '6.1';

/** Asserts an IioError with this code whose message names everything given. */
async function rejectsWith(
  p: Promise<unknown>,
  code: string,
  names: { device?: string; channel?: string; attr?: string; file?: string },
): Promise<IioError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof IioError, `expected an IioError ${code}, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.ok(err.message.startsWith(`${code}: `), err.message);
  if (names.device) assert.ok(err.message.includes(`device ${names.device}`), err.message);
  if (names.channel) assert.ok(err.message.includes(`channel ${names.channel}`), err.message);
  if (names.attr) assert.ok(err.message.includes(`attribute ${names.attr}`), err.message);
  if (names.file) assert.ok(err.message.includes(`file ${names.file}`), err.message);
  assert.ok(err.message.includes('context local:'), err.message);
  return err;
}

describe(`local: errors and operations on the real kernel (Linux ${KERNEL})`, function () {
  this.timeout(300000);
  let ctx: Context;
  before(async function () {
    requirePeer(this, PEERS.vm);
    ctx = await createContext('local:');
  });
  after(async () => {
    await ctx?.close();
  });

  it('lists only iio:deviceN and triggerN, sorted, with their names', () => {
    assert.deepEqual(
      ctx.devices.map((d) => `${d.id}=${d.name}`),
      [
        'iio:device0=dummy0',
        'iio:device1=dummy1',
        'iio:device2=loopback_dac',
        'iio:device3=loopback_adc',
        // 6.12's VM also has the DMA buffer devices (iio_dma_loopback.ko)
        ...(KERNEL === '6.12' ? ['iio:device4=dma_adc', 'iio:device5=dma_dac'] : []),
        'trigger0=hrtimer0',
        'trigger1=hrtimer1',
        'trigger2=sysfstrig0',
      ],
    );
    assert.deepEqual(ctx.attrs, {
      'local,kernel': readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
      uri: 'local:',
    });
  });

  it('EACCES: writing a read-only attribute, reading a write-only one', async () => {
    const dummy = ctx.device('dummy0');
    const e = await rejectsWith(dummy.writeBufferAttr('direction', 'out'), 'EACCES', {
      device: 'iio:device0',
      attr: 'direction',
      file: `${SYS}/iio:device0/buffer/direction`,
    });
    assert.match(e.message, /read-only/);
    const trig = ctx.device('sysfstrig0');
    const r = await rejectsWith(trig.readAttr('trigger_now'), 'EACCES', {
      device: 'trigger2',
      attr: 'trigger_now',
      file: `${SYS}/trigger2/trigger_now`,
    });
    assert.match(r.message, /write-only/);
  });

  it('EINVAL: values the driver refuses (device and channel attributes)', async () => {
    const dummy = ctx.device('dummy0');
    const e = await rejectsWith(dummy.writeAttr('current_timestamp_clock', 'bogus'), 'EINVAL', {
      device: 'iio:device0',
      attr: 'current_timestamp_clock',
      file: `${SYS}/iio:device0/current_timestamp_clock`,
    });
    assert.match(e.message, /refused/);
    assert.equal(await dummy.readAttr('current_timestamp_clock').then((v) => v.trim()), 'realtime');
    // iio_dummy accepts raw writes on its output channel only
    await rejectsWith(dummy.channel('voltage0', false).writeAttr('raw', 12), 'EINVAL', {
      device: 'iio:device0',
      channel: 'voltage0',
      attr: 'raw',
      file: `${SYS}/iio:device0/in_voltage0_raw`,
    });
    const hr = ctx.device('hrtimer1');
    await rejectsWith(hr.writeAttr('sampling_frequency', 0), 'EINVAL', {
      device: 'trigger1',
      attr: 'sampling_frequency',
    });
  });

  it('EBUSY while the buffer is enabled (and 6.12 refuses raw reads then)', async () => {
    const dummy = ctx.device('dummy0');
    const dir = `${SYS}/iio:device0`;
    await dummy.setTrigger('hrtimer0');
    writeFileSync(`${dir}/scan_elements/in_voltage0_en`, '1');
    writeFileSync(`${dir}/buffer/enable`, '1');
    try {
      const raw = dummy.channel('voltage0', false).readAttr('raw');
      if (KERNEL === '6.1') assert.equal(await raw, '73');
      else
        await rejectsWith(raw, 'EBUSY', {
          device: 'iio:device0',
          channel: 'voltage0',
          attr: 'raw',
          file: `${dir}/in_voltage0_raw`,
        });
      const e = await rejectsWith(dummy.setTrigger(null), 'EBUSY', {
        device: 'iio:device0',
        file: `${dir}/trigger/current_trigger`,
      });
      assert.match(e.message, /buffer is enabled/);
      await rejectsWith(dummy.writeAttr('current_timestamp_clock', 'monotonic'), 'EBUSY', {
        device: 'iio:device0',
        attr: 'current_timestamp_clock',
      });
    } finally {
      writeFileSync(`${dir}/buffer/enable`, '0');
      writeFileSync(`${dir}/scan_elements/in_voltage0_en`, '0');
      await dummy.setTrigger(null);
    }
    assert.equal(await dummy.getTrigger(), null);
  });

  it('ENOENT: an attribute whose file is gone, a device without trigger, an unknown name', async () => {
    const cfg = '/sys/kernel/config/iio/triggers/hrtimer/gone';
    mkdirSync(cfg);
    let gone: Context | undefined;
    try {
      gone = await createContext('local:');
      const t = gone.device('gone');
      assert.equal(await t.readAttr('sampling_frequency'), '100.000000');
      rmdirSync(cfg);
      await rejectsWith(t.readAttr('sampling_frequency'), 'ENOENT', {
        device: t.id,
        attr: 'sampling_frequency',
        file: `${SYS}/${t.id}/sampling_frequency`,
      });
      await rejectsWith(t.writeAttr('sampling_frequency', 10), 'ENOENT', {
        device: t.id,
        attr: 'sampling_frequency',
      });
    } finally {
      if (existsSync(cfg)) rmdirSync(cfg);
      await gone?.close();
    }
    // a whole device removed: its channel attributes are gone too
    const dcfg = '/sys/kernel/config/iio/devices/dummy/gonedev';
    mkdirSync(dcfg);
    let ctx2: Context | undefined;
    try {
      ctx2 = await createContext('local:');
      const d = ctx2.device('gonedev');
      const accel = d.channel('accel_x');
      assert.equal(await accel.readAttr('calibbias'), '-7');
      rmdirSync(dcfg);
      await rejectsWith(accel.readAttr('calibbias'), 'ENOENT', {
        device: d.id,
        channel: 'accel_x',
        attr: 'calibbias',
        file: `${SYS}/${d.id}/in_accel_x_calibbias`,
      });
    } finally {
      if (existsSync(dcfg)) rmdirSync(dcfg);
      await ctx2?.close();
    }
    const e = await rejectsWith(ctx.device('hrtimer0').getTrigger(), 'ENOENT', {
      device: 'trigger0',
      file: `${SYS}/trigger0/trigger/current_trigger`,
    });
    assert.match(e.message, /no trigger/);
    await rejectsWith(
      Promise.resolve().then(() => ctx.device('dummy0').readAttr('nosuch')),
      'ENOENT',
      {
        device: 'iio:device0',
        attr: 'nosuch',
      },
    );
  });

  it('triggers: set, get, clear; hrtimer sampling_frequency', async () => {
    const adc = ctx.device('loopback_adc');
    const hr0 = ctx.device('hrtimer0');
    await adc.setTrigger(hr0);
    try {
      assert.equal((await adc.getTrigger())?.id, 'trigger0');
      assert.equal(
        readFileSync(`${SYS}/iio:device3/trigger/current_trigger`, 'utf8'),
        'hrtimer0\n',
      );
    } finally {
      await adc.setTrigger(null);
    }
    assert.equal(await adc.getTrigger(), null);
    await rejectsWith(
      Promise.resolve().then(() => adc.setTrigger('dummy0')),
      'ENODEV',
      { device: 'iio:device3' },
    );
    const hr1 = ctx.device('hrtimer1');
    await hr1.writeAttr('sampling_frequency', 250);
    try {
      assert.equal(await hr1.readAttr('sampling_frequency'), '250.000000');
    } finally {
      await hr1.writeAttr('sampling_frequency', 100);
    }
  });

  it('registers through debugfs: reset values, write/read back, atomic per device', async () => {
    const dac = ctx.device('loopback_dac');
    const adc = ctx.device('loopback_adc');
    assert.equal(await dac.readRegister(0x10), 0x1010);
    assert.equal(await adc.readRegister(0x10), 0x2010);
    // Many interleaved reads: each must see its own address's value.
    const addrs = Array.from({ length: 24 }, (_, i) => (i * 7) % 256);
    const values = await Promise.all(
      addrs.flatMap((a) => [dac.readRegister(a), adc.readRegister(a)]),
    );
    assert.deepEqual(
      values,
      addrs.flatMap((a) => [0x1000 + a, 0x2000 + a]),
    );
    const before = await dac.readRegister(0x20);
    await dac.writeRegister(0x20, 0xbeef);
    try {
      assert.equal(await dac.readRegister(0x20), 0xbeef);
      assert.equal(await dac.readDebugAttr('direct_reg_access'), '0xBEEF');
    } finally {
      await dac.writeRegister(0x20, before);
    }
    await rejectsWith(
      Promise.resolve().then(() => ctx.device('dummy0').readRegister(0)),
      'ENOENT',
      { device: 'iio:device0', attr: 'direct_reg_access' },
    );
  });
});
