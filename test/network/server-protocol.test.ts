import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createContext, serveContext, type Context, type ServerHandle } from '../../src';
import { HELP_TEXT, parseLine } from '../../src/server/protocol';
import { PEERS, requirePeer } from '../helpers/peers';
import { converse, prng, runAsync, startIiod } from './server-helpers';

const XML = join(__dirname, '../../../test/fixtures/xml/libiio-adis16488.xml');

/** Words the random lines are made of: the protocol's own vocabulary, plus noise. */
function vocabulary(ctx: Context): string[] {
  const dev = ctx.devices[0];
  const chans = dev.channels.map((c) => c.id);
  const attrs = [...new Set(dev.channels.flatMap((c) => c.attrs.map((a) => a.name)))];
  return [
    ...['READ', 'read', 'WRITE', 'write', 'READBUF', 'WRITEBUF', 'CLOSE', 'GETTRIG', 'settrig'],
    ...['SETTRIG', 'HELP', 'help', 'ZPRINT', 'Read', 'READX', 'CYCLIC', 'cyclic', 'OPEN'],
    ...['INPUT', 'input', 'OUTPUT', 'output', 'DEBUG', 'debug', 'BUFFER', 'buffer', 'Input'],
    ...['BUFFERS_COUNT', 'iio:device0', 'iio:device9', 'adis16488', 'nodev', 'iio:', 'iio:x'],
    ...chans,
    ...chans.map((c) => `${c}x`),
    ...attrs,
    ...['0', '1', '3', '5', '16', '-1', '00000001', '4294967297', 'abc', 'a,b', 'a,', ',', ':'],
    ...['@', '#', 'x.y-z_1', '\u00e9', '\r'],
  ];
}

const SEPARATORS = [' ', ' ', ' ', '  ', '\t', ''];
const ENDINGS = ['\r\n', '\n', ' \r\n', '\t\n'];

function randomLine(rand: () => number, words: string[]): string {
  const n = Math.floor(rand() * 7);
  let s = '';
  for (let i = 0; i < n; i++) {
    if (i) s += SEPARATORS[Math.floor(rand() * SEPARATORS.length)];
    s += words[Math.floor(rand() * words.length)];
  }
  return s + ENDINGS[Math.floor(rand() * ENDINGS.length)];
}

describe('server protocol: the same replies as libiio 0.24 iiod, line for line', function () {
  this.timeout(120000);
  let ctx: Context;
  let ours: ServerHandle;
  let theirs: { port: number; stop(): Promise<void> };

  before(async function () {
    requirePeer(this, PEERS.iiod);
    ctx = await createContext(`xml:${XML}`);
    ours = await serveContext(ctx, { port: 0 });
    theirs = await startIiod(`xml:${XML}`);
  });
  after(async () => {
    await ours?.close();
    await ctx?.close();
    await theirs?.stop();
  });

  /**
   * The replies of both servers to the same bytes. A HELP sent last marks the end of the
   * replies (unless a WRITE swallowed it as data; then the server going quiet does).
   */
  async function both(data: string): Promise<[string, string]> {
    const sent = `${data}\nHELP\r\n`;
    const [a, b] = await Promise.all([
      converse(theirs.port, sent, 3000, 30000, HELP_TEXT),
      converse(ours.port, sent, 3000, 30000, HELP_TEXT),
    ]);
    return [a.reply.toString('latin1'), b.reply.toString('latin1')];
  }

  it('answers hand-picked lines exactly as iiod does', async () => {
    const lines = [
      'HELP\r\n',
      'ZPRINT\r\n',
      'garbage\r\n',
      '\r\n',
      ' VERSION\r\n',
      'Version\n',
      'VERSION\rVERSION\n',
      'BINARY\r\n',
      'READ nodev name\r\n',
      'READ iio:device0 INPUT nochannel raw\r\n',
      'READ iio:device0 OUTPUT accel_x raw\r\n',
      'READ iio:device0 INPUT accel_x raw\r\n',
      'READ adis16488 INPUT accel_x scale\r\n',
      'READ iio:device0 INPUT\r\n',
      'READ iio:device0 sampling_frequency extra\r\n',
      'READBUF iio:device0 100\r\n',
      'READBUF nodev 100\r\n',
      'WRITEBUF iio:device0 16\r\n',
      'CLOSE iio:device0\r\n',
      'CLOSE nodev\r\n',
      'GETTRIG iio:device0\r\n',
      'GETTRIG\r\n',
      'SETTRIG iio:device0\r\n',
      'SETTRIG iio:device0 foo\r\n',
      'SETTRIG iio:device0 iio:device0\r\n',
      'WRITE iio:device0 INPUT accel_x raw 3\r\nabc',
      'WRITE iio:device0 INPUT nochannel raw 2\r\nxy',
      'WRITE nodev INPUT accel_x raw 2\r\nxy',
      'WRITE nodev raw 2\r\n',
      'WRITE iio:device0 foo 99999999999\r\n',
      'WRITE iio:device0 foo -5\r\n',
      'CYCLIC\r\n',
      'READ @ name\r\n',
      'READ iio:device0 \u00e9\r\n',
      'a\nb\nc\n',
    ];
    const replies = await Promise.all(lines.map((l) => both(l)));
    lines.forEach((l, i) =>
      assert.equal(replies[i][1], replies[i][0], `reply to ${JSON.stringify(l)}`),
    );
  });

  it('answers 2000 random lines of the protocol vocabulary exactly as iiod does', async () => {
    const rand = prng(0x1105);
    const words = vocabulary(ctx);
    const dev = ctx.devices[0];
    const known = new Set([
      ...dev.attrs.map((a) => a.name),
      ...dev.channels.flatMap((c) => c.attrs.map((a) => a.name)),
    ]);
    let compared = 0;
    for (let conn = 0; conn < 20; conn++) {
      let data = '';
      for (let inConn = 0; inConn < 100;) {
        const line = randomLine(rand, words);
        const cmd = parseLine(line, {
          findDevice: (w) => ctx.devices.find((d) => d.id === w || d.name === w) ?? null,
          findChannel: (d, w, out) =>
            d.channels.find((c) => c.isOutput === out && (c.id === w || c.name === w)) ?? null,
        });
        // Where iiod's answer depends on its backend, not on the protocol: an XML context
        // cannot open buffers, set timeouts or buffer counts, and answers -ENOSYS even for
        // attributes that do not exist (ours answers -ENOENT, as iiod over local: does).
        if (['open', 'timeout', 'buffers_count', 'version', 'print', 'exit'].includes(cmd.op)) {
          continue;
        }
        if ((cmd.op === 'read' || cmd.op === 'write') && (!cmd.attr || !known.has(cmd.attr))) {
          continue;
        }
        data += line;
        compared++;
        inConn++;
      }
      const [a, b] = await both(data);
      assert.equal(b, a, `connection ${conn}: replies differ for\n${JSON.stringify(data)}`);
    }
    assert.ok(compared >= 2000, `${compared} lines compared`);
  });

  it('PRINT gives XML libiio parses into the same context', async () => {
    const r = await runAsync('iio_info', ['-u', `ip:127.0.0.1:${ours.port}`]);
    const x = await runAsync('iio_info', ['-x', XML]);
    assert.equal(r.status, 0, r.stderr);
    const devices = (s: string): string =>
      s.slice(s.indexOf('IIO context has 1 devices')).replace(/ERROR: [^\n]*/g, 'ERR');
    assert.equal(devices(r.stdout.toString()), devices(x.stdout.toString()));
  });
});

describe('server robustness: garbage never crashes it', function () {
  this.timeout(300000);
  let ctx: Context;
  let server: ServerHandle;

  before(async () => {
    ctx = await createContext('emu:');
    server = await serveContext(ctx, { port: 0 });
  });
  after(async () => {
    await server?.close();
    await ctx?.close();
  });

  /** A well-formed client still gets a well-formed answer. */
  async function stillAnswers(): Promise<void> {
    const { reply } = await converse(
      server.port,
      'VERSION\r\nREAD iio:device0 sampling_frequency\r\n',
    );
    assert.match(reply.toString(), /^0\.24\.iiokit \n\d+\n\d+\0\n$/);
  }

  it('survives 10,000 random and mutated command lines', async () => {
    const rand = prng(0xf022);
    const words = [
      ...vocabulary(ctx),
      'iio:device1',
      'iio:device2',
      'ad7606-emu',
      'voltage0',
      'waveform',
      'sampling_frequency',
    ];
    const valid = [
      'READ iio:device0 sampling_frequency\r\n',
      'READ iio:device0 INPUT voltage0 raw\r\n',
      'WRITE iio:device0 INPUT voltage0 waveform 5\r\nsine\0',
      'OPEN iio:device0 64 0000001f\r\n',
      'READBUF iio:device0 1024\r\n',
      'CLOSE iio:device0\r\n',
      'OPEN iio:device1 32 00000003\r\n',
      'WRITEBUF iio:device1 128\r\n',
      'GETTRIG iio:device0\r\n',
      'SETTRIG iio:device0 emu-trig0\r\n',
      'SET iio:device0 BUFFERS_COUNT 3\r\n',
      'PRINT\r\n',
    ];
    const mutate = (s: string): string => {
      const ops = Math.floor(rand() * 4) + 1;
      let t = s;
      for (let i = 0; i < ops; i++) {
        const p = Math.floor(rand() * (t.length + 1));
        const r = rand();
        if (r < 0.3) t = t.slice(0, p) + t.slice(p + 1);
        else if (r < 0.6)
          t = t.slice(0, p) + String.fromCharCode(Math.floor(rand() * 256)) + t.slice(p);
        else if (r < 0.8) t = t.slice(0, p) + String(Math.floor(rand() * 1e6) - 1000) + t.slice(p);
        else
          t =
            t.slice(0, p) +
            t
              .slice(p, p + 8)
              .split('')
              .reverse()
              .join('') +
            t.slice(p + 8);
      }
      return t;
    };
    let lines = 0;
    let connections = 0;
    // Each session opens with a command and a line of garbage: whatever the fuzz that
    // follows does, those two are answered as iiod answers them (the first describe checks
    // iiod's answers), so the server read the session and refused the garbage.
    const OPENING = 'VERSION\r\ngarbage\r\n';
    const ANSWERED = '0.24.iiokit \n-22\n';
    while (lines < 10000) {
      let data = OPENING;
      for (let i = 0; i < 250; i++, lines++) {
        const r = rand();
        if (r < 0.4) data += randomLine(rand, words);
        else if (r < 0.8) data += mutate(valid[Math.floor(rand() * valid.length)]);
        else if (r < 0.9) data += valid[Math.floor(rand() * valid.length)];
        else {
          // raw bytes, NULs, an overlong line now and then
          const n = rand() < 0.05 ? 20000 : Math.floor(rand() * 64);
          for (let k = 0; k < n; k++) data += String.fromCharCode(Math.floor(rand() * 256));
          data += '\n';
        }
      }
      const { reply } = await converse(
        server.port,
        Buffer.from(data, 'latin1'),
        150,
        10000,
        undefined,
        5000,
      );
      connections++;
      const text = reply.toString('latin1');
      assert.ok(text.startsWith(ANSWERED), `connection ${connections}: ${text.slice(0, 80)}`);
      // And the server still serves the next client.
      await stillAnswers();
    }
    assert.equal(connections, 40);
    // Every fuzz connection was released: nothing left streaming.
    for (let i = 0; i < 50 && server.stats().connections > 0; i++) {
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(server.stats().connections, 0);
    assert.equal(server.stats().streams.length, 0);
  });

  it('still serves libiio after the fuzz: iio_info lists the context', async function () {
    requirePeer(this, PEERS.iioInfo);
    const r = await runAsync('iio_info', ['-u', `ip:127.0.0.1:${server.port}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.toString(), /ad7606-emu/);
  });

  it('survives huge lengths, half-sent WRITEBUF/WRITE and abrupt disconnects', async () => {
    const cases = [
      'WRITE iio:device0 INPUT voltage0 waveform 1000000\r\nsin',
      'OPEN iio:device1 64 00000003\r\nWRITEBUF iio:device1 4294967295\r\n' + 'x'.repeat(1000),
      'OPEN iio:device1 64 00000003\r\nWRITEBUF iio:device1 256\r\nabc',
      'OPEN iio:device0 64 0000001f\r\nREADBUF iio:device0 4294967295\r\n',
      'OPEN iio:device0 99999999999999 0000001f\r\n',
      'READBUF iio:device0 99999999999999999999999\r\n',
      'WRITE iio:device0 sampling_frequency 18446744073709551616\r\n',
      'X'.repeat(100000),
      '\0'.repeat(5000) + '\n',
    ];
    for (const c of cases) {
      // hang up after a few milliseconds, mid-command
      await converse(server.port, Buffer.from(c, 'latin1'), 50, 1000);
      await stillAnswers();
    }
    // A client that vanishes mid-READBUF while another keeps reading.
    const a = connect({ port: server.port, host: '127.0.0.1' });
    a.on('error', () => undefined);
    a.write('OPEN iio:device0 64 0000001f\r\nREADBUF iio:device0 1000000\r\n');
    await new Promise((r) => setTimeout(r, 200));
    a.resetAndDestroy();
    await stillAnswers();
  });
});
