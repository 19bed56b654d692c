/**
 * The Node-RED nodes on the VM's DMA buffers (Linux 6.12, iio_dma_loopback.ko):
 * - iio-capture on dma_adc: 256 MiB, the counter continuous, every payload the memory of
 *   a DMABUF (an address inside a /dmabuf mapping), given back with msg.iio.release();
 *   with transfer read()/write() the payloads are ordinary memory;
 * - iio-push into dma_dac, one-shot and cyclic: the device counts 0 mismatches and the
 *   scans expected, in DMABUF blocks;
 * - after a redeploy nothing is left enabled, attached or open (/proc/self/fd);
 * - on both kernels: transfer DMABUF on a kfifo device is an error that reaches Catch.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PatternChecker, patternScans } from '../helpers/counter-pattern';
import { nativeTestHooks } from '../helpers/native-hooks';
import { PEERS, requirePeer } from '../helpers/peers';
import {
  IIO_NODES,
  coreNode,
  helper,
  loadFlow,
  nextMessages,
  node,
  type FlowItem,
} from '../nodes/helpers';

const kernel = process.env.IIO_VM_KERNEL ?? '6.1';
const SYS = '/sys/bus/iio/devices';
const read = (p: string): string => readFileSync(p, 'utf8').trim();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Not a multiple of 65536 scans: a lost or repeated block breaks the counter. */
const SAMPLES = 250000;
const TOTAL_SCANS = (256 * 1024 * 1024) / 4;

function deviceDir(name: string): string {
  const d = readdirSync(SYS).find(
    (e) => e.startsWith('iio:device') && read(join(SYS, e, 'name')) === name,
  );
  assert.ok(d, `${name} in ${SYS}`);
  return join(SYS, d);
}

let mappings: Array<[bigint, bigint]> = [];
/** Whether an address lies in one of this process's DMABUF mappings (/proc/self/maps). */
function inDmabufMapping(addr: bigint): boolean {
  const hit = (): boolean => mappings.some(([lo, hi]) => addr >= lo && addr < hi);
  if (hit()) return true;
  // Read again only on a miss: reading it for every block would slow the consumer down.
  mappings = read('/proc/self/maps')
    .split('\n')
    .filter((l) => l.endsWith(' /dmabuf:'))
    .map((l) => {
      const [a, b] = l.split(' ')[0].split('-');
      return [BigInt(`0x${a}`), BigInt(`0x${b}`)];
    });
  return hit();
}

const ctxNode: FlowItem = { id: 'ctx', type: 'iio-context', uri: 'local:', reconnect: 0 };
const CATCH = coreNode('common/25-catch.js');

/** DMABUF, fence and IIO fds this process has open. */
function streamFds(): string[] {
  const out: string[] = [];
  for (const f of readdirSync('/proc/self/fd')) {
    try {
      const t = readlinkSync(`/proc/self/fd/${f}`);
      if (/^\/dmabuf:|sync_file|iio:/.test(t)) out.push(t);
    } catch {
      // the directory's own fd, gone by now
    }
  }
  return out;
}

/**
 * No DMABUF or fence fd at all (none may outlive its stream, whichever test opened it),
 * and the IIO fds as before.
 */
function assertNoStreamFds(before: string[]): void {
  const now = streamFds();
  assert.deepEqual(
    now.filter((t) => !t.includes('iio:')),
    [],
    'no DMABUF or fence fd left open',
  );
  assert.deepEqual(now, before, 'the IIO fds as before');
}

describe(`kernel ${kernel}: Node-RED nodes, transfer DMABUF forced on a kfifo device`, function () {
  this.timeout(600000);
  before(function () {
    requirePeer(this, PEERS.vm);
  });
  afterEach(() => helper.unload());

  for (const type of ['iio-capture', 'iio-push'] as const) {
    it(`${type}: the error names the reason and reaches Catch; nothing is left open`, async () => {
      const before = streamFds();
      const dev = type === 'iio-capture' ? 'dummy0' : 'loopback_dac';
      await loadFlow(
        [...IIO_NODES, CATCH],
        [
          { ...ctxNode, z: 'f' },
          {
            id: 'n',
            type,
            z: 'f',
            context: 'ctx',
            device: dev,
            channels: 'voltage0',
            samples: 16,
            transfer: 'dmabuf',
            ...(type === 'iio-capture' ? { trigger: 'hrtimer0', frequency: 100 } : {}),
            wires: [['out']],
          },
          { id: 'out', type: 'helper', z: 'f' },
          { id: 'c', type: 'catch', z: 'f', scope: null, uncaught: false, wires: [['caught']] },
          { id: 'caught', type: 'helper', z: 'f' },
        ],
      );
      const caught = nextMessages('caught', 1, 300000);
      if (type === 'iio-push') node('n').receive({ payload: Buffer.alloc(32) });
      const [m] = await caught;
      const e = m.error as { code?: string; message: string; source?: { id: string } };
      assert.equal(e.source?.id, 'n');
      // 6.12's kfifo buffers refuse DMABUFs (EPERM); 6.1's buffer fds have no such ioctls.
      assert.equal(e.code, kernel === '6.12' ? 'EPERM' : 'ENOTTY', e.message);
      assert.match(e.message, /DMABUF transfer was asked for/);
      await helper.unload();
      assertNoStreamFds(before);
    });
  }
});

interface CaptureMsg {
  payload: Buffer;
  iio: { seq: number; samples: number; dropped: number; lost: number; release?: () => void };
}

describe(`kernel ${kernel}: Node-RED nodes on DMABUF`, function () {
  this.timeout(600000);
  before(function () {
    requirePeer(this, PEERS.vm);
    if (kernel !== '6.12') this.skip(); // dma_adc / dma_dac exist on 6.12 only
  });
  afterEach(() => helper.unload());

  /** Runs a capture flow until `scans` scans came; checks each payload as it arrives. */
  async function capture(
    transfer: string,
    scans: number,
  ): Promise<{ checker: PatternChecker; blocks: number; inDmabuf: number; released: number }> {
    await loadFlow(IIO_NODES, [
      ctxNode,
      {
        id: 'cap',
        type: 'iio-capture',
        context: 'ctx',
        device: 'dma_adc',
        channels: 'voltage0,voltage1',
        samples: SAMPLES,
        transfer,
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ]);
    const hooks = nativeTestHooks();
    const checker = new PatternChecker();
    let blocks = 0;
    let inDmabuf = 0;
    let released = 0;
    await new Promise<void>((resolve, reject) => {
      node('out').on('input', (m: CaptureMsg) => {
        try {
          assert.equal(m.iio.seq, blocks, 'no block dropped');
          assert.equal(m.iio.dropped, 0);
          assert.equal(m.iio.lost, 0);
          if (inDmabufMapping(hooks.addressOf(m.payload))) inDmabuf++;
          const n = Math.min(m.iio.samples, scans - checker.scans);
          checker.check(m.payload.subarray(0, n * 4));
          blocks++;
          if (m.iio.release) {
            m.iio.release();
            m.iio.release(); // a second call changes nothing
            released++;
          }
          if (checker.scans >= scans) resolve();
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    return { checker, blocks, inDmabuf, released };
  }

  it('iio-capture: 256 MiB from dma_adc, counter continuous, payloads are DMABUF memory', async () => {
    const adc = deviceDir('dma_adc');
    const fdsBefore = streamFds();
    const r = await capture('auto', TOTAL_SCANS);
    assert.equal(r.checker.scans, TOTAL_SCANS);
    assert.equal(r.checker.mismatches, 0, String(r.checker));
    assert.equal(r.released, r.blocks, 'each message carried release()');
    assert.equal(r.inDmabuf, r.blocks, 'every payload is a view of a DMABUF: never copied');
    assert.ok(Number(read(join(adc, 'blocks_done'))) >= r.blocks);
    await helper.unload();
    assert.equal(read(join(adc, 'buffer0', 'enable')), '0');
    assertNoStreamFds(fdsBefore);
  });

  it('iio-capture with transfer read()/write(): same counter, ordinary memory', async () => {
    const r = await capture('fileio', 16 * SAMPLES);
    assert.equal(r.checker.mismatches, 0, String(r.checker));
    assert.equal(r.inDmabuf, 0);
  });

  it('iio-push one-shot into dma_dac: every scan played, 0 mismatches, one DMABUF per message', async () => {
    const dac = deviceDir('dma_dac');
    const fdsBefore = streamFds();
    await loadFlow(IIO_NODES, [
      ctxNode,
      {
        id: 'push',
        type: 'iio-push',
        context: 'ctx',
        device: 'dma_dac',
        channels: 'voltage0,voltage1',
        samples: 65000,
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ]);
    const messages = 16;
    const done = nextMessages('out', messages, 300000);
    for (let i = 0; i < messages; i++)
      node('push').receive({ payload: patternScans(i * 65000, 65000) });
    await done;
    const total = messages * 65000;
    for (let i = 0; i < 600 && Number(read(join(dac, 'scans_consumed'))) < total; i++)
      await sleep(100);
    assert.equal(Number(read(join(dac, 'scans_consumed'))), total);
    assert.equal(read(join(dac, 'mismatches')), '0');
    // read()/write() would complete the kernel's own blocks (length / 2 scans each).
    assert.equal(Number(read(join(dac, 'blocks_done'))), messages, 'one DMABUF per message');
    await helper.unload();
    assert.equal(read(join(dac, 'buffer0', 'enable')), '0');
    assertNoStreamFds(fdsBefore);
  });

  it('iio-push cyclic into dma_dac: the waveform repeats, 0 mismatches', async () => {
    const dac = deviceDir('dma_dac');
    const fdsBefore = streamFds();
    await loadFlow(IIO_NODES, [
      ctxNode,
      {
        id: 'push',
        type: 'iio-push',
        context: 'ctx',
        device: 'dma_dac',
        channels: 'voltage0,voltage1',
        cyclic: true,
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ]);
    const done = nextMessages('out', 1, 300000);
    // 65536 scans: the 16-bit counter wraps exactly at the end of the waveform.
    node('push').receive({ payload: patternScans(0, 65536) });
    await done;
    let consumed = 0;
    for (let i = 0; i < 600 && consumed < 4 * 65536; i++) {
      await sleep(100);
      consumed = Number(read(join(dac, 'scans_consumed')));
    }
    assert.ok(consumed >= 4 * 65536, `${consumed} scans played`);
    assert.equal(read(join(dac, 'mismatches')), '0');
    assert.equal(read(join(dac, 'blocks_done')), '0', 'a cyclic DMABUF never completes');
    await helper.unload();
    assert.equal(read(join(dac, 'buffer0', 'enable')), '0');
    assertNoStreamFds(fdsBefore);
  });
});
