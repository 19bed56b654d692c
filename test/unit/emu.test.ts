import assert from 'node:assert/strict';
import { createContext, decodeEvent, IioError, parseScanType, type Context } from '../../src';
import type { AttrRef } from '../../src/model/backend';
import { elementWriter } from '../../src/backends/emu/element-writer';
import { channelEventCode, eventCode } from '../../src/backends/emu/events';
import { Generator, type Waveform } from '../../src/backends/emu/waveform';
import { convertInverse } from '../../src/format/convert';

/** The error a promise rejects with (fails if it resolves). */
async function rejection(p: Promise<unknown>): Promise<IioError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof IioError, `an IioError, not ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

describe('emu: the default emulated context', function () {
  this.timeout(20000);
  let ctx: Context;
  beforeEach(async () => {
    ctx = await createContext('emu:');
  });
  afterEach(async () => {
    await ctx.close();
  });

  it('looks like hardware and says it is emulated', () => {
    assert.equal(ctx.name, 'emu');
    assert.match(ctx.description, /emulated/);
    assert.deepEqual(
      ctx.devices.map((d) => [d.id, d.name, d.isTrigger]),
      [
        ['iio:device0', 'ad7606-emu', false],
        ['iio:device1', 'ad5689-emu', false],
        ['iio:device2', 'adxl345-emu', false],
        ['trigger0', 'emu-trig0', true],
      ],
    );
    const adc = ctx.device('ad7606-emu');
    assert.deepEqual(
      adc.channels.map((c) => [c.id, c.isOutput, c.index, c.format && c.format.bits]),
      [
        ['voltage0', false, 0, 16],
        ['voltage1', false, 1, 16],
        ['voltage2', false, 2, 16],
        ['voltage3', false, 3, 16],
        ['timestamp', false, 4, 64],
      ],
    );
    const dac = ctx.device('ad5689-emu');
    assert.deepEqual(
      dac.channels.map((c) => [c.id, c.isOutput]),
      [
        ['voltage0', true],
        ['voltage1', true],
      ],
    );
    const acc = ctx.device('adxl345-emu');
    assert.deepEqual(
      acc.channels.map((c) => [c.id, c.type, c.modifier]),
      [
        ['accel_x', 'accel', 'x'],
        ['accel_y', 'accel', 'y'],
        ['accel_z', 'accel', 'z'],
        ['timestamp', 'timestamp', ''],
      ],
    );
  });

  it('streams the kernel layout at the sampling rate: a ramp with 1/fs timestamps', async () => {
    const adc = ctx.device('ad7606-emu');
    await adc.writeAttr('sampling_frequency', 5000);
    await adc.channel('voltage2').writeAttr('waveform', 'ramp');
    const buf = await adc.createBuffer(200, { channels: ['voltage2', 'timestamp'] });
    assert.equal(buf.scanBytes, 16, 's16 + padding + s64');
    assert.deepEqual(
      buf.layout.slots.map((s) => [s.key, s.offset]),
      [
        [2, 0],
        [4, 8],
      ],
    );
    const values: number[] = [];
    const stamps: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const data = await buf.refill();
      assert.equal(data.length, 200 * 16);
      values.push(...(buf.channelData('voltage2') as number[]));
      stamps.push(...(buf.channelData('timestamp') as bigint[]));
    }
    await buf.close();
    for (let i = 1; i < values.length; i++) {
      assert.equal((values[i] - values[i - 1]) & 0xffff, 1, `ramp at ${i}`);
      assert.ok(Math.abs(Number(stamps[i] - stamps[i - 1]) - 200000) <= 2, `1/5 kHz at ${i}`);
    }
  });

  it('encodes elements exactly as convertInverse does', () => {
    const formats = [
      'le:s16/16>>0',
      'be:s16/16>>0',
      'le:u12/16>>4',
      'be:s12/16>>4',
      'le:s8/8>>0',
      'le:u24/32>>8',
      'be:s32/32>>0',
      'le:u32/32>>0',
      'le:s24/24>>0',
      'le:s14/16>>2',
      'le:S12/16>>0',
      'be:U10/16>>2',
    ];
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    for (const text of formats) {
      const f = parseScanType(text);
      const write = elementWriter(f);
      for (let i = 0; i < 200; i++) {
        const v = Math.round(rand() * 2 ** Math.min(f.bits + 1, 40));
        const a = Buffer.alloc(8, 0xaa);
        const b = Buffer.alloc(8, 0xaa);
        write(a, 1, v);
        convertInverse(v, b, 1, f);
        assert.deepEqual(a, b, `${text} value ${v}`);
      }
    }
  });

  it('generates each waveform within its amplitude around its offset', () => {
    const range = { min: -32768, max: 32767 };
    const shapes: Waveform[] = ['sine', 'square', 'triangle', 'sawtooth', 'noise', 'constant'];
    for (const waveform of shapes) {
      const g = new Generator(
        { waveform, frequency: 7, amplitude: 1000, offset: 300 },
        1000,
        range,
        1,
      );
      const v = Array.from({ length: 2000 }, (_, n) => g.valueAt(n));
      assert.ok(
        v.every((x) => x >= -700 && x <= 1300),
        waveform,
      );
      const distinct = new Set(v).size;
      if (waveform === 'constant') assert.equal(distinct, 1);
      else if (waveform === 'square') assert.deepEqual([...new Set(v)].sort(), [-700, 1300]);
      else assert.ok(distinct > 100, `${waveform}: ${distinct} distinct values`);
    }
    const clipped = new Generator(
      { waveform: 'sine', frequency: 1, amplitude: 1e6, offset: 0 },
      100,
      range,
      1,
    );
    assert.equal(clipped.valueAt(25), 32767, 'clamped to what the format holds');
  });

  it('keeps attribute writes and validates them against _available lists', async () => {
    const adc = ctx.device('ad7606-emu');
    const v0 = adc.channel('voltage0');
    await v0.writeAttr('waveform', 'square');
    assert.equal(await v0.readAttr('waveform'), 'square');
    await adc.writeAttr('sampling_frequency', '2000.0');
    assert.equal(await adc.readAttr('sampling_frequency'), '2000', 'stored as the list spells it');
    let e = await rejection(adc.writeAttr('sampling_frequency', 1234));
    assert.equal(e.code, 'EINVAL');
    assert.match(e.message, /sampling_frequency/);
    assert.match(e.message, /100, 200, 500, 1000/);
    assert.equal(
      await adc.readAttr('sampling_frequency'),
      '2000',
      'a refused write changes nothing',
    );
    e = await rejection(v0.writeAttr('waveform', 'sinus'));
    assert.equal(e.code, 'EINVAL');
    assert.match(e.message, /waveform accepts sine, square, triangle/);
    assert.equal(e.channel, 'voltage0');
    e = await rejection(v0.writeAttr('waveform_frequency', 'fast'));
    assert.equal(e.code, 'EINVAL');
    // Nyquist: at 2000 S/s a tone above 1000 Hz would alias. A timestamp injected by a
    // flow (issue 14) is refused as a driver refuses what its clock cannot make.
    e = await rejection(v0.writeAttr('waveform_frequency', 1733234567890));
    assert.equal(e.code, 'EINVAL');
    assert.match(e.message, /waveform_frequency accepts 0 to 1000/);
    e = await rejection(v0.writeAttr('waveform_frequency', 1000.5));
    assert.equal(e.code, 'EINVAL');
    await v0.writeAttr('waveform_frequency', 1000);
    assert.equal(await v0.readAttr('waveform_frequency'), '1000');
    await adc.writeAttr('sampling_frequency', 1000);
    e = await rejection(v0.writeAttr('waveform_frequency', 1000));
    assert.match(e.message, /accepts 0 to 500/, 'the bound follows the sampling frequency');
    await v0.writeAttr('waveform_frequency', 50);
    await adc.writeAttr('sampling_frequency', 2000);
    e = await rejection(v0.writeAttr('raw', 5));
    assert.equal(e.code, 'EACCES');
    e = await rejection(v0.writeAttr('waveform_available', 'x'));
    assert.equal(e.code, 'EACCES');
    const dac = ctx.device('ad5689-emu').channel('voltage1', true);
    await dac.writeAttr('raw', -1234);
    assert.equal(await dac.readAttr('raw'), '-1234');
    e = await rejection(dac.writeAttr('raw', 40000));
    assert.equal(e.code, 'EINVAL');
    assert.match(e.message, /-32768 to 32767/);
    // A raw read is the live signal: constant waveform → that value
    await v0.writeAttr('waveform', 'constant');
    await v0.writeAttr('waveform_offset', 1234);
    assert.equal(await v0.readAttr('raw'), '1234');
  });

  it('loops what the DAC plays back into ADC voltage0/1, exactly', async () => {
    const adc = ctx.device('ad7606-emu');
    const dac = ctx.device('ad5689-emu');
    const cap = await adc.createBuffer(100, { channels: ['voltage0', 'voltage1'] });
    const out = await dac.createBuffer(50, { channels: ['voltage0', 'voltage1'], isOutput: true });
    const pattern = Buffer.alloc(150 * 4);
    for (let i = 0; i < 150; i++) {
      pattern.writeInt16LE(i * 100 - 7000, i * 4);
      pattern.writeInt16LE(-i, i * 4 + 2);
    }
    await cap.refill();
    for (let k = 0; k < 3; k++) await out.push(pattern.subarray(k * 200, k * 200 + 200));
    await out.close(); // queued samples still play out
    const got: Buffer[] = [];
    for (let i = 0; i < 5; i++) got.push(Buffer.from(await cap.refill()));
    await cap.close();
    assert.ok(Buffer.concat(got).indexOf(pattern) >= 0, 'the capture holds the pattern, in order');
  });

  it('plays DAC output at its sampling_frequency: the looped-back ramp, timed by ADC timestamps', async () => {
    const adc = ctx.device('ad7606-emu');
    const dac = ctx.device('ad5689-emu');
    // Different rates, neither the default: the DAC's own must show, not the ADC's.
    await adc.writeAttr('sampling_frequency', 10000);
    await dac.writeAttr('sampling_frequency', 2000);
    const dacRate = Number(await dac.readAttr('sampling_frequency'));
    const adcRate = Number(await adc.readAttr('sampling_frequency'));
    const cap = await adc.createBuffer(500, { channels: ['voltage0', 'timestamp'], blocks: 16 });
    // s16 at byte 0, the s64 timestamp aligned to byte 8 (the kernel's layout).
    assert.equal(cap.scanBytes, 16);
    const out = await dac.createBuffer(100, { channels: ['voltage0'], isOutput: true });
    // A ramp far below the ADC's own signal (a ±16000 sine): only the DAC makes these.
    const N = 1000;
    const BASE = -30000;
    const ramp = Buffer.alloc(N * 2);
    for (let i = 0; i < N; i++) ramp.writeInt16LE(BASE + i, i * 2);
    // When each ramp value first shows on the ADC (ns), and how many ADC scans show it.
    const firstSeen = new Map<number, bigint>();
    const scans = new Map<number, number>();
    await cap.refill();
    const reading = (async () => {
      for (let k = 0; k < 40 && !firstSeen.has(BASE + N - 1); k++) {
        const data = await cap.refill();
        for (let off = 0; off < data.length; off += 16) {
          const v = data.readInt16LE(off);
          if (v < BASE || v >= BASE + N) continue;
          if (!firstSeen.has(v)) firstSeen.set(v, data.readBigInt64LE(off + 8));
          scans.set(v, (scans.get(v) ?? 0) + 1);
        }
      }
    })();
    await out.push(ramp);
    await reading;
    await out.close();
    await cap.close();
    assert.equal(firstSeen.size, N, 'every ramp value was played and captured');
    const span = Number(firstSeen.get(BASE + N - 1)! - firstSeen.get(BASE)!) / 1e9;
    const played = (N - 1) / span;
    assert.ok(
      Math.abs(played - dacRate) / dacRate < 0.01,
      `played at ${played} Hz, not ${dacRate}`,
    );
    // Each DAC sample lasts adcRate/dacRate ADC samples (the first and last may be cut).
    const inner = [...scans.entries()].filter(([v]) => v > BASE && v < BASE + N - 1);
    assert.ok(
      inner.every(([, n]) => n === adcRate / dacRate),
      `scans per value: ${[...new Set(inner.map(([, n]) => n))].join(', ')}`,
    );
  });

  it('repeats a cyclic DAC block until it is closed', async () => {
    const adc = ctx.device('ad7606-emu');
    const dac = ctx.device('ad5689-emu');
    const cap = await adc.createBuffer(100, { channels: ['voltage0'] });
    const out = await dac.createBuffer(10, {
      channels: ['voltage0'],
      isOutput: true,
      cyclic: true,
    });
    const block = Buffer.alloc(20);
    for (let i = 0; i < 10; i++) block.writeInt16LE(1000 * i, i * 2);
    await out.push(block);
    const e = await rejection(out.push(block));
    assert.equal(e.code, 'EBUSY');
    await cap.refill();
    const data = Buffer.from(await cap.refill());
    const twice = Buffer.concat([block, block, block]);
    assert.ok(data.indexOf(twice) >= 0, 'three periods in a row');
    await out.close();
    await cap.close();
  });

  it('reports an overrun when the reader falls behind', async () => {
    const adc = ctx.device('ad7606-emu');
    await adc.writeAttr('sampling_frequency', 100000);
    const buf = await adc.createBuffer(100, { channels: ['voltage0'], blocks: 2 });
    await buf.refill();
    await new Promise((r) => setTimeout(r, 50));
    await buf.refill();
    assert.ok(buf.lost > 0, `${buf.lost} scans lost`);
    await buf.close();
  });

  it('allows one buffer per device, as the kernel does', async () => {
    const adc = ctx.device('ad7606-emu');
    const a = await adc.createBuffer(10, { channels: ['voltage0'] });
    const e = await rejection(adc.createBuffer(10, { channels: ['voltage1'] }));
    assert.equal(e.code, 'EBUSY');
    await a.close();
    const b = await adc.createBuffer(10, { channels: ['voltage1'] });
    await b.close();
  });

  it('ends a pending refill when the buffer or the context closes', async () => {
    const adc = ctx.device('ad7606-emu');
    await adc.writeAttr('sampling_frequency', 100);
    const buf = await adc.createBuffer(1000, { channels: ['voltage0'] });
    const pending = buf.refill();
    await new Promise((r) => setTimeout(r, 20));
    buf.cancel();
    assert.equal((await rejection(pending)).code, 'ECANCELED');
    const again = buf.refill();
    await ctx.close();
    const e = await rejection(again);
    assert.ok(['ECANCELED', 'EBADF'].includes(e.code), e.code);
  });

  it('fires real threshold events from the accelerometer', async () => {
    const acc = ctx.device('adxl345-emu');
    await acc.writeAttr('sampling_frequency', 800);
    await acc.channel('accel_x').writeAttr('waveform_frequency', 10);
    const events = acc.events();
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await events.next()).value!);
    await events.return!();
    for (const ev of seen) {
      assert.equal(ev.type, 'thresh');
      assert.equal(ev.channelType, 'accel');
      assert.equal(ev.modifier, 'x');
      assert.equal(ev.channelObject?.id, 'accel_x');
      assert.equal(ev.id, channelEventCode('accel_x', ev.direction as 'rising' | 'falling'));
    }
    assert.deepEqual(new Set(seen.map((e) => e.direction)), new Set(['rising', 'falling']));
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].timestamp > seen[i - 1].timestamp);
  });

  it('encodes event codes as the kernel macros do', () => {
    // IIO_MOD_EVENT_CODE(IIO_ACCEL, 0, IIO_MOD_X, IIO_EV_TYPE_THRESH, IIO_EV_DIR_RISING)
    assert.equal(channelEventCode('accel_x', 'rising'), 0x0001010300000000n);
    // IIO_UNMOD_EVENT_CODE(IIO_VOLTAGE, 2, IIO_EV_TYPE_THRESH, IIO_EV_DIR_FALLING)
    assert.equal(channelEventCode('voltage2', 'falling'), 0x0002000000000002n);
    // IIO_EVENT_CODE(IIO_VOLTAGE, 1 (diff), 0, RISING, THRESH, 1, 2, 0)
    assert.equal(channelEventCode('voltage1-voltage2', 'rising'), 0x0081000000020001n);
    const d = decodeEvent({
      id: eventCode({ type: 'mag', direction: 'either', channelType: 9, modifier: 0, channel: 3 }),
      timestamp: 0n,
    });
    assert.deepEqual([d.type, d.direction, d.channelType, d.channel], ['mag', 'either', 'temp', 3]);
  });

  it('keeps event settings as channel event attributes', async () => {
    const acc = ctx.device('adxl345-emu');
    const backend = ctx.backendForInternalUse;
    const y = acc.channel('accel_y');
    const attr = y.info.eventAttrs!.find((a) => a.name === 'thresh_rising_value')!;
    const ref: AttrRef = { kind: 'channel-event', device: acc.info, channel: y.info, attr };
    assert.equal(attr.filename, 'in_accel_y_thresh_rising_value');
    assert.equal(await backend.readAttr(ref), '1500');
    await backend.writeAttr(ref, '-200');
    assert.equal(await backend.readAttr(ref), '-200');
    const en = y.info.eventAttrs!.find((a) => a.name === 'thresh_rising_en')!;
    const enRef: AttrRef = { kind: 'channel-event', device: acc.info, channel: y.info, attr: en };
    await backend.writeAttr(enRef, 'y');
    assert.equal(await backend.readAttr(enRef), '1');
    await assert.rejects(backend.writeAttr(enRef, 'maybe'), /EINVAL/);
  });

  it('answers registers and debugfs direct_reg_access like the IIO core', async () => {
    const adc = ctx.device('ad7606-emu');
    await adc.writeRegister(0x20, 0xbeef);
    assert.equal(await adc.readRegister(0x20), 0xbeef);
    await adc.writeDebugAttr('direct_reg_access', '0x21 0x7');
    await adc.writeDebugAttr('direct_reg_access', '0x20');
    assert.equal(await adc.readDebugAttr('direct_reg_access'), '0xBEEF');
    const e = await rejection(adc.writeDebugAttr('direct_reg_access', 'zz'));
    assert.equal(e.code, 'EINVAL');
    assert.equal(await adc.readRegister(0x21), 7);
  });

  it('samples at the trigger rate once a trigger is set', async () => {
    const adc = ctx.device('ad7606-emu');
    const trig = ctx.device('emu-trig0');
    assert.equal(await adc.getTrigger(), null);
    await trig.writeAttr('sampling_frequency', 250);
    await adc.setTrigger('emu-trig0');
    assert.equal((await adc.getTrigger())?.id, 'trigger0');
    const buf = await adc.createBuffer(5, { channels: ['timestamp'] });
    await buf.refill();
    const ts = buf.channelData('timestamp') as bigint[];
    for (let i = 1; i < ts.length; i++) assert.ok(Math.abs(Number(ts[i] - ts[i - 1]) - 4e6) <= 2);
    await buf.close();
    await assert.rejects(trig.getTrigger(), /ENOENT/);
    await assert.rejects(adc.setTrigger('ad5689-emu'), /ENODEV|EINVAL/);
    await adc.setTrigger(null);
    assert.equal(await adc.getTrigger(), null);
  });

  it('runs no timers while nothing streams', async () => {
    // Count the timers the emulator starts and has not stopped (wrapping the globals it
    // calls), so the test runner's own timers do not matter.
    const live = new Set<unknown>();
    const g = globalThis as unknown as Record<string, (...a: unknown[]) => unknown>;
    const saved = ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'].map(
      (k) => [k, g[k]] as const,
    );
    const [st, si, ct, ci] = saved.map(([, f]) => f);
    g.setTimeout = (fn: unknown, ...rest: unknown[]) => {
      const h: unknown = st(
        (...a: unknown[]) => {
          live.delete(h);
          (fn as (...x: unknown[]) => void)(...a);
        },
        ...rest,
      );
      live.add(h);
      return h;
    };
    g.setInterval = (...a: unknown[]) => {
      const h = si(...a);
      live.add(h);
      return h;
    };
    g.clearTimeout = (h: unknown) => (live.delete(h), ct(h));
    g.clearInterval = (h: unknown) => (live.delete(h), ci(h));
    try {
      const other = await createContext('emu:');
      for (const d of other.devices) for (const a of d.attrs) await a.read();
      assert.equal(live.size, 0, 'reading attributes starts no timer');
      const buf = await other.device('ad7606-emu').createBuffer(10, { channels: ['voltage0'] });
      await buf.refill();
      const ev = other.device('adxl345-emu').events();
      const pending = ev.next();
      await new Promise((r) => st(r, 30));
      assert.ok(live.size > 0, 'an event stream polls');
      await buf.close();
      await ev.return!();
      await pending.catch(() => undefined);
      assert.equal(live.size, 0, 'closing buffers and event streams stops their timers');
      await other.close();
    } finally {
      for (const [k, f] of saved) g[k] = f;
    }
  });

  it('rejects what it cannot do with clear errors', async () => {
    await assert.rejects(createContext('emu:/nonexistent/ctx.xml'), /ENOENT.*nonexistent/);
    await assert.rejects(createContext('emu:', { maxRate: -1 }), /EINVAL.*maxRate/);
    const acc = ctx.device('ad5689-emu');
    await assert.rejects(
      acc.createBuffer(10, { channels: ['voltage0'], cyclic: false, isOutput: false }),
      /EINVAL|ENOENT/,
    );
  });
});
