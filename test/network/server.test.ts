import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createContext, serveContext, type Context, type ServerHandle } from '../../src';
import { iiokit } from '../helpers/cli';
import { externalIPv4, PEERS, requirePeer } from '../helpers/peers';
import {
  checkRamp,
  checkTwoReaders,
  converse,
  runAsync,
  scans16,
  twoRamps,
} from './server-helpers';

/** Two iio_readdev on different channels of one device at once: each gets its own channel. */
async function twoReaders(ctx: Context, uri: string): Promise<void> {
  await twoRamps(ctx, 10000);
  const [a, b] = await Promise.all([
    runAsync('iio_readdev', ['-u', uri, '-s', '4000', 'ad7606-emu', 'voltage0', 'timestamp']),
    runAsync('iio_readdev', [
      '-u',
      uri,
      '-s',
      '4000',
      '-b',
      '1000',
      'ad7606-emu',
      'voltage2',
      'timestamp',
    ]),
  ]);
  checkTwoReaders(a, b, 4000, 10000);
}

describe('iiokit serve: libiio 0.24 clients against the emulated context', function () {
  this.timeout(120000);
  let ctx: Context;
  let server: ServerHandle;
  let uri: string;

  before(async function () {
    requirePeer(this, PEERS.iioInfo);
    ctx = await createContext('emu:');
    server = await serveContext(ctx, { port: 0 });
    uri = `ip:127.0.0.1:${server.port}`;
  });
  after(async () => {
    await server?.close();
    await ctx?.close();
  });

  it('iio_info prints the devices, channels and attribute values iiokit info prints', async () => {
    const theirs = await runAsync('iio_info', ['-u', uri]);
    assert.equal(theirs.status, 0, theirs.stderr);
    const ours = await iiokit(['info', '-u', 'emu:']);
    assert.equal(ours.status, 0, ours.stderr);
    const devicesOf = (s: string): string[] =>
      s.slice(s.indexOf('IIO context has 4 devices:')).split('\n');
    const a = devicesOf(theirs.stdout.toString());
    const b = devicesOf(ours.stdout);
    assert.ok(a.length > 100, 'iio_info printed the devices');
    assert.equal(a.length, b.length, 'same number of lines');
    // `raw` of the ADC and accelerometer inputs is the live signal: it is read at a
    // different instant by each tool, so only its shape is compared there.
    const LIVE = /^(\t+attr +\d+: raw value: )(-?\d+)$/;
    let live = 0;
    for (let i = 0; i < a.length; i++) {
      const la = LIVE.exec(a[i]);
      const lb = LIVE.exec(b[i]);
      if (la && lb && la[1] === lb[1] && !/^\t+attr +\d+: raw value: 0$/.test(a[i])) {
        live++;
        continue;
      }
      if (la && lb && la[1] === lb[1]) continue;
      assert.equal(a[i], b[i], `line ${i} of the device listing`);
    }
    assert.ok(live >= 4, `${live} live raw values`);
    assert.match(
      theirs.stdout.toString(),
      /Backend description string: 127\.0\.0\.1 iiokit emulated context/,
    );
  });

  it('iio_attr writes go through and are read back; bad values get EINVAL', async () => {
    let r = await runAsync('iio_attr', [
      '-u',
      uri,
      '-c',
      'ad7606-emu',
      'voltage3',
      'waveform',
      'triangle',
    ]);
    assert.equal(r.status, 0, r.stderr);
    r = await runAsync('iio_attr', ['-u', uri, '-c', 'ad7606-emu', 'voltage3', 'waveform']);
    assert.equal(r.stdout.toString().trim(), 'triangle');
    assert.equal(
      await ctx.findDevice('ad7606-emu')!.findChannel('voltage3')!.readAttr('waveform'),
      'triangle',
    );
    r = await runAsync('iio_attr', [
      '-u',
      uri,
      '-c',
      'ad7606-emu',
      'voltage3',
      'waveform',
      'bogus',
    ]);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout.toString() + r.stderr, /Invalid argument \(22\)/);
    r = await runAsync('iio_attr', ['-u', uri, '-d', 'ad7606-emu', 'sampling_frequency', '500']);
    assert.equal(r.status, 0, r.stderr);
    r = await runAsync('iio_attr', ['-u', uri, '-d', 'ad7606-emu', 'sampling_frequency']);
    assert.equal(r.stdout.toString().trim(), '500');
    r = await runAsync('iio_attr', ['-u', uri, '-d', 'ad7606-emu', 'sampling_frequency', '1234']);
    assert.notEqual(r.status, 0);
    r = await runAsync('iio_attr', ['-u', uri, '-c', 'ad7606-emu', 'voltage0', 'raw', '5']);
    assert.notEqual(r.status, 0, 'an ADC input raw is read-only');
    assert.match(r.stdout.toString() + r.stderr, /Permission denied \(13\)/);
    // Registers, through debugfs direct_reg_access as libiio 0.24's iio_reg does it.
    r = await runAsync('iio_reg', ['-u', uri, 'ad7606-emu', '0x10', '0x5a']);
    assert.equal(r.status, 0, r.stderr);
    r = await runAsync('iio_reg', ['-u', uri, 'ad7606-emu', '0x10']);
    assert.equal(r.stdout.toString().trim(), '0x5a');
    assert.equal(await ctx.findDevice('ad7606-emu')!.readRegister(0x10), 0x5a);
  });

  it('iio_readdev gets well-formed scans at the configured rate', async () => {
    const adc = ctx.findDevice('ad7606-emu')!;
    await adc.writeAttr('sampling_frequency', 2000);
    await adc.findChannel('voltage1')!.writeAttr('waveform', 'ramp');
    const r = await runAsync('iio_readdev', [
      '-u',
      uri,
      '-s',
      '3000',
      'ad7606-emu',
      'voltage1',
      'timestamp',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.length, 3000 * 16, 'voltage1 (2 bytes) + padding + timestamp (8 bytes)');
    const s = scans16(r.stdout);
    const contiguous = checkRamp(s, 500000);
    assert.ok(contiguous >= 2990, `${contiguous} of 2999 scan pairs one 2 kHz period apart`);
  });

  it('iio_readdev with a trigger samples at the trigger rate', async () => {
    const adc = ctx.findDevice('ad7606-emu')!;
    await adc.findChannel('voltage1')!.writeAttr('waveform', 'ramp');
    // iio_readdev -t sets the trigger's sampling_frequency to 100 Hz itself.
    const r = await runAsync('iio_readdev', [
      '-u',
      uri,
      '-t',
      'emu-trig0',
      '-b',
      '50',
      '-s',
      '150',
      'ad7606-emu',
      'voltage1',
      'timestamp',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const s = scans16(r.stdout);
    assert.equal(s.length, 150);
    assert.ok(checkRamp(s, 10_000_000) >= 145);
    assert.equal((await adc.getTrigger())?.name, 'emu-trig0');
    await adc.setTrigger(null);
  });

  it('iio_writedev pushes into the DAC and iio_readdev reads it back from the ADC', async () => {
    const adc = ctx.findDevice('ad7606-emu')!;
    await adc.writeAttr('sampling_frequency', 1000);
    const n = 700;
    const pattern = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) {
      pattern.writeInt16LE(((i * 37) % 20000) - 10000, i * 4);
      pattern.writeInt16LE(-i, i * 4 + 2);
    }
    const reading = runAsync('iio_readdev', [
      '-u',
      uri,
      '-s',
      '2500',
      'ad7606-emu',
      'voltage0',
      'voltage1',
    ]);
    await new Promise((r) => setTimeout(r, 400));
    const w = await runAsync(
      'iio_writedev',
      ['-u', uri, '-b', '100', '-s', String(n), 'ad5689-emu', 'voltage0', 'voltage1'],
      { input: pattern },
    );
    assert.equal(w.status, 0, w.stderr);
    const r = await reading;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.length, 2500 * 4);
    assert.ok(r.stdout.indexOf(pattern) >= 0, 'the ADC captured exactly what the DAC played');
  });

  it('two iio_readdev on different channels of one device both get correct data', async () => {
    await twoReaders(ctx, uri);
  });

  it('--whole-scan (demux: false): readers get the whole scan with the union mask', async () => {
    // Not through iio_readdev: libiio 0.24's writes a block raw when the union scan is as
    // long as its own (v0+ts vs v2+ts: 16 bytes each), printing another channel's bytes.
    /** The mask a reader of voltage0 is sent while another client has voltage1 open. */
    const maskSeen = async (demux: boolean): Promise<string> => {
      const srv = await serveContext(ctx, { port: 0, demux });
      const other = connect({ port: srv.port, host: '127.0.0.1' });
      try {
        await new Promise<void>((res, rej) => {
          other.once('error', rej);
          other.write('OPEN iio:device0 16 00000002\r\n');
          other.once('data', () => res());
        });
        const r = await converse(
          srv.port,
          'OPEN iio:device0 16 00000001\r\nREADBUF iio:device0 64\r\n',
          300,
          5000,
        );
        const text = r.reply.toString('latin1');
        const m = /^0\n\d+\n([0-9a-f]{8})\n/.exec(text);
        assert.ok(m, JSON.stringify(text.slice(0, 40)));
        return m[1];
      } finally {
        other.destroy();
        await srv.close();
      }
    };
    assert.equal(await maskSeen(false), '00000003');
    assert.equal(await maskSeen(true), '00000001');
  });

  it('a reader that stops reading loses its own blocks, never the others', async () => {
    const small = await serveContext(ctx, { port: 0, queueBytes: 64 * 1024 });
    try {
      const adc = ctx.findDevice('ad7606-emu')!;
      await adc.writeAttr('sampling_frequency', 200000);
      await adc.findChannel('voltage0')!.writeAttr('waveform', 'ramp');
      // A reader of every channel that never reads its socket.
      const stuck = connect({ port: small.port, host: '127.0.0.1' });
      stuck.on('error', () => undefined);
      stuck.write('OPEN iio:device0 4096 0000001f\r\nREADBUF iio:device0 4000000000\r\n');
      stuck.pause();
      await new Promise((r) => setTimeout(r, 300));
      const r = await runAsync('iio_readdev', [
        '-u',
        `ip:127.0.0.1:${small.port}`,
        '-b',
        '20000',
        '-s',
        '1200000',
        'ad7606-emu',
        'voltage0',
        'timestamp',
      ]);
      assert.equal(r.status, 0, r.stderr);
      const s = scans16(r.stdout);
      assert.equal(s.length, 1200000);
      assert.ok(checkRamp(s, 5000) >= 1199000, 'the live reader got a continuous stream');
      const stats = small.stats();
      assert.ok(stats.droppedScans > 0, 'the stuck reader dropped scans');
      const mine = stats.clients.flatMap((c) => c.streams).find((x) => x.channels.length === 5);
      assert.ok(mine && mine.droppedScans > 0, JSON.stringify(stats));
      stuck.destroy();
    } finally {
      await small.close();
      await ctx.findDevice('ad7606-emu')!.writeAttr('sampling_frequency', 1000);
    }
  });

  it('refuses peers outside the allow-list and accepts those in it', async function () {
    requirePeer(this, PEERS.externalIPv4);
    const external = externalIPv4();
    const logs: string[] = [];
    const open = await serveContext(ctx, { port: 0, bind: '0.0.0.0', log: (m) => logs.push(m) });
    try {
      const local = await converse(open.port, 'VERSION\r\n', 300, 2000);
      assert.equal(local.reply.toString(), '0.24.iiokit \n', 'loopback is always served');
      const fromOutside = await new Promise<string>((resolve) => {
        const s = connect({ port: open.port, host: external!, localAddress: external });
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('error', () => resolve(got));
        s.on('close', () => resolve(got));
        s.write('VERSION\r\n');
      });
      assert.equal(fromOutside, '', 'a non-loopback peer is refused without an allow entry');
      assert.ok(open.stats().refused >= 1);
      assert.ok(logs.some((l) => /not in the allow-list/.test(l)));
    } finally {
      await open.close();
    }
    const allowed = await serveContext(ctx, { port: 0, allow: [`${external}/32`] });
    try {
      const reply = await new Promise<string>((resolve) => {
        const s = connect({ port: allowed.port, host: external!, localAddress: external });
        let got = '';
        s.on('data', (d) => {
          got += d.toString();
          if (got.endsWith('\n')) s.destroy();
        });
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
        s.write('VERSION\r\n');
      });
      assert.equal(reply, '0.24.iiokit \n');
    } finally {
      await allowed.close();
    }
  });
});

describe('iiokit serve (the command)', function () {
  this.timeout(60000);
  const BIN = join(__dirname, '../../../bin/iiokit.js');

  it('serves until SIGINT, then reports what it did', async function () {
    requirePeer(this, PEERS.iioInfo);
    const child = spawn(process.execPath, [BIN, 'serve', '-u', 'emu:', '-p', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const uri = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no start line: ${err}`)), 20000);
      child.stderr.on('data', () => {
        const m = /serving emu: at (ip:127\.0\.0\.1:\d+) \(loopback only\)/.exec(err);
        if (m) {
          clearTimeout(t);
          resolve(m[1]);
        }
      });
    });
    const r = await runAsync('iio_info', ['-u', uri]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.toString(), /iio:device1: ad5689-emu/);
    const exit = new Promise<number | null>((res) => child.on('close', res));
    child.kill('SIGINT');
    assert.equal(await exit, 0);
    assert.match(err, /stopped after [1-9]\d* connections \(0 refused\), 0 scans dropped/);
  });

  it('refuses a bad allow entry and a taken port with a clear message', async () => {
    let r = await runAsync(process.execPath, [
      BIN,
      'serve',
      '-u',
      'emu:',
      '-p',
      '0',
      '--allow',
      '10.0.0.0/33',
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad --allow entry "10\.0\.0\.0\/33"/);
    const ctx = await createContext('emu:');
    const taken = await serveContext(ctx, { port: 0 });
    try {
      r = await runAsync(process.execPath, [BIN, 'serve', '-u', 'emu:', '-p', String(taken.port)]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, new RegExp(`port ${taken.port} is already in use`));
    } finally {
      await taken.close();
      await ctx.close();
    }
  });
});
