/**
 * The DMABUF path leaves nothing behind (VM, Linux 6.12, `dma_adc`): close with blocks
 * still held by JS (they stay readable, the collector unmaps them later), a throw in the
 * consumer, a throw in a callback, process.exit() and SIGINT: the buffer disabled, the
 * DMABUFs detached (a fresh read() capture works) and no DMABUF, fence or IIO fd open.
 * Cancel mid-stream: dmabuf.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createContext } from '../../src/create-context';
import type { Block } from '../../src/model/buffer';
import type { Context } from '../../src/model/context';
import { PatternChecker } from '../helpers/counter-pattern';
import {
  CH,
  ROOT,
  SAMPLES,
  assertClean,
  assertDetached,
  deviceDir,
  dmabufMappings,
  fdTargets,
  kernel,
  read,
  sleep,
} from '../helpers/dma-vm';
import { PEERS, requirePeer } from '../helpers/peers';

describe(`kernel ${kernel}: DMABUF teardown`, function () {
  this.timeout(600000);
  let ctx: Context;

  before(async function () {
    requirePeer(this, PEERS.vm);
    ctx = await createContext('local:', { timeoutMs: 20000 });
  });
  after(async () => ctx?.close());

  let adc: string;
  before(function () {
    if (kernel !== '6.12') this.skip(); // the DMA buffer devices exist on 6.12 only
    adc = deviceDir('dma_adc');
    writeFileSync(join(adc, 'sampling_frequency'), '0');
  });

  it('close with blocks held by JS: they stay readable, nothing is left open', async () => {
    const fdsBefore = fdTargets();
    // In a function of its own, so that nothing reaches the buffer or its blocks after.
    const scenario = async (): Promise<void> => {
      const buf = await ctx.device('dma_adc').createBuffer(SAMPLES, { channels: CH });
      const held: Array<{ block: Block; copy: Buffer }> = [];
      const it = buf.stream()[Symbol.asyncIterator]();
      for (let i = 0; i < 3; i++) {
        const r = await it.next();
        assert.ok(!r.done);
        held.push({ block: r.value, copy: Buffer.from(r.value.data) });
      }
      await buf.close();
      assertClean(adc, fdsBefore);
      for (const h of held) assert.ok(h.block.data.equals(h.copy), 'held blocks unchanged');
      const c = new PatternChecker();
      for (const h of held) c.check(h.block.data);
      assert.equal(c.mismatches, 0, String(c));
      await it.return(undefined);
    };
    await scenario();
    await assertDetached(ctx, 'dma_adc');
    // Once JS lets go, the collector unmaps the DMABUFs.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    for (let i = 0; i < 20 && dmabufMappings().length; i++) {
      gc();
      await sleep(50);
    }
    assert.deepEqual(dmabufMappings(), [], 'no DMABUF mapped any more');
  });

  const HOW = {
    throw: 'a throw in the consumer (unhandled rejection)',
    callback: 'a throw in a callback (uncaught exception)',
    exit: 'process.exit()',
    SIGINT: 'SIGINT',
  } as const;
  for (const how of Object.keys(HOW) as Array<keyof typeof HOW>) {
    it(`${HOW[how]} with blocks held: disabled, detached, no fd left`, async () => {
      const script = `
          const fs = require('fs');
          const { createContext } = require(${JSON.stringify(join(ROOT, 'dist', 'src', 'index.js'))});
          (async () => {
            const ctx = await createContext('local:', { timeoutMs: 20000 });
            const buf = await ctx.device('dma_adc').createBuffer(65000, { channels: ['voltage0', 'voltage1'] });
            // After the library's own exit hook (registered when the buffer opened).
            process.on('exit', () => {
              const fds = fs.readdirSync('/proc/self/fd').map((f) => {
                try { return fs.readlinkSync('/proc/self/fd/' + f); } catch { return ''; }
              });
              fs.writeSync(1, JSON.stringify(fds) + '\\n');
            });
            const held = [];
            for await (const b of buf.stream()) { held.push(b); if (held.length === 3) break; }
            const how = ${JSON.stringify(how)};
            if (how === 'throw') throw new Error('consumer bug');
            if (how === 'callback') setImmediate(() => { throw new Error('consumer bug'); });
            if (how === 'exit') process.exit(3);
            fs.writeSync(2, 'ready\\n');
            setInterval(() => held.length, 1000);
          })();
        `;
      const child = spawn(process.execPath, ['-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (how === 'SIGINT' && err.includes('ready')) child.kill('SIGINT');
      });
      const [status, signal] = await new Promise<[number | null, string | null]>((r) =>
        child.on('close', (s, sig) => r([s, sig])),
      );
      if (how === 'SIGINT') assert.equal(signal, 'SIGINT', err);
      else {
        assert.equal(status, how === 'exit' ? 3 : 1, err);
        if (how !== 'exit') assert.match(err, /consumer bug/);
        const fds = JSON.parse(out.trim().split('\n').pop() ?? '[]') as string[];
        assert.deepEqual(
          fds.filter((t) => /^\/dmabuf:|sync_file|iio:/.test(t)),
          [],
          'its exit hook closed every DMABUF, fence and IIO fd',
        );
      }
      assert.equal(read(join(adc, 'buffer0', 'enable')), '0');
      await assertDetached(ctx, 'dma_adc');
    });
  }
});
