/**
 * libiio main's (1.0) clients through our server in this process, over the binary
 * protocol: against libiio main's iiod serving the same XML (iio_info, iio_attr reads),
 * and against the emulated context (writes read back, streams, registers, events).
 * Evidence of the protocol: a tap in front of each server (every connection switched to
 * binary) and our server's stats (`binary`, each client's `protocol`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext, serveContext, type Context, type ServerHandle } from '../../src';
import { externalIPv4, libiioMain, PEERS, requirePeer, type LibiioMain } from '../helpers/peers';
import { startMainIiod } from './helpers/iiod';
import { BinaryConversation, header } from './helpers/binary-client';
import { checkTwoReaders, runAsync, twoRamps, type ToolResult } from './server-helpers';
import { everyConnectionBinary, startWireTap, type WireTap } from './helpers/wire-tap';

const FIXTURES = join(__dirname, '../../../test/fixtures/xml');

/** libiio main's enum iiod_opcode (iiod-responder.h), the ones these tests send by hand. */
const OPS = { CREATE_EVSTREAM: 26, FREE_EVSTREAM: 27, READ_EVENT: 28 };

/** The line naming the server's build, which differs (iiod's emu: `0.0 emu-v1`, ours). */
function sameOutput(text: string): string {
  return text.replace(/^Backend version: .*$/m, 'Backend version: (server)');
}

function tool(main: LibiioMain, name: string, args: readonly string[], input?: Buffer) {
  return runAsync(join(main.dir, 'bin', name), args, { env: main.env, input, timeoutMs: 60000 });
}

describe("libiio main's clients over the binary protocol: iiokit serve = libiio main's iiod (XML)", function () {
  this.timeout(120000);
  let main: LibiioMain;

  before(function () {
    requirePeer(this, PEERS.iiodMain);
    main = libiioMain()!;
  });

  for (const [fixture, attrs] of [
    ['adxl345.xml', true],
    ['ad9081.xml', true],
    ['adrv9002.xml', true],
    ['pluto.xml', true],
  ] as const) {
    it(`iio_info${attrs ? ' and iio_attr' : ''} print the same for ${fixture}`, async () => {
      const file = join(FIXTURES, fixture);
      const ctx = await createContext(`xml:${file}`);
      const ours = await serveContext(ctx, { port: 0 });
      const theirs = await startMainIiod(main, `emu:${file}`);
      const tapOurs = await startWireTap(ours.port);
      const tapTheirs = await startWireTap(theirs.port);
      try {
        const run = async (name: string, args: string[]): Promise<[ToolResult, ToolResult]> => {
          const t = await tool(main, name, ['-u', tapTheirs.uri, ...args]);
          const o = await tool(main, name, ['-u', tapOurs.uri, ...args]);
          return [t, o];
        };
        const [t, o] = await run('iio_info', []);
        assert.equal(t.status, 0, t.stderr);
        assert.equal(sameOutput(o.stdout.toString()), sameOutput(t.stdout.toString()));
        assert.equal(o.stderr, t.stderr);
        const dev =
          ctx.devices.find((d) => d.channels.length && d.debugAttrs.length) ?? ctx.devices[0];
        const name = dev.name ?? dev.id;
        const ch = dev.channels[0];
        for (const args of [
          ...(attrs ? [['-d', name]] : []),
          ...(attrs ? [['-D', name]] : []),
          ['-B', name],
          ...(ch
            ? [
                ['-c', name, ch.id],
                ['-c', name, ch.id, ch.attrs[0]?.name ?? 'raw'],
              ]
            : []),
          ['-d', name, 'no_such_attribute'],
        ]) {
          const [ta, oa] = await run('iio_attr', args);
          assert.equal(oa.status, ta.status, `iio_attr ${args.join(' ')}: ${oa.stderr}`);
          assert.equal(oa.stdout.toString(), ta.stdout.toString(), `iio_attr ${args.join(' ')}`);
          assert.equal(oa.stderr, ta.stderr, `iio_attr ${args.join(' ')}`);
        }
        assert.equal(everyConnectionBinary(tapTheirs), null);
        assert.equal(everyConnectionBinary(tapOurs), null);
        assert.equal(ours.stats().binary, tapOurs.connections().length);
      } finally {
        await tapOurs.close();
        await tapTheirs.close();
        await ours.close();
        await theirs.stop();
        await ctx.close();
      }
    });
  }
});

describe("a context larger than libiio main's client reads plain (64 KiB): PRINT in zstd", function () {
  this.timeout(120000);

  it("iio_info prints through our server what it prints through libiio main's iiod", async function () {
    requirePeer(this, PEERS.iiodMain);
    const main = libiioMain()!;
    // ad9081.xml's devices twice, the copies renumbered: about 120 KiB of XML.
    const base = readFileSync(join(FIXTURES, 'ad9081.xml'), 'utf8');
    const devices = base.slice(base.indexOf('<device '), base.lastIndexOf('</context>'));
    const copies = devices
      .replace(/id="iio:device(\d+)"/g, (_, n: string) => `id="iio:device${Number(n) + 10}"`)
      .replace(/id="iio_sysfs_trigger"/, 'id="iio_sysfs_trigger2"');
    const file = join(mkdtempSync(join(tmpdir(), 'iiokit-big-')), 'big.xml');
    writeFileSync(file, base.replace('</context>', `${copies}</context>`));
    const ctx = await createContext(`xml:${file}`);
    assert.ok(Buffer.byteLength(ctx.toXml()) > 0x10000, 'larger than the client reads plain');
    const ours = await serveContext(ctx, { port: 0 });
    const theirs = await startMainIiod(main, `emu:${file}`);
    const tap = await startWireTap(ours.port);
    try {
      const t = await tool(main, 'iio_info', ['-u', theirs.uri]);
      const o = await tool(main, 'iio_info', ['-u', tap.uri]);
      assert.equal(t.status, 0, t.stderr);
      assert.equal(o.status, 0, o.stderr);
      assert.match(o.stdout.toString(), /IIO context has 18 devices/);
      assert.equal(sameOutput(o.stdout.toString()), sameOutput(t.stdout.toString()));
      assert.equal(everyConnectionBinary(tap), null);
      // The PRINT answer (after `0\n` and TIMEOUT's 8-byte answer) is a zstd frame.
      const server = tap.connections()[0].fromServer;
      assert.deepEqual(
        server.subarray(2 + 8 + 8, 2 + 8 + 8 + 4),
        Buffer.from([0x28, 0xb5, 0x2f, 0xfd]),
      );
    } finally {
      await tap.close();
      await ours.close();
      await theirs.stop();
      await ctx.close();
    }
  });
});

describe("libiio main's clients over the binary protocol against the emulated context", function () {
  this.timeout(120000);
  let main: LibiioMain;
  let ctx: Context;
  let server: ServerHandle;
  let tap: WireTap;

  before(async function () {
    requirePeer(this, PEERS.iiodMain);
    main = libiioMain()!;
    ctx = await createContext('emu:');
    server = await serveContext(ctx, { port: 0 });
    tap = await startWireTap(server.port);
  });
  afterEach(() => {
    // Every connection a libiio tool made through the tap spoke binary.
    if (tap.connections().length) assert.equal(everyConnectionBinary(tap), null);
    tap.reset();
  });
  after(async () => {
    await tap?.close();
    await server?.close();
    await ctx?.close();
  });

  const run = (name: string, args: readonly string[], input?: Buffer): Promise<ToolResult> =>
    tool(main, name, ['-u', tap.uri, ...args], input);

  it('iio_attr writes reach the device; a value the device refuses is refused', async () => {
    const adc = ctx.findDevice('ad7606-emu')!;
    const w = await run('iio_attr', ['-d', 'ad7606-emu', 'sampling_frequency', '2000']);
    assert.equal(w.status, 0, w.stderr);
    assert.equal(await adc.readAttr('sampling_frequency'), '2000');
    const c = await run('iio_attr', ['-c', 'ad7606-emu', 'voltage3', 'waveform', 'square']);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(await adc.findChannel('voltage3')!.readAttr('waveform'), 'square');
    // Not in sampling_frequency_available: the emulator says EINVAL, like a driver.
    const bad = await run('iio_attr', ['-d', 'ad7606-emu', 'sampling_frequency', '1234']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /Invalid argument \(22\)/);
    assert.equal(await adc.readAttr('sampling_frequency'), '2000');
  });

  it('iio_attr -e reaches event attributes: reads, writes, and refusals as the device makes them', async () => {
    const dev = ctx.devices.find((d) =>
      d.channels.some((c) => c.eventAttrs.some((a) => a.name === 'thresh_rising_value')),
    )!;
    const ch = dev.channels.find((c) =>
      c.eventAttrs.some((a) => a.name === 'thresh_rising_value'),
    )!;
    const before = await ch.readEventAttr('thresh_rising_value');
    try {
      // a value set on the device is what the client reads through the binary protocol
      await ch.writeEventAttr('thresh_rising_value', 777);
      const r = await run('iio_attr', ['-e', dev.name!, ch.id, 'thresh_rising_value']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(String(r.stdout).trim(), '777');
      // a write from the client reaches the device
      const w = await run('iio_attr', ['-e', dev.name!, ch.id, 'thresh_rising_value', '1234']);
      assert.equal(w.status, 0, w.stderr);
      assert.equal(await ch.readEventAttr('thresh_rising_value'), '1234');
      // out of the channel's range: the emulator says EINVAL, like a driver; nothing changes
      const bad = await run('iio_attr', [
        '-e',
        dev.name!,
        ch.id,
        'thresh_rising_value',
        '99999999',
      ]);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /Invalid argument \(22\)/);
      assert.equal(await ch.readEventAttr('thresh_rising_value'), '1234');
    } finally {
      await ch.writeEventAttr('thresh_rising_value', before);
    }
  });

  it('stats name the protocol of each client while it is connected', async () => {
    const conv = await BinaryConversation.open(server.port);
    const ascii = await BinaryConversation.open(server.port, true);
    try {
      ascii.send(Buffer.from('VERSION\r\n'));
      assert.equal((await ascii.bytes(13)).toString(), '0.24.iiokit \n');
      const stats = server.stats();
      assert.deepEqual(stats.clients.map((c) => c.protocol).sort(), ['ascii', 'binary']);
      assert.ok(stats.binary >= 1);
    } finally {
      conv.close();
      ascii.close();
    }
  });

  it('iio_rwdev reads well-formed scans; two readers of one device each get their channel', async () => {
    await twoRamps(ctx, 10000);
    const [a, b] = await Promise.all([
      run('iio_rwdev', ['-s', '4000', 'ad7606-emu', 'voltage0', 'timestamp']),
      run('iio_rwdev', ['-s', '4000', '-b', '1000', 'ad7606-emu', 'voltage2', 'timestamp']),
    ]);
    checkTwoReaders(a, b, 4000, 10000);
  });

  it('an ASCII reader (libiio 0.24) and a binary one (1.0) share a device, each its channel', async function () {
    requirePeer(this, PEERS.iioInfo);
    await twoRamps(ctx, 20000);
    const [a, b] = await Promise.all([
      runAsync('iio_readdev', [
        '-u',
        `ip:127.0.0.1:${server.port}`,
        '-s',
        '3000',
        'ad7606-emu',
        'voltage0',
        'timestamp',
      ]),
      run('iio_rwdev', ['-s', '3000', '-b', '500', 'ad7606-emu', 'voltage2', 'timestamp']),
    ]);
    checkTwoReaders(a, b, 3000, 20000);
  });

  it('iio_rwdev -w plays into the DAC and iio_rwdev reads it back from the ADC', async () => {
    const adc = ctx.findDevice('ad7606-emu')!;
    await adc.writeAttr('sampling_frequency', 1000);
    const n = 700;
    const pattern = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) {
      pattern.writeInt16LE(((i * 37) % 20000) - 10000, i * 4);
      pattern.writeInt16LE(-i, i * 4 + 2);
    }
    const reading = run('iio_rwdev', ['-s', '2500', 'ad7606-emu', 'voltage0', 'voltage1']);
    await new Promise((r) => setTimeout(r, 400));
    // libiio's stream writes the blocks it filled before the last (7 of 7 here: 700 = 7 × 100).
    const w = await run(
      'iio_rwdev',
      ['-w', '-b', '100', '-s', String(n + 100), 'ad5689-emu'],
      Buffer.concat([pattern, Buffer.alloc(400)]),
    );
    assert.equal(w.status, 0, w.stderr);
    const r = await reading;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.length, 2500 * 4);
    assert.ok(r.stdout.indexOf(pattern) >= 0, 'the ADC captured exactly what the DAC played');
  });

  it('iio_reg writes and reads a register', async () => {
    const w = await run('iio_reg', ['ad7606-emu', '0x10', '0x5a']);
    assert.equal(w.status, 0, w.stderr);
    assert.equal(await ctx.findDevice('ad7606-emu')!.readRegister(0x10), 0x5a);
    const r = await run('iio_reg', ['ad7606-emu', '0x10']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.toString().trim(), '0x5a');
  });

  it('an event stream delivers the accelerometer threshold events, as the kernel encodes them', async () => {
    // libiio main's client cannot do this over ip: (its event I/O is given timeout 0,
    // which now means "do not wait": CREATE_EVSTREAM's first READ_EVENT is cancelled
    // before it is sent, iio_event fails with ETIMEDOUT against any server). So the
    // frames are libiio's, sent by hand: CREATE on 0xffff, READ_EVENT, FREE on id 0.
    const devices = ctx.devices.map((d) => d.id).sort();
    const accel = devices.indexOf(ctx.findDevice('adxl345-emu')!.id);
    const conv = await BinaryConversation.open(server.port);
    try {
      conv.send(header({ clientId: 0xffff, op: OPS.CREATE_EVSTREAM, dev: accel, code: 0 }));
      assert.deepEqual(await conv.response(), {
        clientId: 0xffff,
        op: 0,
        code: 0,
        data: Buffer.alloc(0),
      });
      const events: Array<{ id: bigint; ts: bigint }> = [];
      for (let i = 0; i < 2; i++) {
        conv.send(header({ clientId: 0xffff, op: OPS.READ_EVENT, dev: accel, code: 0 }));
        const r = await conv.response(true, 5000);
        assert.equal(r.clientId, 0xffff);
        assert.equal(r.code, 16, 'struct iio_event: u64 id, s64 timestamp');
        events.push({ id: r.data.readBigUInt64LE(0), ts: r.data.readBigInt64LE(8) });
      }
      // IIO_MOD_EVENT_CODE(IIO_ACCEL = 3, 0, IIO_MOD_X = 1, IIO_EV_TYPE_THRESH = 0, dir):
      // rising = 1, falling = 2 (include/uapi/linux/iio/events.h, types.h).
      const code = (dir: bigint): bigint => (dir << 48n) | (1n << 40n) | (3n << 32n);
      for (const e of events)
        assert.ok([code(1n), code(2n)].includes(e.id), `event 0x${e.id.toString(16)}`);
      assert.ok(events[1].ts > events[0].ts, 'timestamps go forward');
      // Nothing waiting right after an event: a nonblocking read says EAGAIN (11).
      conv.send(header({ clientId: 0xffff, op: OPS.READ_EVENT, dev: accel, code: 1 }));
      assert.equal((await conv.response()).code, -11);
      conv.send(header({ clientId: 0, op: OPS.FREE_EVSTREAM, dev: accel, code: 0xffff }));
      assert.deepEqual(await conv.response(), {
        clientId: 0,
        op: 0,
        code: 0,
        data: Buffer.alloc(0),
      });
      // A device without events refuses the stream at once (the DAC: ENODEV, 19).
      const dac = devices.indexOf(ctx.findDevice('ad5689-emu')!.id);
      conv.send(header({ clientId: 0xfffe, op: OPS.CREATE_EVSTREAM, dev: dac, code: 0 }));
      const refused = await conv.response();
      assert.equal(refused.clientId, 0xfffe);
      assert.ok(refused.code < 0, `CREATE_EVSTREAM on the DAC answered ${refused.code}`);
    } finally {
      conv.close();
    }
  });

  it("libiio main's library from Python (ctypes, as pylibiio): enumerate, attributes, a buffer", async () => {
    const adc = ctx.findDevice('ad7606-emu')!;
    await adc.writeAttr('sampling_frequency', 1000);
    await adc.findChannel('voltage1')!.writeAttr('waveform', 'ramp');
    const r = await runAsync(
      '/usr/bin/python3',
      [
        join(__dirname, '../../../test/network/helpers/libiio1_ctypes.py'),
        tap.uri,
        'ad7606-emu',
        'voltage1',
        'waveform_offset',
        '300',
        '128',
      ],
      { env: main.env, timeoutMs: 60000 },
    );
    assert.equal(r.status, 0, r.stderr + r.stdout.toString());
    const out = r.stdout.toString();
    for (const d of ctx.devices) assert.match(out, new RegExp(`^device ${d.id} ${d.name}$`, 'm'));
    assert.match(out, /^read 0$/m);
    assert.match(out, /^read back 300$/m);
    assert.equal(await adc.findChannel('voltage1')!.readAttr('waveform_offset'), '300');
    const m = /^samples (\d+)\ndata ([0-9a-f]+)$/m.exec(out);
    assert.ok(m, out);
    assert.equal(Number(m[1]), 128);
    // voltage1 alone, a ramp: consecutive values one apart.
    const data = Buffer.from(m[2], 'hex');
    for (let i = 2; i < data.length; i += 2) {
      assert.equal((data.readInt16LE(i) - data.readInt16LE(i - 2)) & 0xffff, 1, `sample ${i / 2}`);
    }
  });
});

describe('the allow-list, in the binary protocol too', function () {
  this.timeout(60000);

  it('a peer outside it is refused before BINARY; one inside it switches to binary', async function () {
    requirePeer(this, PEERS.iiodMain);
    requirePeer(this, PEERS.externalIPv4);
    const main = libiioMain()!;
    const external = externalIPv4()!;
    const ctx = await createContext('emu:');
    try {
      for (const allow of [[], [`${external}/32`]]) {
        const server = await serveContext(ctx, { port: 0, bind: '0.0.0.0', allow });
        try {
          // From the external address to itself: not loopback, so the allow-list decides.
          const r = await tool(main, 'iio_info', ['-u', `ip:${external}:${server.port}`]);
          const stats = server.stats();
          if (allow.length) {
            assert.equal(r.status, 0, r.stderr);
            assert.equal(stats.refused, 0);
            assert.ok(stats.binary >= 1, JSON.stringify(stats));
          } else {
            assert.notEqual(r.status, 0, 'refused');
            assert.ok(stats.refused >= 1);
            assert.equal(stats.binary, 0);
          }
        } finally {
          await server.close();
        }
      }
    } finally {
      await ctx.close();
    }
  });
});
