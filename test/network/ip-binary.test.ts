import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { createContext, IioError } from '../../src';
import type { IiodBackend } from '../../src/backends/iiod';
import { OP } from '../../src/iiod-protocol/binary';
import { FAKE_XML } from './helpers/fake-server';

interface Frame {
  op: number;
  dev: number;
  code: number;
  payload?: Buffer;
}

/**
 * A scripted libiio 1.0 iiod: ASCII until BINARY, then 8-byte frames. `nopWorks: false`
 * plays an iiod of the older opcode numbering (it drops the connection on opcode 32).
 */
async function binaryServer(
  nopWorks: boolean,
  onFrame: (f: Frame, reply: (code: number, data?: Buffer) => void) => void,
): Promise<{ port: number; frames: Frame[]; asciiLines: string[]; close(): Promise<void> }> {
  const frames: Frame[] = [];
  const asciiLines: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let bin = false;
    const reply = (code: number, data?: Buffer): void => {
      const h = Buffer.alloc(8);
      h.writeInt32LE(code, 4);
      s.write(data ? Buffer.concat([h, data]) : h);
    };
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (!bin) {
          const nl = buf.indexOf(10);
          if (nl < 0) return;
          const line = buf.subarray(0, nl).toString().replace(/\r$/, '');
          buf = buf.subarray(nl + 1);
          if (!line) continue;
          asciiLines.push(line);
          if (line === 'VERSION') s.write('1.0.v1.0   \n');
          else if (line === 'PRINT') s.write(`${Buffer.byteLength(FAKE_XML)}\n${FAKE_XML}\n`);
          else if (line === 'BINARY') {
            bin = true;
            s.write('0\n');
          } else if (line.startsWith('TIMEOUT')) s.write('0\n');
          else if (line.startsWith('READ ')) s.write('4\nold\0\n');
          else s.write('-22\n');
          continue;
        }
        if (buf.length < 8) return;
        const f: Frame = { op: buf.readUInt8(2), dev: buf.readUInt8(3), code: buf.readInt32LE(4) };
        let need = 8;
        if (f.op >= OP.WRITE_ATTR && f.op <= OP.WRITE_CHN_EVT_ATTR) {
          if (buf.length < 16) return;
          need = 16 + Number(buf.readBigUInt64LE(8));
        } else if (f.op === OP.REG_WRITE) need = 12;
        if (buf.length < need) return;
        if (need > 8) f.payload = buf.subarray(8, need);
        buf = buf.subarray(need);
        frames.push(f);
        if (f.op === OP.NOP && !nopWorks) {
          s.destroy(); // iiod: "invalid opcode", the reader loop ends
          return;
        }
        if (f.op === OP.NOP || f.op === OP.TIMEOUT) reply(0);
        else onFrame(f, reply);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    frames,
    asciiLines,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe("ip: libiio 1.0's binary protocol (scripted iiod; the real one is checked by hand)", function () {
  this.timeout(20000);

  it('speaks binary after the NOP probe: attributes by index, triggers, registers', async () => {
    const srv = await binaryServer(true, (f, reply) => {
      switch (f.op) {
        case OP.READ_CHN_ATTR:
          return reply(3, Buffer.from('42\0'));
        case OP.READ_ATTR:
          return reply(-13);
        case OP.WRITE_DBG_ATTR:
          return reply(f.payload!.length - 8);
        case OP.GETTRIG:
          return reply(f.dev === 0 ? 1 : -19);
        case OP.SETTRIG:
          return reply(0);
        case OP.REG_READ: {
          const v = Buffer.alloc(4);
          v.writeUInt32LE(0xdeadbeef, 0);
          return reply(4, v);
        }
        default:
          return reply(-38);
      }
    });
    const ctx = await createContext(`ip:127.0.0.1:${srv.port}`);
    try {
      assert.equal((ctx.backendForInternalUse as IiodBackend).protocol, 'binary');
      const dev = ctx.device('adc');
      assert.equal(await dev.channel('voltage1').readAttr('raw'), '42');
      // device index 0 (iio:device0 sorts before trigger0), channel 1, attribute 0
      const rd = srv.frames.find((f) => f.op === OP.READ_CHN_ATTR)!;
      assert.deepEqual([rd.dev, rd.code], [0, (0 << 16) | 1]);
      await assert.rejects(
        dev.readAttr('sampling_frequency'),
        (e: IioError) => e.code === 'EACCES',
      );
      await dev.writeDebugAttr('direct_reg_access', '0x10');
      const wr = srv.frames.find((f) => f.op === OP.WRITE_DBG_ATTR)!;
      assert.equal(wr.payload!.readBigUInt64LE(0), 5n);
      assert.equal(wr.payload!.subarray(8).toString('latin1'), '0x10\0');
      assert.equal((await dev.getTrigger())?.id, 'trigger0');
      await dev.setTrigger(null);
      assert.equal(srv.frames.find((f) => f.op === OP.SETTRIG)!.code, -1);
      assert.equal(await dev.readRegister(0x20), 0xdeadbeef);
      assert.equal(srv.frames.find((f) => f.op === OP.REG_READ)!.code, 0x20);
      // the server got half our timeout, 1.0-style
      assert.equal(srv.frames.find((f) => f.op === OP.TIMEOUT)!.code, 2500);
    } finally {
      await ctx.close();
      await srv.close();
    }
  });

  it('falls back to ASCII when the NOP probe fails (an iiod of the older opcode numbering)', async () => {
    const srv = await binaryServer(false, (_f, reply) => reply(-38));
    const ctx = await createContext(`ip:127.0.0.1:${srv.port}`);
    try {
      assert.equal((ctx.backendForInternalUse as IiodBackend).protocol, 'ascii');
      assert.equal(await ctx.device('adc').channel('voltage0').readAttr('raw'), 'old');
      assert.ok(srv.asciiLines.includes('READ iio:device0 INPUT voltage0 raw'));
    } finally {
      await ctx.close();
      await srv.close();
    }
  });

  it('protocol: "ascii" never asks for BINARY', async () => {
    const srv = await binaryServer(true, (_f, reply) => reply(-38));
    const ctx = await createContext(`ip:127.0.0.1:${srv.port}`, { protocol: 'ascii' });
    try {
      assert.equal((ctx.backendForInternalUse as IiodBackend).protocol, 'ascii');
      assert.ok(!srv.asciiLines.includes('BINARY'));
    } finally {
      await ctx.close();
      await srv.close();
    }
  });
});
