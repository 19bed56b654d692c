/**
 * Buffer sizes are bounded in the model, whatever the backend: a block larger than
 * MAX_BLOCK_BYTES, or a buffer of blocks larger than MAX_BUFFER_BYTES, is EINVAL naming the
 * limit, before the backend is asked (emu: once accepted `createBuffer(1e12)`, never
 * delivered and flooded TimeoutOverflowWarning).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createContext, IioError, serveContext, type Context } from '../../src';
import { MAX_BLOCK_BYTES, MAX_BUFFER_BLOCKS, MAX_BUFFER_BYTES } from '../../src/model/buffer';
import { loadSnapshot, snapshotOptions, withSnapshotBackend } from '../helpers/sysfs-snapshot';

const XML = join(__dirname, '../../../test/fixtures/xml/vm-iio-dummy-6.1.xml');

/** The limits as the documentation states them (docs/server.md "Limits", README). */
const STATED = { block: 256 * 1024 * 1024, buffer: 1024 * 1024 * 1024, blocks: 1024 };

function refusedWithLimit(limitText: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof IioError, String(e));
    assert.equal(e.code, 'EINVAL', e.message);
    assert.match(e.message, limitText);
    return true;
  };
}

/** Every way a buffer size can be too large, on the first input device with scan elements. */
async function checkLimits(ctx: Context): Promise<void> {
  const dev = ctx.devices.find((d) => d.channels.some((c) => c.isScanElement && !c.isOutput))!;
  const ch = dev.channels.find((c) => c.isScanElement && !c.isOutput)!;
  const scan = (ch.format!.length / 8) * ch.format!.repeat;
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w.name);
  };
  process.on('warning', onWarning);
  try {
    // emu: once accepted this and flooded TimeoutOverflowWarning
    await assert.rejects(dev.createBuffer(1e12, { channels: [ch] }), refusedWithLimit(/256 MiB/));
    const over = Math.floor(STATED.block / scan) + 1;
    await assert.rejects(dev.createBuffer(over, { channels: [ch] }), refusedWithLimit(/256 MiB/));
    // 8 blocks of 128 MiB + a scan: 1 GiB + 8 scans in all
    const half = Math.floor(STATED.block / 2 / scan) + 1;
    await assert.rejects(
      dev.createBuffer(half, { channels: [ch], blocks: 8 }),
      refusedWithLimit(/1 GiB/),
    );
    await assert.rejects(
      dev.createBuffer(16, { channels: [ch], blocks: STATED.blocks + 1 }),
      refusedWithLimit(/1024/),
    );
    await assert.rejects(
      dev.createBuffer(16, { channels: [ch], blocks: 0 }),
      refusedWithLimit(/1\.\.1024/),
    );
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings, [], 'no warning (TimeoutOverflowWarning) on the way');
}

describe('buffer sizes are bounded in the model, for every backend', function () {
  this.timeout(30000);

  it('the limits are the stated ones', () => {
    assert.equal(MAX_BLOCK_BYTES, STATED.block);
    assert.equal(MAX_BUFFER_BYTES, STATED.buffer);
    assert.equal(MAX_BUFFER_BLOCKS, STATED.blocks);
  });

  it('emu:', async () => {
    const ctx = await createContext('emu:');
    try {
      await checkLimits(ctx);
      // and a buffer at the limit's scale still opens (the bound is not a lower one)
      const b = await ctx.device('ad7606-emu').createBuffer(4096, { channels: ['voltage0'] });
      await b.close();
    } finally {
      await ctx.close();
    }
  });

  it('xml:', async () => {
    const ctx = await createContext(`xml:${XML}`);
    try {
      await checkLimits(ctx);
    } finally {
      await ctx.close();
    }
  });

  it('local: (a copy of the VM sysfs)', async () => {
    const s = loadSnapshot('linux-6.1');
    await withSnapshotBackend(snapshotOptions(s), async () => {
      const ctx = await createContext('local:');
      try {
        await checkLimits(ctx);
      } finally {
        await ctx.close();
      }
    });
  });

  it('ip: (our server serving emu:)', async () => {
    const served = await createContext('emu:');
    const server = await serveContext(served, { port: 0 });
    try {
      const ctx = await createContext(server.uri);
      try {
        await checkLimits(ctx);
        // nothing reached the server
        assert.equal(server.stats().streams.length, 0);
      } finally {
        await ctx.close();
      }
    } finally {
      await server.close();
      await served.close();
    }
  });
});
