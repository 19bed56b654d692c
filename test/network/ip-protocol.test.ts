import assert from 'node:assert/strict';
import { createContext, IioError, type Context } from '../../src';
import type { IiodBackend } from '../../src/backends/iiod';
import { startScriptedServer, type ScriptedServer } from './helpers/fake-server';

/** Scans of the scripted device: channel c of scan s holds 100*s + c. */
function scans(from: number, count: number, chans: number[]): Buffer {
  const b = Buffer.alloc(count * chans.length * 2);
  for (let s = 0; s < count; s++)
    chans.forEach((c, i) => b.writeInt16LE(100 * (from + s) + c, (s * chans.length + i) * 2));
  return b;
}

describe('ip: protocol edge cases against a scripted iiod', function () {
  this.timeout(20000);
  let server: ScriptedServer;
  let ctx: Context;

  beforeEach(async () => {
    server = await startScriptedServer((_line, socket) => socket.write('-22\n'));
  });
  afterEach(async () => {
    await ctx?.close();
    await server?.close();
  });

  it('a late reply to a timed-out request is never read as the next answer (libiio #589)', async () => {
    let n = 0;
    server.script = (line, socket) => {
      assert.match(line, /^READ iio:device0 INPUT voltage0 raw$/);
      n++;
      // the first answer comes too late, on the connection the client gave up
      if (n === 1) setTimeout(() => socket.write('6\nstale\0\n'), 300);
      else socket.write('6\nfresh\0\n');
    };
    ctx = await createContext(server.uri, { timeoutMs: 100 });
    const raw = ctx.device('adc').channel('voltage0').attr('raw');
    await assert.rejects(raw.read(), (e: IioError) => e.code === 'ETIMEDOUT');
    await new Promise((r) => setTimeout(r, 400)); // the stale reply has been sent by now
    assert.equal(await raw.read(), 'fresh');
    assert.equal(await raw.read(), 'fresh');
    assert.equal(server.connections, 2, 'the timed-out connection was replaced');
  });

  it('iiod errors come back as IioErrors naming device, channel and attribute', async () => {
    server.script = (_line, socket) => socket.write('-13\n');
    ctx = await createContext(server.uri);
    await assert.rejects(ctx.device('adc').channel('voltage1').readAttr('raw'), (e: IioError) => {
      assert.equal(e.code, 'EACCES');
      assert.match(e.message, /device iio:device0, channel voltage1, attribute raw/);
      assert.match(e.message, /Permission denied \(13\)/);
      return true;
    });
  });

  it('writes send the value with its NUL, as libiio, and return the byte count', async () => {
    const seen: string[] = [];
    server.script = (line, socket, conn) => {
      const m = /^WRITE iio:device0 DEBUG direct_reg_access (\d+)$/.exec(line);
      assert.ok(m, line);
      conn.expect(Number(m[1]), (d) => {
        seen.push(d.toString('latin1'));
        socket.write(`${d.length}\n`);
      });
    };
    ctx = await createContext(server.uri);
    await ctx.device('adc').writeDebugAttr('direct_reg_access', '0x10 0x20');
    assert.deepEqual(seen, ['0x10 0x20\0']);
  });

  it('names iiod cannot parse are refused before anything is sent', async () => {
    ctx = await createContext(server.uri);
    const b = ctx.backendForInternalUse;
    const dev = ctx.device('adc');
    const before = server.connections;
    for (const name of ['two words', 'debug', 'cyclic', 'a/b']) {
      await assert.rejects(
        b.writeAttr({ kind: 'device', device: dev.info, attr: { name } }, '1'),
        (e: IioError) => e.code === 'EINVAL',
      );
    }
    assert.equal(server.connections, before);
  });

  it('GETTRIG/SETTRIG: a name, none, and errors', async () => {
    const replies = ['5\ntrig0\n', '0\n', '-2\n'];
    const lines: string[] = [];
    server.script = (line, socket) => {
      lines.push(line);
      if (line.startsWith('GETTRIG')) socket.write(replies.shift()!);
      else socket.write('0\n');
    };
    ctx = await createContext(server.uri);
    const dev = ctx.device('adc');
    assert.equal((await dev.getTrigger())?.id, 'trigger0');
    assert.equal(await dev.getTrigger(), null);
    await assert.rejects(dev.getTrigger(), (e: IioError) => e.code === 'ENOENT');
    await dev.setTrigger('trig0');
    await dev.setTrigger(null);
    assert.deepEqual(lines.slice(3), ['SETTRIG iio:device0 trigger0', 'SETTRIG iio:device0']);
  });

  it('READBUF: our channels are picked out when iiod widens the mask, and early ends are joined', async () => {
    // The client opens voltage0 only; iiod (another client joined) sends voltage0+1,
    // then ends a request early ("0") and widens again to all three channels.
    let s = 0;
    let req = 0;
    server.script = (line, socket) => {
      if (line.startsWith('OPEN')) {
        assert.equal(line, 'OPEN iio:device0 4 00000001');
        socket.write('0\n');
        return;
      }
      const m = /^READBUF iio:device0 (\d+)$/.exec(line);
      if (!m) return void socket.write('-22\n');
      req++;
      const n = Number(m[1]);
      if (req === 1) {
        // 2-channel scans, exactly the bytes asked, in two chunks
        const count = Math.ceil(n / 4);
        const all = scans(s, count, [0, 1]).subarray(0, n);
        s += count;
        const half = Math.floor(count / 2) * 4 || all.length;
        const a = all.subarray(0, half);
        const b = all.subarray(half);
        const parts = [Buffer.from(`${a.length}\n00000003\n`), a];
        if (b.length) parts.push(Buffer.from(`${b.length}\n`), b);
        socket.write(Buffer.concat(parts));
      } else if (req === 2) {
        // one scan, then iiod ends the request early
        const a = scans(s, 1, [0, 1]);
        s += 1;
        socket.write(
          Buffer.concat([Buffer.from(`${a.length}\n00000003\n`), a, Buffer.from('0\n')]),
        );
      } else {
        // as iiod: exactly the bytes asked, even if that cuts the last (wider) scan
        const count = Math.ceil(n / 6);
        const a = scans(s, count, [0, 1, 2]).subarray(0, n);
        s += count;
        socket.write(Buffer.concat([Buffer.from(`${a.length}\n00000007\n`), a]));
      }
    };
    ctx = await createContext(server.uri);
    const buf = await ctx.device('adc').createBuffer(4, { channels: ['voltage0'] });
    const values: number[] = [];
    for (let i = 0; i < 40; i++) {
      const d = await buf.refill();
      assert.equal(d.length, 8);
      for (let k = 0; k < 4; k++) values.push(d.readInt16LE(k * 2));
    }
    // every value is voltage0 of a scan, in order; scans cut by the widening are the
    // only gaps, and they are counted as lost
    assert.deepEqual(values.slice(0, 3), [0, 100, 200]);
    assert.ok(values.length === 160);
    let gaps = 0;
    for (let i = 1; i < values.length; i++) {
      assert.equal(values[i] % 100, 0);
      assert.ok(values[i] > values[i - 1]);
      gaps += (values[i] - values[i - 1]) / 100 - 1;
    }
    assert.equal(buf.lost, gaps);
    await buf.close();
  });

  it('WRITEBUF refused by iiod: the samples are never sent as commands', async () => {
    const lines: string[] = [];
    server.script = (line, socket) => {
      lines.push(line);
      if (line.startsWith('OPEN')) socket.write('0\n');
      else if (line.startsWith('WRITEBUF')) socket.write('-9\n');
      else socket.write('-22\n');
    };
    const xml = ''; // default XML has no output channel: build one inline
    void xml;
    ctx = await createContext(server.uri);
    // the scripted device has inputs only: drive the backend directly with an output mask
    const dev = ctx.device('adc');
    const { ChannelMask } = await import('../../src');
    const out = await ctx.backendForInternalUse.openBuffer(dev.info, {
      samples: 4,
      mask: ChannelMask.of(3, [0]),
      cyclic: false,
      isOutput: true,
    });
    await assert.rejects(
      out.write(Buffer.from('READ iio:device0 raw\r\n')),
      (e: IioError) => e.code === 'EBADF',
    );
    await out.close();
    assert.ok(!lines.some((l) => l.startsWith('READ ')), lines.join('|'));
  });

  it("read-all decodes iiod's packed values and per-attribute errors", async () => {
    server.script = (line, socket) => {
      assert.equal(line, 'READ iio:device0 INPUT voltage0');
      const v = Buffer.from('42\0');
      const p = Buffer.alloc(4 + 4 + 4);
      p.writeInt32BE(v.length, 0);
      v.copy(p, 4);
      const err = Buffer.alloc(4);
      err.writeInt32BE(-5, 0);
      const all = Buffer.concat([p.subarray(0, 8), err]);
      socket.write(Buffer.concat([Buffer.from(`${all.length}\n`), all, Buffer.from('\n')]));
    };
    ctx = await createContext(server.uri);
    const b = ctx.backendForInternalUse as IiodBackend;
    const dev = ctx.device('adc').info;
    const ch = { ...dev.channels[0], attrs: [...dev.channels[0].attrs, { name: 'scale' }] };
    const r = await b.readAllAttrs(dev, 'channel', ch);
    assert.equal(r[0], '42');
    assert.ok(r[1] instanceof IioError && r[1].code === 'EIO');
  });
});
