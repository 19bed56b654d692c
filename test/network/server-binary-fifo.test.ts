/**
 * libiio main's (1.0) clients over the binary protocol, through `iiokit serve -u local:`
 * and through libiio main's own iiod, both serving the same FIFO-backed fake devices in
 * one private mount namespace: outputs must be the same, byte for byte, and a tap in
 * front of each server shows that every connection switched to the binary protocol.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { libiioMain, PEERS, requirePeer, type LibiioMain } from '../helpers/peers';
import { COUNTER_SOURCE, startFakePair, type FakePair } from './helpers/iiod';
import { runAsync, type ToolResult } from './server-helpers';
import { everyConnectionBinary, startWireTap, type WireTap } from './helpers/wire-tap';

const IN = ['in_voltage0', 'in_voltage1', 'in_voltage2', 'in_voltage3'];
const CTYPES = join(__dirname, '../../../test/network/helpers/libiio1_ctypes.py');

/** The lines that name the server's build (iiod's version and ours), which may differ. */
function sameOutput(text: string): string {
  return text.replace(/^Backend version: .*$/m, 'Backend version: (server)');
}

describe("libiio main's clients over the binary protocol: iiokit serve = libiio main's iiod (FIFO devices)", function () {
  this.timeout(180000);
  let main: LibiioMain;
  let pair: FakePair;
  let tapIiod: WireTap;
  let tapOurs: WireTap;
  const sink = join(mkdtempSync(join(tmpdir(), 'iiokit-bin-dac-')), 'dac.bin');

  before(async function () {
    requirePeer(this, PEERS.iiodMain);
    requirePeer(this, PEERS.root);
    main = libiioMain()!;
    pair = await startFakePair(
      [
        {
          name: 'fakeadc',
          channels: IN,
          source: COUNTER_SOURCE,
          attrs: { sampling_frequency: '1000' },
          readOnlyAttrs: { calibration: '42' },
        },
        { name: 'fakedac', channels: ['out_voltage0', 'out_voltage1'], sink },
      ],
      main,
    );
    tapIiod = await startWireTap(pair.iiod.port);
    tapOurs = await startWireTap(pair.ours.port);
  });
  after(async () => {
    await tapIiod?.close();
    await tapOurs?.close();
    await pair?.stop();
  });

  /** Runs a libiio main tool against one server (through its tap). */
  function tool(
    name: string,
    uri: string,
    args: readonly string[],
    input?: Buffer,
  ): Promise<ToolResult> {
    return runAsync(join(main.dir, 'bin', name), ['-u', uri, ...args], {
      env: main.env,
      input,
      timeoutMs: 60000,
    });
  }

  /** The same tool against both servers, one after the other; both taps must show binary. */
  async function both(
    name: string,
    args: readonly string[],
    input?: Buffer,
  ): Promise<[ToolResult, ToolResult]> {
    tapIiod.reset();
    tapOurs.reset();
    const theirs = await tool(name, tapIiod.uri, args, input);
    const ours = await tool(name, tapOurs.uri, args, input);
    assert.equal(everyConnectionBinary(tapIiod), null, "libiio main's iiod spoke binary");
    assert.equal(everyConnectionBinary(tapOurs), null, 'our server spoke binary');
    return [theirs, ours];
  }

  it('iio_info prints the same context', async () => {
    const [theirs, ours] = await both('iio_info', []);
    assert.equal(theirs.status, 0, theirs.stderr);
    assert.equal(ours.status, 0, ours.stderr);
    assert.match(theirs.stdout.toString(), /fakeadc/);
    assert.equal(sameOutput(ours.stdout.toString()), sameOutput(theirs.stdout.toString()));
    assert.equal(ours.stderr, theirs.stderr);
  });

  it('iio_attr reads every kind of attribute the same way', async () => {
    for (const args of [
      ['-d', 'fakeadc'],
      ['-c', 'fakeadc'],
      ['-c', 'fakeadc', 'voltage1', 'raw'],
      ['-d', 'fakeadc', 'sampling_frequency'],
      ['-B', 'fakeadc'],
      ['-B', 'fakeadc', 'length'],
      ['-d', 'fakedac', 'nosuchattr'],
    ]) {
      const [theirs, ours] = await both('iio_attr', args);
      assert.equal(ours.status, theirs.status, `iio_attr ${args.join(' ')}: ${ours.stderr}`);
      assert.equal(ours.stdout.toString(), theirs.stdout.toString(), `iio_attr ${args.join(' ')}`);
      assert.equal(ours.stderr, theirs.stderr, `iio_attr ${args.join(' ')}`);
    }
  });

  it('iio_attr writes reach the files, and a refused write reports the same error', async () => {
    // Each server's write, read back through the other: the same sysfs file.
    for (const [uri, other, value] of [
      [tapIiod.uri, tapOurs.uri, '1234'],
      [tapOurs.uri, tapIiod.uri, '5678'],
    ]) {
      const w = await tool('iio_attr', uri, ['-c', 'fakeadc', 'voltage2', 'raw', value]);
      assert.equal(w.status, 0, w.stderr);
      const r = await tool('iio_attr', other, ['-c', 'fakeadc', 'voltage2', 'raw']);
      assert.equal(r.stdout.toString().trim(), value);
    }
    // A read-only bind mount: EROFS from the kernel, through either server.
    const [theirs, ours] = await both('iio_attr', ['-d', 'fakeadc', 'calibration', '7']);
    assert.notEqual(theirs.status, 0);
    assert.match(theirs.stderr, /Read-only file system/);
    assert.equal(ours.status, theirs.status);
    assert.equal(ours.stderr, theirs.stderr);
    assert.equal(ours.stdout.toString(), theirs.stdout.toString());
  });

  it('iio_rwdev reads the same bytes', async () => {
    for (const args of [
      ['-b', '256', '-s', '1024', 'fakeadc'],
      ['-b', '100', '-s', '700', 'fakeadc', 'voltage1', 'voltage3'],
    ]) {
      const [theirs, ours] = await both('iio_rwdev', args);
      assert.equal(theirs.status, 0, theirs.stderr);
      assert.equal(ours.status, 0, ours.stderr);
      const scans = Number(args[3]);
      const perScan = args.length > 5 ? 2 : 4;
      assert.equal(theirs.stdout.length, scans * perScan * 2);
      assert.ok(ours.stdout.equals(theirs.stdout), `iio_rwdev ${args.join(' ')}: bytes differ`);
    }
  });

  it('iio_rwdev -w writes the same bytes to the device', async () => {
    const scans = 1024;
    const data = Buffer.alloc(scans * 4);
    for (let i = 0; i < scans * 2; i++) data.writeInt16LE(((i * 7919) % 65536) - 32768, i * 2);
    /** What reached the FIFO's reader for one server's write. */
    const written = async (uri: string): Promise<Buffer> => {
      truncateSync(sink, 0);
      const w = await tool(
        'iio_rwdev',
        uri,
        ['-w', '-b', '128', '-s', String(scans), 'fakedac'],
        data,
      );
      assert.equal(w.status, 0, w.stderr);
      // The FIFO's reader appends at its own pace: wait until the file stops growing.
      let size = -1;
      for (let i = 0; i < 100 && statSync(sink).size !== size; i++) {
        size = statSync(sink).size;
        await new Promise((r) => setTimeout(r, 100));
      }
      return readFileSync(sink);
    };
    tapIiod.reset();
    tapOurs.reset();
    const theirs = await written(tapIiod.uri);
    const ours = await written(tapOurs.uri);
    assert.equal(everyConnectionBinary(tapIiod), null);
    assert.equal(everyConnectionBinary(tapOurs), null);
    assert.ok(theirs.length > 0, 'iiod wrote something');
    assert.ok(data.subarray(0, theirs.length).equals(theirs), 'iiod wrote the input');
    assert.ok(ours.equals(theirs), `ours wrote ${ours.length} bytes, iiod ${theirs.length}`);
  });

  it("libiio main's library from Python (ctypes, as pylibiio): enumerate, attributes, a buffer", async () => {
    const py = (uri: string): Promise<ToolResult> =>
      runAsync('/usr/bin/python3', [CTYPES, uri, 'fakeadc', 'voltage0', 'raw', '321', '256'], {
        env: main.env,
        timeoutMs: 60000,
      });
    tapIiod.reset();
    tapOurs.reset();
    const theirs = await py(tapIiod.uri);
    const ours = await py(tapOurs.uri);
    assert.equal(everyConnectionBinary(tapIiod), null);
    assert.equal(everyConnectionBinary(tapOurs), null);
    assert.equal(theirs.status, 0, theirs.stderr);
    assert.equal(ours.status, 0, ours.stderr);
    const out = ours.stdout.toString();
    assert.match(out, /^device iio:device0 fakeadc$/m);
    assert.match(out, /^read back 321$/m);
    // voltage0 alone: the counter's values (4s + 0) for s = 0, 1, 2...
    const first = Buffer.alloc(64);
    for (let s = 0; s < 32; s++) first.writeUInt16LE(4 * s, s * 2);
    assert.match(out, new RegExp(`^samples 256\\ndata ${first.toString('hex')}$`, 'm'));
    // iiod's run wrote 321 first: ours read it (the same file), the rest is the same.
    assert.match(theirs.stdout.toString(), /^read 100$/m);
    assert.match(out, /^read 321$/m);
    const rest = (t: string): string => t.replace(/^read \d+$/m, 'read');
    assert.equal(rest(out), rest(theirs.stdout.toString()));
  });
});
