/**
 * The DMABUF output path on the VM's `dma_dac` (Linux 6.12), which checks every scan it
 * plays against the counter: `iiokit writedev` 64 MiB and cyclic (-c) with 0 mismatches
 * and every scan played; push() and drain(), an aborted transfer failing drain(); forced
 * write() and its honest drain() error.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContext } from '../../src/create-context';
import type { IioError } from '../../src/errors';
import type { Context } from '../../src/model/context';
import { patternScans } from '../helpers/counter-pattern';
import {
  CH,
  CLI,
  MiB,
  SAMPLES,
  assertClean,
  deviceDir,
  fdTargets,
  kernel,
  patternStream,
  raw,
  read,
  runCli,
  sleep,
} from '../helpers/dma-vm';
import { PEERS, requirePeer } from '../helpers/peers';

describe(`kernel ${kernel}: DMABUF output (dma_dac)`, function () {
  this.timeout(600000);
  let ctx: Context;

  before(async function () {
    requirePeer(this, PEERS.vm);
    ctx = await createContext('local:', { timeoutMs: 20000 });
  });
  after(async () => ctx?.close());

  let dac: string;
  before(function () {
    if (kernel !== '6.12') this.skip();
    dac = deviceDir('dma_dac');
    writeFileSync(join(dac, 'sampling_frequency'), '0');
  });

  it('iiokit writedev: 64 MiB over DMABUF, the device counts 0 mismatches', async () => {
    const scans = (64 * MiB) / 4 + 12345; // and a last, shorter push
    const r = await runCli(['writedev', '-b', String(SAMPLES), '-s', String(scans), 'dma_dac'], {
      stdin: patternStream(scans),
      env: { IIOKIT_DEBUG: '1' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /closed: transfer dmabuf, .*, \d+ written, /);
    assert.equal(read(join(dac, 'mismatches')), '0');
    assert.equal(read(join(dac, 'first_mismatch')), '-1');
    assert.equal(Number(read(join(dac, 'scans_consumed'))), scans, 'every scan played');
    assert.equal(Number(read(join(dac, 'blocks_done'))), Math.ceil(scans / SAMPLES));
    assert.equal(read(join(dac, 'buffer0', 'enable')), '0');
  });

  it('iiokit writedev -c: one DMABUF repeated until SIGINT, 0 mismatches', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'writedev', '-c', '-b', '65536', 'dma_dac', 'voltage0', 'voltage1'],
      { env: { ...process.env, IIOKIT_DEBUG: '1' }, stdio: ['pipe', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined); // it reads one block, then may close stdin
    child.stdin.end(patternScans(0, 65536));
    const closed = new Promise<number | null>((r) => child.on('close', (s) => r(s)));
    // Its DMABUF is attached before the enable, and the device's counters reset at the
    // enable: wait for the debug line, the enable, then the scans.
    let consumed = 0;
    for (let i = 0; i < 1200 && consumed < 4 * 65536; i++) {
      await sleep(100);
      if (!/DMABUF blocks .* attached/.test(stderr)) continue;
      if (read(join(dac, 'buffer0', 'enable')) !== '1') continue;
      consumed = Number(read(join(dac, 'scans_consumed')));
    }
    assert.ok(consumed >= 4 * 65536, `repeated: ${consumed} scans played`);
    child.kill('SIGINT');
    assert.equal(await closed, 0, stderr);
    assert.match(stderr, /closed: transfer dmabuf, .* 1 enqueued/);
    assert.equal(read(join(dac, 'mismatches')), '0');
    assert.ok(Number(read(join(dac, 'scans_consumed'))) >= consumed);
    assert.equal(read(join(dac, 'blocks_done')), '0', 'a cyclic DMABUF never completes');
    assert.equal(read(join(dac, 'buffer0', 'enable')), '0');
  });

  it('library: forced write() plays whole kernel blocks; drain() says it cannot tell', async () => {
    const buf = await ctx
      .device('dma_dac')
      .createBuffer(1000, { channels: CH, isOutput: true, transfer: 'fileio' });
    try {
      assert.equal(raw(buf).stream.stats().mode, 'fileio');
      // length = 4 blocks: the DMA core plays two kernel blocks of 2000 scans, each once full.
      for (let i = 0; i < 4; i++) await buf.push(patternScans(i * 1000, 1000));
      for (let i = 0; i < 100 && Number(read(join(dac, 'scans_consumed'))) < 4000; i++)
        await sleep(50);
      assert.equal(Number(read(join(dac, 'scans_consumed'))), 4000);
      assert.equal(read(join(dac, 'mismatches')), '0');
      await assert.rejects(buf.drain(), (e: IioError) => {
        assert.equal(e.code, 'ENOTSUP');
        assert.match(e.message, /data_available counts free space/);
        return true;
      });
    } finally {
      await buf.close();
    }
  });

  it('library: push() and drain() over DMABUF; an aborted transfer makes drain() fail', async () => {
    const fdsBefore = fdTargets();
    const buf = await ctx
      .device('dma_dac')
      .createBuffer(50000, { channels: CH, isOutput: true, blocks: 4 });
    try {
      assert.equal(raw(buf).stream.stats().mode, 'dmabuf');
      await buf.push(patternScans(0, 50000));
      await buf.push(patternScans(50000, 30000));
      await buf.drain();
      assert.equal(Number(read(join(dac, 'scans_consumed'))), 80000);
      assert.equal(read(join(dac, 'mismatches')), '0');
      // Paced (1000 scans/s), then disabled under the stream: the transfer is aborted.
      writeFileSync(join(dac, 'sampling_frequency'), '1000');
      await buf.push(patternScans(0, 50000));
      await sleep(200);
      writeFileSync(join(dac, 'buffer0', 'enable'), '0');
      await assert.rejects(buf.drain(), (e: IioError) => e.code === 'EIO');
      assert.ok(raw(buf).stream.stats().transferErrors >= 1);
    } finally {
      await buf.close();
      writeFileSync(join(dac, 'sampling_frequency'), '0');
    }
    assertClean(dac, fdsBefore);
  });
});
