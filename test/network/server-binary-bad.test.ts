/**
 * Bad input in the binary protocol: every case gets a clear errno in a response frame;
 * a frame whose size cannot be known (an unknown opcode, ASCII after the switch, a length
 * past our limits) also ends its connection, one whose payload can be skipped keeps it;
 * the server keeps serving (libiio main's iio_info afterwards) and nothing leaks (the
 * process's open files, the device streams).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createContext, serveContext, type Context, type ServerHandle } from '../../src';
import { libiioMain, PEERS, requirePeer } from '../helpers/peers';
import { BinaryConversation, header, u64 } from './helpers/binary-client';
import { runAsync } from './server-helpers';

/** libiio main's enum iiod_opcode (iiod-responder.h), by hand. */
const OPS = {
  WRITE_ATTR: 9,
  OPEN_BUFFER: 17,
  ENABLE_BUFFER: 19,
  CREATE_BLOCK: 21,
  TRANSFER_BLOCK: 23,
  NOP: 32,
};
const ERR = { ENOMEM: -12, EINVAL: -22, ENOSYS: -38 };

/** This process's open file descriptors (the server runs in it). */
function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('server, binary protocol: bad input', function () {
  this.timeout(60000);
  let ctx: Context;
  let server: ServerHandle;
  let fdsBefore: number;
  /** Wire indices: devices sorted by id. */
  let dev: (name: string) => number;

  before(async () => {
    ctx = await createContext('emu:');
    server = await serveContext(ctx, { port: 0 });
    const ids = ctx.devices.map((d) => d.id).sort();
    dev = (name) => ids.indexOf(ctx.findDevice(name)!.id);
    // One conversation first, so lazily opened things (timers, sockets) exist before counting.
    const c = await BinaryConversation.open(server.port);
    c.close();
    await new Promise((r) => setTimeout(r, 100));
    fdsBefore = openFds();
  });
  after(async () => {
    await server?.close();
    await ctx?.close();
  });

  /** NOP answers 0: the connection is still in step. */
  async function nop(c: BinaryConversation): Promise<void> {
    c.send(header({ clientId: 0, op: OPS.NOP, dev: 0, code: 0 }));
    assert.deepEqual(await c.response(), { clientId: 0, op: 0, code: 0, data: Buffer.alloc(0) });
  }

  afterEach(async function () {
    // Whatever the case did, its connections are gone and nothing is left open or streaming.
    let fds = openFds();
    for (let i = 0; i < 50 && fds !== fdsBefore; i++) {
      await new Promise((r) => setTimeout(r, 50));
      fds = openFds();
    }
    assert.equal(fds, fdsBefore, 'open file descriptors');
    assert.deepEqual(server.stats().streams, []);
    assert.equal(server.stats().connections, 0);
  });

  it('an unknown opcode: ENOSYS on its client id, then the connection ends', async () => {
    const c = await BinaryConversation.open(server.port);
    c.send(header({ clientId: 7, op: 40, dev: 0, code: 0 }));
    assert.deepEqual(await c.response(), {
      clientId: 7,
      op: 0,
      code: ERR.ENOSYS,
      data: Buffer.alloc(0),
    });
    assert.ok(await c.closedWithin(2000), 'the server closed the connection');
  });

  it('ASCII after the switch: its first 8 bytes are an unknown opcode, answered ENOSYS', async () => {
    const c = await BinaryConversation.open(server.port);
    c.send(Buffer.from('READ iio:device0 sampling_frequency\r\n'));
    // "READ iio": client id 'RE', opcode 'A' (0x41)
    const r = await c.response();
    assert.equal(r.clientId, Buffer.from('RE').readUInt16LE(0));
    assert.equal(r.code, ERR.ENOSYS);
    assert.ok(await c.closedWithin(2000));
  });

  it('BINARY again after the switch is answered 0 in ASCII, as iiod does', async () => {
    const c = await BinaryConversation.open(server.port);
    c.send(Buffer.from('BINARY\r\n'));
    assert.equal((await c.bytes(3)).toString('latin1'), '0\r\n');
    await nop(c);
    c.close();
  });

  it('an attribute write longer than we take: ENOMEM, then the connection ends', async () => {
    const c = await BinaryConversation.open(server.port);
    c.send(header({ clientId: 0, op: OPS.WRITE_ATTR, dev: 0, code: 0 }), u64(2n ** 40n));
    assert.equal((await c.response()).code, ERR.ENOMEM);
    assert.ok(await c.closedWithin(2000));
  });

  it('a frame cut short by the client leaves nothing behind', async () => {
    const c = await BinaryConversation.open(server.port);
    // WRITE_ATTR announcing 100 bytes, 10 sent, then the client goes.
    c.send(
      header({ clientId: 0, op: OPS.WRITE_ATTR, dev: 0, code: 0 }),
      u64(100),
      Buffer.alloc(10),
    );
    await new Promise((r) => setTimeout(r, 100));
    c.close();
  });

  it('OPEN_BUFFER of a device that does not exist: EINVAL, then the connection ends (the mask size is unknown)', async () => {
    const c = await BinaryConversation.open(server.port);
    c.send(header({ clientId: 0, op: OPS.OPEN_BUFFER, dev: 200, code: 0 }), Buffer.alloc(4));
    assert.equal((await c.response()).code, ERR.EINVAL);
    assert.ok(await c.closedWithin(2000));
  });

  it('a huge block: ENOMEM for that block, the connection goes on', async () => {
    const c = await BinaryConversation.open(server.port);
    const adc = dev('ad7606-emu');
    c.send(
      header({ clientId: 0, op: OPS.OPEN_BUFFER, dev: adc, code: 0 }),
      Buffer.from([1, 0, 0, 0]),
    );
    const open = await c.response(true);
    assert.equal(open.code, 4, 'the mask words, as enabled');
    assert.equal(open.data.readUInt32LE(0), 1);
    c.send(header({ clientId: 1, op: OPS.CREATE_BLOCK, dev: adc, code: 0 }), u64(2n ** 40n));
    assert.deepEqual(await c.response(), {
      clientId: 1,
      op: 0,
      code: ERR.ENOMEM,
      data: Buffer.alloc(0),
    });
    c.send(header({ clientId: 1, op: OPS.CREATE_BLOCK, dev: adc, code: 0 }), u64(2n ** 63n));
    assert.equal((await c.response()).code, ERR.ENOMEM);
    await nop(c);
    // A block of a sane size, enabled and streamed, then the client vanishes mid-stream.
    c.send(header({ clientId: 1, op: OPS.CREATE_BLOCK, dev: adc, code: 0 }), u64(256));
    assert.equal((await c.response()).code, 0);
    c.send(header({ clientId: 1, op: OPS.TRANSFER_BLOCK, dev: adc, code: 0 }), u64(256));
    c.send(header({ clientId: 0, op: OPS.ENABLE_BUFFER, dev: adc, code: 0 }));
    assert.equal((await c.response()).code, 0);
    const block = await c.response(true);
    assert.equal(block.clientId, 1);
    assert.equal(block.code, 256);
    assert.equal(server.stats().streams.length, 1, 'the device streams');
    c.close();
  });

  it('an output block with more bytes than the block holds: EINVAL (as an enqueue failure), skipped, the connection goes on', async () => {
    const c = await BinaryConversation.open(server.port);
    const dac = dev('ad5689-emu');
    c.send(
      header({ clientId: 0, op: OPS.OPEN_BUFFER, dev: dac, code: 0 }),
      Buffer.from([3, 0, 0, 0]),
    );
    assert.equal((await c.response(true)).code, 4);
    c.send(header({ clientId: 1, op: OPS.CREATE_BLOCK, dev: dac, code: 0 }), u64(64));
    assert.equal((await c.response()).code, 0);
    c.send(
      header({ clientId: 1, op: OPS.TRANSFER_BLOCK, dev: dac, code: 0 }),
      u64(128),
      Buffer.alloc(128, 0x55),
    );
    // iiod shifts an enqueue failure 16 bits left: -EINVAL << 16.
    assert.deepEqual(await c.response(), {
      clientId: 1,
      op: 0,
      code: ERR.EINVAL * 65536,
      data: Buffer.alloc(0),
    });
    await nop(c);
    c.close();
  });

  it('a writer that goes away mid-push leaves the DAC free for the next one at once', async () => {
    const dac = ctx.findDevice('ad5689-emu')!;
    await dac.writeAttr('sampling_frequency', 100);
    const d = dev('ad5689-emu');
    const a = await BinaryConversation.open(server.port);
    a.send(
      header({ clientId: 0, op: OPS.OPEN_BUFFER, dev: d, code: 0 }),
      Buffer.from([3, 0, 0, 0]),
    );
    assert.equal((await a.response(true)).code, 4);
    // Six blocks of 16384 scans: at 100 Hz the DAC takes minutes; later pushes wait.
    const size = 65536;
    for (let i = 0; i < 6; i++) {
      a.send(header({ clientId: i + 1, op: OPS.CREATE_BLOCK, dev: d, code: i << 16 }), u64(size));
      assert.equal((await a.response()).code, 0);
    }
    for (let i = 0; i < 6; i++) {
      a.send(
        header({ clientId: i + 1, op: OPS.TRANSFER_BLOCK, dev: d, code: i << 16 }),
        u64(size),
        Buffer.alloc(size, i),
      );
    }
    await new Promise((r) => setTimeout(r, 300));
    a.close();
    // The next writer gets the device (no EBUSY) and its block is taken.
    const b = await BinaryConversation.open(server.port);
    let opened = -16;
    for (let i = 0; i < 50 && opened === -16; i++) {
      b.send(
        header({ clientId: 0, op: OPS.OPEN_BUFFER, dev: d, code: 0 }),
        Buffer.from([3, 0, 0, 0]),
      );
      opened = (await b.response(true)).code;
      if (opened === -16) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(opened, 4, 'the DAC was released when its writer went away');
    b.close();
    await dac.writeAttr('sampling_frequency', 1000);
  });

  it('a quiet client keeps its connection past the command timeout; a half-sent header does not', async () => {
    const quick = await serveContext(ctx, { port: 0, commandTimeoutMs: 300 });
    try {
      const quiet = await BinaryConversation.open(quick.port);
      const half = await BinaryConversation.open(quick.port);
      half.send(header({ clientId: 0, op: OPS.NOP, dev: 0, code: 0 }).subarray(0, 5));
      // the half-sent header is cut by the deadline that runs from its first byte
      assert.equal(await half.closedWithin(3000), true, 'a half-sent header ends the connection');
      assert.equal(quiet.closed, false, 'a client between two frames is not cut');
      await nop(quiet);
      assert.equal(quick.stats().timedOut, 1);
      quiet.close();
    } finally {
      await quick.close();
    }
  });

  it('a response frame from the client is dropped with its payload, as iiod does', async () => {
    const c = await BinaryConversation.open(server.port);
    c.send(header({ clientId: 0, op: 0, dev: 0, code: 5 }), Buffer.from('junk!'));
    await nop(c);
    c.close();
  });

  it("after all this, libiio main's iio_info still gets the context", async function () {
    requirePeer(this, PEERS.iiodMain);
    const main = libiioMain()!;
    const r = await runAsync(
      join(main.dir, 'bin/iio_info'),
      ['-u', `ip:127.0.0.1:${server.port}`],
      {
        env: main.env,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.toString(), /IIO context has 4 devices/);
  });
});
