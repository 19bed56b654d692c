import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createContext, type Channel, type Context, type Device, type IioError } from '../../src';
import { peakFrequency } from '../helpers/spectrum';

/**
 * Issue 19: captured boards (emu:FILE.xml) behave like their drivers where a client
 * notices — captured ERROR values, the AD9361's FIR-dependent rates, TX looped into RX
 * with DDS tones, character references — on the real-world fixtures.
 */

const DIR = join(__dirname, '../../../test/fixtures/xml');
const open = (f: string): Promise<Context> => createContext(`emu:${join(DIR, f)}`);
const N = 512;

/** A 128-tap, decimate/interpolate-by-4 filter file in the AD9361 format. */
function firFile(taps = 128, dec = 4): string {
  let s = `# test filter\nRX 3 GAIN -6 DEC ${dec}\nTX 3 GAIN 0 INT ${dec}\n`;
  for (let i = 0; i < taps; i++) s += `${(i * 37) % 200},${(i * 53) % 200}\n`;
  return s;
}

/** Reads N scans of the given RX channels after one block is thrown away. */
async function capture(dev: Device, channels: Channel[]): Promise<number[][]> {
  const buf = await dev.createBuffer(N, { channels });
  try {
    await buf.refill();
    await buf.refill();
    return channels.map((c) => buf.channelData(c) as number[]);
  } finally {
    await buf.close();
  }
}

/** Sets a DDS core to one complex tone f on TX channel pair `pair` (I leads by 90°). */
async function ddsTone(tx: Device, f: number, scale: number, pair = 1): Promise<void> {
  for (const c of tx.channels.filter((x) => /^altvoltage\d+$/.test(x.id))) {
    const n = Number(c.id.slice('altvoltage'.length));
    const mine = Math.floor(n / 4) === pair - 1 && n % 2 === 0; // TXk_I_F1 and TXk_Q_F1
    await c.writeAttr('frequency', String(f));
    await c.writeAttr('scale', mine ? String(scale) : '0');
    await c.writeAttr('phase', Math.floor(n / 2) % 2 === 0 ? '90000' : '0');
  }
  await tx.channels.find((c) => c.id === 'altvoltage0')!.writeAttr('raw', '1');
}

describe('emu: captured ERROR values', function () {
  this.timeout(30000);

  it('ad9081: an ERROR _available list accepts writes; ERROR values read as EIO until written', async () => {
    const ctx = await open('ad9081.xml');
    try {
      const ch = ctx.device('axi-ad9081-rx-hpc').channel('voltage0_i', false);
      await assert.rejects(ch.readAttr('test_mode_available'), (e: IioError) => e.code === 'EIO');
      await ch.writeAttr('test_mode', 'midscale_short');
      assert.equal(await ch.readAttr('test_mode'), 'midscale_short');
      // nyquist_zone: its read failed at capture; its list (odd even) still validates.
      await assert.rejects(
        ch.readAttr('nyquist_zone'),
        /EIO: read: device iio:device2, channel voltage0_i, attribute nyquist_zone/,
      );
      await assert.rejects(
        ch.writeAttr('nyquist_zone', 'third'),
        (e: IioError) => e.code === 'EINVAL',
      );
      await ch.writeAttr('nyquist_zone', 'even');
      assert.equal(await ch.readAttr('nyquist_zone'), 'even');
    } finally {
      await ctx.close();
    }
  });

  it('adxl355: a rate whose list failed is accepted and sets the device rate', async () => {
    const ctx = await open('adxl355.xml');
    try {
      const dev = ctx.device('adxl355');
      const x = dev.channel('accel_x', false);
      await x.writeAttr('sampling_frequency', '1000');
      assert.equal(await dev.channel('accel_y', false).readAttr('sampling_frequency'), '1000');
      // 64 scans at 1 kHz: their timestamps are 1 ms apart.
      const ts = dev.channels.find((c) => c.type === 'timestamp');
      const buf = await dev.createBuffer(64, { channels: [x, ...(ts ? [ts] : [])] });
      try {
        await buf.refill();
        if (ts) {
          const t = buf.channelData(ts) as bigint[];
          assert.ok(Math.abs(Number(t[1] - t[0]) - 1_000_000) <= 1, `${t[1] - t[0]} ns`);
        }
      } finally {
        await buf.close();
      }
    } finally {
      await ctx.close();
    }
  });

  for (const [file, device, channel] of [
    ['daq2.xml', 'axi-ad9680-hpc', 'voltage0'],
    ['ad9081.xml', 'axi-ad9081-rx-hpc', 'voltage1_q'],
  ] as const) {
    it(`${file}: test_mode (list ERROR) takes any mode`, async () => {
      const ctx = await open(file);
      try {
        const ch = ctx.device(device).channel(channel, false);
        await ch.writeAttr('test_mode', 'pn9');
        assert.equal(await ch.readAttr('test_mode'), 'pn9');
      } finally {
        await ctx.close();
      }
    });
  }

  it('adrv9002 and pluto: ERROR device and debug attributes read EIO, accept writes', async () => {
    const ctx = await open('adrv9002.xml');
    try {
      const phy = ctx.device('adrv9002-phy');
      await assert.rejects(phy.readDebugAttr('initialize'), (e: IioError) => e.code === 'EIO');
      await phy.writeDebugAttr('initialize', '1');
      assert.equal(await phy.readDebugAttr('initialize'), '1');
    } finally {
      await ctx.close();
    }
    const pluto = await open('pluto.xml');
    try {
      const phy = pluto.device('ad9361-phy');
      await assert.rejects(phy.readAttr('multichip_sync'), (e: IioError) => e.code === 'EIO');
      await phy.writeAttr('multichip_sync', '3');
    } finally {
      await pluto.close();
    }
  });
});

describe('emu: AD9361 rates follow the FIR', function () {
  this.timeout(30000);

  // fmcomms2-3 was captured with a decimate-by-2 FIR enabled, the others without one.
  for (const [file, capturedMin] of [
    ['pluto.xml', 2083333],
    ['fmcomms2-3.xml', 1041666],
    ['adrv9361-z7035.xml', 2083333],
  ] as const) {
    it(`${file}: 1 MS/s is refused, then accepted once a decimate-by-4 FIR is loaded and enabled`, async () => {
      const ctx = await open(file);
      try {
        const phy = ctx.device('ad9361-phy');
        const rx = phy.channel('voltage0', false);
        const tx = phy.channel('voltage0', true);
        const trx = phy.channel('out', false);
        // The model computes the range the capture holds from the captured FIR state.
        const list = rx.attrs.find((a) => a.name === 'sampling_frequency_available')!;
        assert.equal(list.staticValue, `[${capturedMin} 1 61440000]`);
        assert.equal(await list.read(), list.staticValue);
        await assert.rejects(rx.writeAttr('sampling_frequency', '1000000'), /EINVAL.*accepts/);
        await phy.writeAttr('filter_fir_config', firFile());
        assert.equal(await phy.readAttr('filter_fir_config'), 'FIR Rx: 128,4 Tx: 128,4');
        await trx.writeAttr('voltage_filter_fir_en', '1');
        // Clients re-read the list after such a write: it has widened.
        assert.equal(await rx.readAttr('sampling_frequency_available'), '[520833 1 61440000]');
        assert.equal(await tx.readAttr('sampling_frequency_available'), '[520833 1 61440000]');
        assert.equal(await rx.readAttr('filter_fir_en'), '1');
        await rx.writeAttr('sampling_frequency', '1000000');
        assert.equal(await rx.readAttr('sampling_frequency'), '1000000');
        assert.equal(await tx.readAttr('sampling_frequency'), '1000000');
        // The FPGA cores follow (with their decimator's rate beside it where they have one).
        const core = ctx.device('cf-ad9361-lpc').channel('voltage0', false);
        assert.equal(await core.readAttr('sampling_frequency'), '1000000');
        if (core.attrs.some((a) => a.name === 'sampling_frequency_available')) {
          assert.equal(await core.readAttr('sampling_frequency_available'), '1000000 125000 ');
        }
        assert.equal(
          await ctx
            .device('cf-ad9361-dds-core-lpc')
            .channel('voltage0', true)
            .readAttr('sampling_frequency'),
          '1000000',
        );
        await assert.rejects(rx.writeAttr('sampling_frequency', '500000'), /EINVAL.*520833/);
        // Back to a rate the chain reaches without the filter, it can go.
        await rx.writeAttr('sampling_frequency', '30720000');
        await trx.writeAttr('voltage_filter_fir_en', '0');
        assert.equal(await rx.readAttr('sampling_frequency_available'), '[2083333 1 61440000]');
      } finally {
        await ctx.close();
      }
    });
  }

  it('pluto: enabling without a filter loaded is refused, as the driver refuses it', async () => {
    const ctx = await open('pluto.xml');
    try {
      const trx = ctx.device('ad9361-phy').channel('out', false);
      await assert.rejects(
        trx.writeAttr('voltage_filter_fir_en', '1'),
        /EINVAL.*no RX FIR is loaded/,
      );
      assert.equal(await trx.readAttr('voltage_filter_fir_en'), '0');
      // Disabling a filter the rate depends on fails as on the board, leaving it bypassed.
      const phy = ctx.device('ad9361-phy');
      await phy.writeAttr('filter_fir_config', firFile());
      await trx.writeAttr('voltage_filter_fir_en', '1');
      await phy.channel('voltage0', false).writeAttr('sampling_frequency', '600000');
      await assert.rejects(trx.writeAttr('voltage_filter_fir_en', '0'), /EINVAL.*below 2083333/);
      assert.equal(await trx.readAttr('voltage_filter_fir_en'), '0');
    } finally {
      await ctx.close();
    }
  });

  it('pluto: filters the driver refuses are refused', async () => {
    const ctx = await open('pluto.xml');
    try {
      const phy = ctx.device('ad9361-phy');
      await assert.rejects(phy.writeAttr('filter_fir_config', firFile(120)), /EINVAL.*120 taps/);
      await assert.rejects(phy.writeAttr('filter_fir_config', 'hello'), /EINVAL.*TX/);
      assert.equal(await phy.readAttr('filter_fir_config'), 'FIR Rx: 0,0 Tx: 0,0');
      // 128 taps at 61.44 MS/s: the ADC clock leaves room for 64.
      const rx = phy.channel('voltage0', false);
      await rx.writeAttr('sampling_frequency', '61440000');
      await phy.writeAttr('filter_fir_config', firFile());
      await assert.rejects(
        phy.channel('out', false).writeAttr('voltage_filter_fir_en', '1'),
        /EINVAL.*128 RX FIR taps exceed the 64/,
      );
      assert.equal(await phy.channel('out', false).readAttr('voltage_filter_fir_en'), '0');
      await phy.writeAttr('filter_fir_config', firFile(64));
      await phy.channel('out', false).writeAttr('voltage_filter_fir_en', '1');
    } finally {
      await ctx.close();
    }
  });
});

describe('emu: TX looped into RX on captured transceivers', function () {
  this.timeout(60000);

  it('pluto: a DDS tone at f shows on RX at f once loopback = 1, and not before', async () => {
    const ctx = await open('pluto.xml');
    try {
      const phy = ctx.device('ad9361-phy');
      const rx = ctx.device('cf-ad9361-lpc');
      const tx = ctx.device('cf-ad9361-dds-core-lpc');
      const rate = Number(await rx.channel('voltage0', false).readAttr('sampling_frequency'));
      const f = (rate * 37) / N;
      await ddsTone(tx, f, 0.5);
      const iq = [rx.channel('voltage0', false), rx.channel('voltage1', false)];
      let [i, q] = await capture(rx, iq);
      assert.notEqual(peakFrequency(i, q, rate), f, 'loopback off: RX shows its own signal');
      await phy.writeDebugAttr('loopback', '1');
      [i, q] = await capture(rx, iq);
      assert.equal(peakFrequency(i, q, rate), f);
      // 0.5 of the 16-bit DAC's full scale, seen by the 12-bit ADC.
      assert.ok(Math.max(...i) > 900 && Math.max(...i) <= 1024, `${Math.max(...i)}`);
      await assert.rejects(phy.writeDebugAttr('loopback', '7'), /EINVAL/);
    } finally {
      await ctx.close();
    }
  });

  it('fmcomms2-3: a cyclic TX buffer replaces the DDS, and the tones come back after it', async () => {
    const ctx = await open('fmcomms2-3.xml');
    try {
      await ctx.device('ad9361-phy').writeDebugAttr('loopback', '1');
      const rx = ctx.device('cf-ad9361-lpc');
      const tx = ctx.device('cf-ad9361-dds-core-lpc');
      const rate = Number(await rx.channel('voltage0', false).readAttr('sampling_frequency'));
      const fDds = (rate * 20) / N;
      const fDma = (-rate * 45) / N;
      await ddsTone(tx, fDds, 0.25);
      const txCh = [tx.channel('voltage0', true), tx.channel('voltage1', true)];
      const out = await tx.createBuffer(N, { channels: txCh, cyclic: true });
      const data = Buffer.alloc(N * out.scanBytes);
      for (let k = 0; k < N; k++) {
        const p = (2 * Math.PI * fDma * k) / rate;
        data.writeInt16LE(
          Math.round(8000 * Math.cos(p)),
          k * out.scanBytes + out.slotOf(txCh[0]).offset,
        );
        data.writeInt16LE(
          Math.round(8000 * Math.sin(p)),
          k * out.scanBytes + out.slotOf(txCh[1]).offset,
        );
      }
      await out.push(data);
      const iq = [rx.channel('voltage0', false), rx.channel('voltage1', false)];
      let [i, q] = await capture(rx, iq);
      assert.equal(peakFrequency(i, q, rate), fDma);
      await out.close();
      [i, q] = await capture(rx, iq);
      assert.equal(peakFrequency(i, q, rate), fDds);
      // RX pair 2 is looped from TX pair 2, whose tones are off.
      const [i2] = await capture(rx, [rx.channel('voltage2', false)]);
      assert.ok(
        i2.every((v) => v === 0),
        'TX2 plays nothing',
      );
    } finally {
      await ctx.close();
    }
  });

  it('ad9081: loopback_mode 1 loops the JESD link; 2 is refused while ADC and DAC clocks differ', async () => {
    const ctx = await open('ad9081.xml');
    try {
      const rx = ctx.device('axi-ad9081-rx-hpc');
      const tx = ctx.device('axi-ad9081-tx-hpc');
      const rate = Number(await rx.channel('voltage0_i', false).readAttr('sampling_frequency'));
      const f = (rate * 11) / N;
      await ddsTone(tx, f, 0.5, 2);
      const iq = [rx.channel('voltage1_i', false), rx.channel('voltage1_q', false)];
      await assert.rejects(
        rx.writeAttr('loopback_mode', '2'),
        (e: IioError) => e.code === 'EOPNOTSUPP',
      );
      let [i, q] = await capture(rx, iq);
      assert.notEqual(peakFrequency(i, q, rate), f);
      await rx.writeAttr('loopback_mode', '1');
      [i, q] = await capture(rx, iq);
      assert.equal(peakFrequency(i, q, rate), f);
    } finally {
      await ctx.close();
    }
  });

  it('adrv9002: tx0_ssi_test_mode_loopback_en loops TX1 into RX1 only', async () => {
    const ctx = await open('adrv9002.xml');
    try {
      const phy = ctx.device('adrv9002-phy');
      const rx = ctx.device('axi-adrv9002-rx-lpc');
      const tx = ctx.device('axi-adrv9002-tx-lpc');
      const rate = Number(await rx.channel('voltage0_i', false).readAttr('sampling_frequency'));
      const f = (rate * 29) / N;
      await ddsTone(tx, f, 0.5);
      await phy.writeDebugAttr('tx0_ssi_test_mode_loopback_en', '1');
      const [i, q] = await capture(rx, [
        rx.channel('voltage0_i', false),
        rx.channel('voltage0_q', false),
      ]);
      assert.equal(peakFrequency(i, q, rate), f);
      const [i1, q1] = await capture(rx, [
        rx.channel('voltage1_i', false),
        rx.channel('voltage1_q', false),
      ]);
      assert.notEqual(peakFrequency(i1, q1, rate), f, 'RX2 keeps its own signal');
    } finally {
      await ctx.close();
    }
  });

  it('daq2: the AD9144 DDS shows on the AD9680 (the loopback cable)', async () => {
    const ctx = await open('daq2.xml');
    try {
      const rx = ctx.device('axi-ad9680-hpc');
      const tx = ctx.device('axi-ad9144-hpc');
      const rate = Number(await rx.channel('voltage0', false).readAttr('sampling_frequency'));
      const f = (rate * 60) / N;
      for (const c of tx.channels.filter((x) => /^altvoltage\d+$/.test(x.id))) {
        await c.writeAttr('scale', c.name === '1A' ? '0.25' : '0');
        await c.writeAttr('frequency', String(f));
      }
      const [real] = await capture(rx, [rx.channel('voltage0', false)]);
      assert.equal(peakFrequency(real, undefined, rate), f);
      // 0.25 of the 16-bit DAC, on a 14-bit ADC.
      assert.ok(Math.max(...real) > 1900 && Math.max(...real) <= 2048, `${Math.max(...real)}`);
    } finally {
      await ctx.close();
    }
  });
});

describe('emu: buffer attributes of the 1.0 dialect', () => {
  it('libiio-fmcomms2 (1.0 dialect): data_available counts scans, length_align_bytes keeps 8', async () => {
    const ctx = await open('libiio-fmcomms2.xml');
    try {
      const lpc = ctx.device('cf-ad9361-lpc');
      assert.equal(await lpc.readBufferAttr('length_align_bytes'), '8');
      assert.equal(await lpc.readBufferAttr('data_available'), '0');
      const ch = lpc.channels.filter((c) => c.isScanElement);
      const buf = await lpc.createBuffer(256, { channels: ch });
      try {
        await buf.refill();
        // Nothing read for a while: scans pile up in the buffer.
        await new Promise((r) => setTimeout(r, 20));
        assert.ok(Number(await lpc.readBufferAttr('data_available')) > 0);
      } finally {
        await buf.close();
      }
      await assert.rejects(lpc.writeBufferAttr('data_available', '5'), /EACCES/);
    } finally {
      await ctx.close();
    }
  });
});

describe('emu: values with character references read back decoded', () => {
  it('adis16475 (&#10;) and pluto (literal newlines, normalised to spaces as XML requires)', async () => {
    const adis = await open('adis16475.xml');
    try {
      assert.equal(
        await adis.device('adis16505-2').readAttr('current_timestamp_clock'),
        'realtime\n',
      );
    } finally {
      await adis.close();
    }
    const pluto = await open('pluto.xml');
    try {
      assert.equal(
        await pluto.device('ad9361-phy').readAttr('rssi_gain_step_error'),
        'lna_error: 0 0 0 0 mixer_error: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 gain_step_calib_reg_val: 0 0 0 0 0',
      );
    } finally {
      await pluto.close();
    }
  });
});
