import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { ChannelMask, createContext, IioError, type Context } from '../../src';
import type { IiodBackend } from '../../src/backends/iiod';
import { startScriptedServer, type ScriptedServer } from './helpers/fake-server';

/** A small deterministic PRNG (mulberry32): the same 10,000 cases every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Reply = (s: Socket) => void;

/**
 * Malformed or truncated replies. Every one must end the request with an IioError:
 * broken framing, impossible numbers, data cut short (then the server hangs up, or
 * stalls: the request's deadline ends it), garbage.
 */
function malformed(
  r: () => number,
  kind: 'value' | 'status' | 'readbuf',
): { reply: Reply; stalls: boolean } {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const garbage = (n: number): Buffer => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
    b[0] = 0x41 + Math.floor(r() * 26); // never a digit, sign, space or newline first
    return b;
  };
  const end =
    (data: string | Buffer): Reply =>
    (s) =>
      s.end(data);
  const stall =
    (data: string | Buffer): Reply =>
    (s) =>
      s.write(data);
  const cases: Array<() => { reply: Reply; stalls: boolean }> = [
    () => ({ reply: end(''), stalls: false }),
    () => ({ reply: end(garbage(1 + Math.floor(r() * 64))), stalls: false }),
    () => ({
      reply: end(`${pick(['abc', '12abc', '- 5', '1e3', '0x10', '١٢', '+-1', '3.5'])}\n`),
      stalls: false,
    }),
    () => ({ reply: end(`${Math.floor(r() * 1e9) + 2147483648}\n`), stalls: false }),
    () => ({ reply: end(Buffer.alloc(1025 + Math.floor(r() * 2000), '7')), stalls: false }),
    () => ({ reply: end('\n'.repeat(20 + Math.floor(r() * 30))), stalls: false }),
    () => ({ reply: end(String(1 + Math.floor(r() * 9))), stalls: false }),
    () => ({ reply: stall(garbage(1 + Math.floor(r() * 8))), stalls: true }),
    () => ({ reply: stall(String(1 + Math.floor(r() * 9))), stalls: true }),
  ];
  if (kind === 'value') {
    cases.push(
      () => {
        const n = 5 + Math.floor(r() * 50);
        return { reply: end(`${n}\n${'x'.repeat(Math.floor(r() * n))}`), stalls: false };
      },
      () => ({ reply: end(`3\nabc${pick(['X', '\r', '\0'])}`), stalls: false }),
      () => ({ reply: end(`${2147483647}\n`), stalls: false }),
      () => ({ reply: stall(`40\n${'y'.repeat(10)}`), stalls: true }),
    );
  }
  if (kind === 'readbuf') {
    cases.push(
      () => ({
        reply: end(`8\n${pick(['zzzzzzzz', '0000000', '000000001', ''])}\n`),
        stalls: false,
      }),
      () => ({ reply: end('8\n00000004\n'), stalls: false }), // a mask without our channel
      () => ({
        reply: end(Buffer.concat([Buffer.from('8\n00000001\n'), Buffer.alloc(3)])),
        stalls: false,
      }),
      () => ({ reply: end('999999\n00000001\n'), stalls: false }),
      () => ({ reply: stall('8\n00000001\n'), stalls: true }),
    );
  }
  return pick(cases)();
}

describe('ip: 10,000 malformed or truncated iiod replies: each a clean IioError', function () {
  this.timeout(600000);
  let server: ScriptedServer;
  let ctx: Context;

  before(async () => {
    server = await startScriptedServer((_l, s) => s.write('-22\n'));
    ctx = await createContext(server.uri, { timeoutMs: 5000 });
  });
  after(async () => {
    await ctx?.close();
    await server?.close();
  });

  it('never crashes, hangs or answers wrongly', async () => {
    const r = rng(0x11d);
    const b = ctx.backendForInternalUse as IiodBackend;
    const dev = ctx.device('adc');
    const codes = new Map<string, number>();
    let stalls = 0;
    for (let i = 0; i < 10000; i++) {
      await b.whenConnected();
      const op = Math.floor(r() * 6);
      const kind = op === 5 ? 'readbuf' : op <= 1 || op === 3 ? 'value' : 'status';
      let { reply, stalls: st } = malformed(r, kind);
      // stalls cost a timeout each: keep them to one case in fifty
      if (st && stalls > i / 50) {
        reply = (s) => s.end('');
        st = false;
      }
      if (st) stalls++;
      await b.setTimeout(st ? 30 : 5000).catch(() => undefined);
      let armed = true;
      server.script = (line, socket, conn) => {
        if (line.startsWith('OPEN')) return void socket.write('0\n');
        if (line.startsWith('WRITE ')) {
          const n = Number(line.split(' ').pop());
          return conn.expect(n, () =>
            armed ? ((armed = false), reply(socket)) : socket.write('-22\n'),
          );
        }
        if (!armed) return void socket.write('-22\n');
        armed = false;
        reply(socket);
      };
      const attempt = async (): Promise<unknown> => {
        switch (op) {
          case 0:
            return dev.channel('voltage0').readAttr('raw');
          case 1:
            return dev.readAttr('sampling_frequency');
          case 2:
            return dev.writeAttr('sampling_frequency', 100);
          case 3:
            return dev.getTrigger();
          case 4:
            return dev.setTrigger('trig0');
          default: {
            const buf = await b.openBuffer(dev.info, {
              samples: 4,
              mask: ChannelMask.of(3, [0]),
              cyclic: false,
              isOutput: false,
            });
            try {
              return await buf.read();
            } finally {
              await buf.close();
            }
          }
        }
      };
      let err: unknown;
      try {
        const v = await attempt();
        assert.fail(`case ${i} (op ${op}) resolved with ${JSON.stringify(v)}`);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof IioError, `case ${i}: not an IioError: ${String(err)}`);
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    }
    await b.setTimeout(5000);
    // and the context still works with a well-behaved server
    server.script = (line, socket) => socket.write(line.startsWith('READ') ? '3\nok\0\n' : '0\n');
    await b.whenConnected();
    assert.equal(await dev.readAttr('sampling_frequency'), 'ok');
    // EIO: the reply did not parse; EPIPE: it was cut short (the server closed the
    // connection; ECONNRESET if it reset it); ETIMEDOUT: it stalled;
    // EINVAL: a buffer whose connection was cut resumed on a new one, and the scripted
    // server refused the repeated READBUF.
    const expected = ['EIO', 'EPIPE', 'ECONNRESET', 'ETIMEDOUT', 'EINVAL', 'ENOTCONN'];
    for (const c of codes.keys()) assert.ok(expected.includes(c), `unexpected ${c}: ${[...codes]}`);
    assert.ok(codes.get('EIO')! > 1000 && codes.get('EPIPE')! > 1000, [...codes].join(' '));
  });
});
