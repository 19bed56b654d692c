/**
 * A DMABUF push that times out half-way, on 6.12's `dma_dac` (a real IIO DMA buffer that
 * takes DMABUFs; ../shared/iio-vm/README.md): the blocks already enqueued play anyway, so
 * the error must say how much was queued, and the device must then consume exactly that.
 */
import assert from 'node:assert/strict';
import type { LocalBackendBuffer } from '../../src/backends/local/buffer';
import { createContext } from '../../src/create-context';
import { IioError } from '../../src/errors';
import type { IioBuffer } from '../../src/model/buffer';
import { PEERS, requirePeer } from '../helpers/peers';

const kernel = process.env.IIO_VM_KERNEL ?? '6.1';
const backendBuffer = (b: IioBuffer): LocalBackendBuffer =>
  (b as unknown as { raw: LocalBackendBuffer }).raw;

/** dma_dac's expected data: scan n is voltage0 = n, voltage1 = ~n (16 bits each). */
function pattern(scans: number): Buffer {
  const b = Buffer.alloc(scans * 4);
  for (let n = 0; n < scans; n++) {
    b.writeUInt16LE(n & 0xffff, n * 4);
    b.writeUInt16LE(~n & 0xffff, n * 4 + 2);
  }
  return b;
}

// dma_dac exists in the 6.12 VM only (DMABUF is Linux 6.11+): on 6.1 there is no test to
// run rather than a pending one (a skip is not a missing peer here).
const suite = kernel === '6.12' ? describe : (): void => undefined;

suite(`kernel ${kernel}: a DMABUF push that times out half-way`, function () {
  this.timeout(120000);

  before(function () {
    requirePeer(this, PEERS.vm);
  });

  it('reports the bytes the kernel queued, and the device plays exactly those', async () => {
    // 300 ms to queue a push; the DAC plays 100 scans/s, so a 64-scan DMABUF takes 640 ms
    // and the push of 32 of them times out once the pool's DMABUFs are all queued.
    const ctx = await createContext('local:', { timeoutMs: 300 });
    try {
      const dac = ctx.device('dma_dac');
      await dac.writeAttr('sampling_frequency', 100);
      const buf = await dac.createBuffer(64, {
        channels: ['voltage0', 'voltage1'],
        isOutput: true,
        blocks: 2,
      });
      try {
        const raw = backendBuffer(buf);
        assert.equal(raw.transport.dmabuf.ok, true, JSON.stringify(raw.transport));
        assert.equal(raw.stream.stats().mode, 'dmabuf');
        const data = pattern(64 * 32);
        const err = await buf.push(data).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof IioError, `the push was refused: ${String(err)}`);
        assert.equal(err.code, 'ETIMEDOUT', err.message);
        const m = /(\d+) of (\d+) bytes were queued/.exec(err.message);
        assert.ok(m, err.message);
        const queued = Number(m[1]);
        assert.equal(Number(m[2]), data.length);
        assert.ok(queued > 0 && queued < data.length && queued % 256 === 0, `${queued} bytes`);
        assert.equal(raw.stream.stats().written, queued);
        // The device consumes what was queued (and checks it against its pattern)...
        const consumed = async (): Promise<number> => Number(await dac.readAttr('scans_consumed'));
        for (let i = 0; i < 200 && (await consumed()) < queued / 4; i++)
          await new Promise((r) => setTimeout(r, 100));
        // ... and nothing more: a second look a block's time later.
        await new Promise((r) => setTimeout(r, 700));
        assert.equal(await consumed(), queued / 4);
        assert.equal(await dac.readAttr('mismatches'), '0');
      } finally {
        await buf.close();
      }
    } finally {
      await ctx.close();
    }
  });
});
