/**
 * The server's bounds against hostile and careless clients (issue 15, items 1-4): memory
 * per connection and per reader whatever the OPENs ask, a slot for a new client however
 * many idle sockets are open, stalled commands and readers dropped, a writer that leaves
 * releasing its DAC, and replies for a client that half-closes.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createContext, serveContext, type Context } from '../../src';
import { DEFAULT_LIMITS } from '../../src/server';
import { PEERS, requirePeer } from '../helpers/peers';
import { loadSnapshot, snapshotOptions, withSnapshotBackend } from '../helpers/sysfs-snapshot';
import { converse, runAsync } from './server-helpers';

/** A raw connection that collects what the server says. */
class Raw {
  readonly socket: Socket;
  private data = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  readonly whenClosed: Promise<void>;

  constructor(port: number) {
    this.socket = connect({ port, host: '127.0.0.1' });
    this.socket.on('error', () => undefined);
    this.socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      for (const w of this.waiters.splice(0)) w();
    });
    this.whenClosed = new Promise((r) =>
      this.socket.on('close', () => {
        this.closed = true;
        for (const w of this.waiters.splice(0)) w();
        r();
      }),
    );
  }

  connected(): Promise<void> {
    return new Promise((r, j) => {
      this.socket.once('connect', () => r());
      this.socket.once('error', j);
    });
  }

  /** The next reply line (an integer line of the protocol). */
  async line(): Promise<string> {
    for (;;) {
      const nl = this.data.indexOf(10);
      if (nl >= 0) {
        const l = this.data.subarray(0, nl).toString('latin1');
        this.data = this.data.subarray(nl + 1);
        return l;
      }
      if (this.closed) throw new Error(`closed; got ${JSON.stringify(this.data.toString())}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  send(s: string | Buffer): void {
    this.socket.write(s);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Polls `f` until it is true (a bounded number of tries, `ms` apart); false if never. */
async function eventually(
  f: () => boolean | Promise<boolean>,
  tries = 200,
  ms = 50,
): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await f()) return true;
    await new Promise((r) => setTimeout(r, ms));
  }
  return false;
}

describe('iiokit serve: bounds against hostile clients', function () {
  this.timeout(120000);
  let ctx: Context;

  before(async () => {
    ctx = await createContext('emu:');
  });
  after(async () => ctx?.close());

  it('the defaults are the documented ones', () => {
    assert.deepEqual(DEFAULT_LIMITS, {
      maxClients: 64,
      queueBytes: 4 * 1024 * 1024,
      maxBufferBytes: 64 * 1024 * 1024,
      connectionBytes: 256 * 1024 * 1024,
      memoryBytes: 512 * 1024 * 1024,
      commandTimeoutMs: 30000,
      idleTimeoutMs: 0,
    });
  });

  it('eight 64 MiB OPENs on one connection: refused with -ENOMEM past the connection budget', async () => {
    const server = await serveContext(ctx, { port: 0 });
    const raw = new Raw(server.port);
    try {
      await raw.connected();
      const replies: string[] = [];
      // voltage0 only (2 bytes a scan): 33554432 scans are 64 MiB, the largest one OPEN may ask
      for (let i = 0; i < 8; i++) {
        raw.send('OPEN iio:device0 33554432 00000001\r\n');
        replies.push(await raw.line());
      }
      // each reserves its 4 MiB queue and its 64 MiB block: three fit in 256 MiB
      assert.deepEqual(replies, ['0', '0', '0', '-12', '-12', '-12', '-12', '-12']);
      const mine = server.stats().clients[0];
      assert.equal(mine.streams.length, 3);
      assert.ok(mine.reservedBytes <= DEFAULT_LIMITS.connectionBytes, String(mine.reservedBytes));
      // one larger than 64 MiB is refused whatever is left
      raw.send('CLOSE iio:device0\r\n');
      assert.equal(await raw.line(), '0');
      raw.send('OPEN iio:device0 33554433 00000001\r\n');
      assert.equal(await raw.line(), '-12');
    } finally {
      raw.destroy();
      await server.close();
    }
    assert.equal(server.stats().memory.reserved, 0, 'everything reserved was given back');
  });

  it('the server-wide budget refuses what connections together would exceed', async () => {
    const server = await serveContext(ctx, { port: 0, memoryBytes: 100 * 1024 * 1024 });
    const a = new Raw(server.port);
    const b = new Raw(server.port);
    try {
      await Promise.all([a.connected(), b.connected()]);
      a.send('OPEN iio:device0 16777216 00000001\r\n'); // 32 MiB + 4 MiB queue
      assert.equal(await a.line(), '0');
      b.send('OPEN iio:device0 16777216 00000001\r\n');
      assert.equal(await b.line(), '0');
      b.send('OPEN iio:device0 16777216 00000001\r\n'); // 108 MiB in all: no
      assert.equal(await b.line(), '-12');
      assert.ok(server.stats().memory.reserved <= 100 * 1024 * 1024);
    } finally {
      a.destroy();
      b.destroy();
      await server.close();
    }
  });

  it('a reader that never reads holds at most its queue and one block, whatever it asked', async () => {
    const queueBytes = 64 * 1024;
    const server = await serveContext(ctx, { port: 0, queueBytes });
    const adc = ctx.findDevice('ad7606-emu')!;
    await adc.writeAttr('sampling_frequency', 100000);
    const raw = new Raw(server.port);
    try {
      await raw.connected();
      // 32M scans asked: the old rule let this reader queue 4 × 64 MiB
      raw.send('OPEN iio:device0 33554432 00000001\r\n');
      assert.equal(await raw.line(), '0');
      // blocks are 0.25 s of data at 100 kHz: 25000 scans, 50000 bytes for this reader
      const block = 25000 * 2;
      const stream = (): { queued: number; dropped: number } => {
        const s = server.stats().clients[0]?.streams[0];
        return { queued: s?.queuedBytes ?? 0, dropped: s?.droppedScans ?? 0 };
      };
      assert.ok(await eventually(() => stream().queued > 0, 400), JSON.stringify(stream()));
      // Once its queue is full the stream stops pulling (the device overruns, as it would
      // with nobody reading): the queue never holds more than the limit and one block.
      for (let i = 0; i < 40; i++) {
        const q = stream().queued;
        assert.ok(q <= queueBytes + block, `queued ${q} > ${queueBytes} + one block of ${block}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // What the device lost meanwhile (it holds 4 blocks, 1 s; 2 s went by unread) is
      // counted as soon as the reader reads again.
      raw.send('READBUF iio:device0 100000\r\n');
      assert.ok(await eventually(() => stream().dropped > 25000, 400), JSON.stringify(stream()));
    } finally {
      raw.destroy();
      await server.close();
      await adc.writeAttr('sampling_frequency', 1000);
    }
  });

  it('200 idle connections: iio_info still gets in (the longest idle make room)', async function () {
    requirePeer(this, PEERS.iioInfo);
    const server = await serveContext(ctx, { port: 0 });
    const idle: Raw[] = [];
    try {
      for (let i = 0; i < 200; i++) idle.push(new Raw(server.port));
      await Promise.all(idle.map((r) => r.connected().catch(() => undefined)));
      assert.ok(
        await eventually(() => server.stats().accepted >= 200),
        JSON.stringify(server.stats().accepted),
      );
      assert.equal(server.stats().connections, 64);
      for (let round = 0; round < 3; round++) {
        const r = await runAsync('iio_info', ['-u', server.uri]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout.toString(), /iio:device0: ad7606-emu/);
      }
      const s = server.stats();
      assert.equal(s.refused, 0);
      assert.ok(s.evicted >= 200 - 64, JSON.stringify(s.evicted));
      assert.ok(s.connections <= 64);
    } finally {
      for (const r of idle) r.destroy();
      await server.close();
    }
  });

  it('a full server makes room with a socket that never spoke before a client between commands', async () => {
    const server = await serveContext(ctx, { port: 0, maxClients: 3 });
    const client = new Raw(server.port);
    const silent: Raw[] = [];
    try {
      // a client that has spoken, then pauses (as iio_info does between its commands)
      await client.connected();
      client.send('VERSION\r\n');
      assert.equal(await client.line(), '0.24.iiokit ');
      await new Promise((r) => setTimeout(r, 30));
      // two sockets that never say anything, connected after: more recent than its reply
      for (let i = 0; i < 2; i++) silent.push(new Raw(server.port));
      await Promise.all(silent.map((r) => r.connected()));
      assert.ok(await eventually(() => server.stats().connections === 3));
      // a fourth: one silent socket goes, although the client has been quiet longer
      const next = await converse(server.port, 'VERSION\r\n', 300, 5000);
      assert.equal(next.reply.toString(), '0.24.iiokit \n');
      assert.ok(await eventually(() => silent.some((r) => r.closed)), 'a silent socket was closed');
      assert.equal(client.closed, false, 'the client that spoke kept its connection');
      client.send('VERSION\r\n');
      assert.equal(await client.line(), '0.24.iiokit ');
      assert.equal(server.stats().evicted, 1);
    } finally {
      client.destroy();
      for (const r of silent) r.destroy();
      await server.close();
    }
  });

  it('a command line that never ends, and a trickle, are dropped after the command timeout', async () => {
    const server = await serveContext(ctx, { port: 0, commandTimeoutMs: 300, maxClients: 2 });
    const half = new Raw(server.port);
    const trickle = new Raw(server.port);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.all([half.connected(), trickle.connected()]);
      half.send('VERS');
      // a byte every 100 ms: each is sooner than the timeout, the line never is
      const text = 'PRINT'.repeat(1000);
      let i = 0;
      trickle.send(text[i++]);
      timer = setInterval(() => trickle.send(text[i++ % text.length]), 100);
      // once the server has a byte of each, neither is idle
      assert.ok(
        await eventually(() => {
          const c = server.stats().clients;
          return c.length === 2 && c.every((x) => !x.idle);
        }),
      );
      // both are busy (a command under way): a third client is refused, not them dropped
      const third = await converse(server.port, 'VERSION\r\n', 300, 5000).catch(() => null);
      assert.equal(third?.reply.toString() ?? '', '', 'no room while both are mid-command');
      await Promise.all([half.whenClosed, trickle.whenClosed]);
      const s = server.stats();
      assert.equal(s.timedOut, 2);
      assert.equal(s.evicted, 0);
      const later = await converse(server.port, 'VERSION\r\n', 300, 5000);
      assert.equal(later.reply.toString(), '0.24.iiokit \n');
    } finally {
      if (timer) clearInterval(timer);
      half.destroy();
      trickle.destroy();
      await server.close();
    }
  });

  it('a reader that stops reading its READBUF replies is dropped after the command timeout', async () => {
    const server = await serveContext(ctx, { port: 0, commandTimeoutMs: 500 });
    const adc = ctx.findDevice('ad7606-emu')!;
    await adc.writeAttr('sampling_frequency', 200000);
    const stuck = new Raw(server.port);
    try {
      await stuck.connected();
      stuck.send('OPEN iio:device0 4096 0000001f\r\nREADBUF iio:device0 4000000000\r\n');
      // it reads nothing (a paused socket does not see the server close it either)
      stuck.socket.pause();
      assert.ok(await eventually(() => server.stats().timedOut === 1, 400));
      const s = server.stats();
      assert.equal(s.timedOut, 1);
      assert.equal(s.streams.length, 0, 'its reader is gone, the device stream stopped');
    } finally {
      stuck.destroy();
      await server.close();
      await adc.writeAttr('sampling_frequency', 1000);
    }
  });

  it('a writer that leaves mid-WRITEBUF releases the DAC at once', async () => {
    const server = await serveContext(ctx, { port: 0 });
    const w = new Raw(server.port);
    try {
      await w.connected();
      w.send('OPEN iio:device1 1024 00000003\r\n');
      assert.equal(await w.line(), '0');
      // 4 GB announced, 8 MiB sent: at the DAC's 1 kHz that is half an hour of samples
      w.send('WRITEBUF iio:device1 4000000000\r\n');
      assert.equal(await w.line(), '0');
      const chunk = Buffer.alloc(1024 * 1024, 0x11);
      for (let i = 0; i < 8; i++) w.send(chunk);
      await new Promise<void>((r) => w.socket.write(Buffer.alloc(0), () => r()));
      w.destroy();
      // the next writer gets the DAC (it was -EBUSY for ten minutes and more)
      let reply = '';
      const got = await eventually(
        async () => {
          const r = await converse(server.port, 'OPEN iio:device1 1024 00000003\r\n', 200, 5000);
          reply = r.reply.toString();
          return reply === '0\n';
        },
        100,
        100,
      );
      assert.ok(got, `OPEN of the DAC answered ${JSON.stringify(reply)}`);
    } finally {
      w.destroy();
      await server.close();
    }
  });

  it('a client that half-closes after its commands gets every reply', async () => {
    // local: (a copy of the VM's sysfs): attribute reads are file reads, so the FIN is
    // read long before the replies are written
    const s = loadSnapshot('linux-6.1');
    await withSnapshotBackend(snapshotOptions(s), async () => {
      const local = await createContext('local:');
      const server = await serveContext(local, { port: 0 });
      try {
        const reply = await new Promise<string>((resolve, reject) => {
          const sock = connect({ port: server.port, host: '127.0.0.1' });
          let got = '';
          sock.on('data', (d) => (got += d.toString('latin1')));
          sock.on('error', reject);
          sock.on('close', () => resolve(got));
          sock.on('connect', () =>
            sock.end('VERSION\r\nREAD iio:device0 current_timestamp_clock\r\nPRINT\r\n'),
          );
        });
        assert.match(reply, /^0\.24\.iiokit \n\d+\nrealtime\n?\0\n\d+\n<\?xml/, reply.slice(0, 60));
        assert.match(reply, /<context name="local"/);
        assert.ok(reply.endsWith('</context>\n'), JSON.stringify(reply.slice(-40)));
      } finally {
        await server.close();
        await local.close();
      }
    });
  });
});
