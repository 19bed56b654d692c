/**
 * A rogue server (one DNS-SD could find) that sends what nobody asked for must not fill
 * the host's memory (issue 15, item 11: 200 MB sent, +200 MB RSS): the ip: client keeps
 * at most MAX_UNREAD bytes it has not asked for, then drops the connection with a clear
 * error, and the context recovers on a new one.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { createContext, type Context } from '../../src';
import { MAX_UNREAD } from '../../src/backends/iiod/reader';
import { startScriptedServer, type ScriptedServer } from './helpers/fake-server';

/** Writes `total` bytes of garbage, honouring backpressure; resolves with what was taken. */
function flood(socket: Socket, total: number): Promise<number> {
  const chunk = Buffer.alloc(1024 * 1024, 0x41);
  let sent = 0;
  return new Promise((resolve) => {
    const done = (): void => resolve(sent);
    socket.once('close', done);
    socket.once('error', done);
    const pump = (): void => {
      while (sent < total && !socket.destroyed) {
        sent += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (sent >= total) done();
    };
    pump();
  });
}

describe('ip: a server that floods the client with unsolicited data', function () {
  this.timeout(120000);
  let server: ScriptedServer;
  let ctx: Context | undefined;

  afterEach(async () => {
    await ctx?.close();
    ctx = undefined;
    await server?.close();
  });

  it('the stated cap', () => {
    // more than any reply line or read chunk that can wait between two reads, far less than RAM
    assert.equal(MAX_UNREAD, 16 * 1024 * 1024);
  });

  it('200 MB after a reply: memory stays bounded, the connection is dropped with a clear error, the context recovers', async () => {
    let floods = 0;
    let sentTotal: Promise<number> | undefined;
    server = await startScriptedServer((line, socket) => {
      if (line.startsWith('READ ')) {
        socket.write('3\nok\0\n');
        // the first connection answers, then sends 200 MB nobody asked for
        if (floods++ === 0) sentTotal = flood(socket, 200 * 1024 * 1024);
      } else socket.write('0\n');
    });
    ctx = await createContext(server.uri, { timeoutMs: 5000 });
    const errors: Error[] = [];
    ctx.on('disconnected', (error: Error) => errors.push(error));
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    const dev = ctx.findDevice('adc')!;
    try {
      assert.equal(await dev.readAttr('sampling_frequency'), 'ok');
      const sent = await sentTotal!;
      peak = Math.max(peak, process.memoryUsage().rss);
      // the client stopped taking it long before the 200 MB were through
      assert.ok(sent < 200 * 1024 * 1024, `the server could send all ${sent} bytes`);
    } finally {
      clearInterval(sampler);
    }
    const grew = peak - before;
    // the cap, plus the socket's read buffer and the allocator's slack
    assert.ok(grew < 64 * 1024 * 1024, `RSS grew by ${(grew / 1048576).toFixed(1)} MiB`);
    assert.equal(errors.length, 1, errors.map(String).join('; '));
    assert.match(errors[0].message, /no request asked for/);
    assert.equal((errors[0] as { code?: string }).code, 'EIO');
    // a new connection, a well-behaved answer
    for (let i = 0; i < 100 && floods < 2; i++) {
      await dev.readAttr('sampling_frequency').catch(() => undefined);
      if (floods < 2) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await dev.readAttr('sampling_frequency'), 'ok');
  });
});
