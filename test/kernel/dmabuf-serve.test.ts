/**
 * `iiokit serve -u local:` on the VM's `dma_adc` (Linux 6.12): libiio 0.24's iio_readdev
 * over ip: reads the counter continuous; the stream runs on DMABUF with 0 copies, and every
 * payload the server writes to its socket lies inside a DMABUF mapping: no copy in JS.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { createContext } from '../../src/create-context';
import type { IioBuffer } from '../../src/model/buffer';
import type { Context } from '../../src/model/context';
import { Device } from '../../src/model/device';
import { serveContext } from '../../src/server';
import { PatternChecker } from '../helpers/counter-pattern';
import { MiB, SAMPLES, dmabufMappings, kernel, raw } from '../helpers/dma-vm';
import { nativeTestHooks } from '../helpers/native-hooks';
import { PEERS, requirePeer } from '../helpers/peers';

describe(`kernel ${kernel}: DMABUF through iiokit serve -u local:`, function () {
  this.timeout(600000);
  let ctx: Context;

  before(async function () {
    requirePeer(this, PEERS.vm);
    ctx = await createContext('local:', { timeoutMs: 20000 });
  });
  after(async () => ctx?.close());

  before(function () {
    if (kernel !== '6.12') this.skip();
  });

  it('libiio 0.24 reads dma_adc through our server: counter continuous, DMABUF to socket, no copy', async function () {
    requirePeer(this, PEERS.iioInfo);
    // The buffers the server opens, to read their streams' counters after.
    const opened: IioBuffer[] = [];
    const create = Device.prototype.createBuffer;
    Device.prototype.createBuffer = async function (this: Device, ...args) {
      const b = await create.apply(this, args);
      opened.push(b);
      return b;
    };
    // What the server hands its sockets: every block's bytes should be the DMABUF's own
    // memory (no copy in JS between the stream and the socket).
    const hooks = nativeTestHooks();
    let maps = dmabufMappings();
    const inDmabuf = (addr: bigint): boolean => {
      const hit = (): boolean => maps.some(([lo, hi]) => addr >= lo && addr < hi);
      if (hit()) return true;
      maps = dmabufMappings();
      return hit();
    };
    const sent = { chunks: 0, bytes: 0, outside: 0 };
    const write = Socket.prototype.write;
    const own = Object.prototype.hasOwnProperty.call(Socket.prototype, 'write');
    Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
      if (Buffer.isBuffer(chunk) && chunk.length >= 64 * 1024) {
        sent.chunks++;
        sent.bytes += chunk.length;
        if (!inDmabuf(hooks.addressOf(chunk))) sent.outside++;
      }
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof write;
    const server = await serveContext(ctx, { port: 0 });
    const scans = (64 * MiB) / 4;
    const checker = new PatternChecker();
    try {
      const child = spawn('iio_readdev', [
        '-u',
        `ip:127.0.0.1:${server.port}`,
        '-b',
        String(SAMPLES),
        '-s',
        String(scans),
        'dma_adc',
        'voltage0',
        'voltage1',
      ]);
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout.on('data', (d: Buffer) => checker.check(d));
      const status = await new Promise<number | null>((r) => child.on('close', r));
      assert.equal(status, 0, stderr);
    } finally {
      Device.prototype.createBuffer = create;
      if (own) Socket.prototype.write = write;
      else delete (Socket.prototype as { write?: unknown }).write;
      await server.close();
    }
    assert.equal(checker.bytes, scans * 4);
    assert.equal(checker.mismatches, 0, String(checker));
    assert.equal(opened.length, 1);
    const st = raw(opened[0]).stream.stats();
    assert.equal(st.mode, 'dmabuf');
    assert.equal(st.copies, 0, 'every block went from its DMABUF to the socket');
    assert.ok(st.delivered >= Math.floor(scans / SAMPLES));
    // Every payload byte the sockets got was handed over as a view of a DMABUF.
    assert.ok(sent.bytes >= scans * 4, `${sent.bytes} bytes in ${sent.chunks} writes`);
    assert.equal(sent.outside, 0, 'no payload copied in JS on its way to the socket');
  });
});
