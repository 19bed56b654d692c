/**
 * The Node-RED nodes against the VM's real IIO subsystem (local:), in Node-RED 4 through
 * node-red-node-test-helper:
 * - iio-capture on dummy0 delivers the scans the driver pushes (iio_simple_dummy_buffer's
 *   fakedata 7, -33, -2, 344), laid out as sysfs describes them (`*_index`, `*_type`), with
 *   the scale and offset sysfs reports;
 * - iio-attr-read returns what the sysfs files hold; iio-event fires on iio_evgen pokes;
 * - repeated redeploys leave no file descriptor open and no buffer enabled.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ChannelMeta } from '../../src/nodes/capture-message';
import { PEERS, requirePeer } from '../helpers/peers';
import {
  IIO_NODES,
  helper,
  loadFlow,
  nextMessages,
  node,
  type FlowItem,
  type TestMsg,
} from '../nodes/helpers';

const SYS = '/sys/bus/iio/devices';
const read = (p: string): string => readFileSync(p, 'utf8').trim();
const FAKEDATA: Record<string, number> = {
  voltage0: 7,
  'voltage1-voltage2': -33,
  'voltage3-voltage4': -2,
  accel_x: 344,
};

function deviceDir(name: string): string {
  const d = readdirSync(SYS).find(
    (e) => e.startsWith('iio:device') && read(join(SYS, e, 'name')) === name,
  );
  assert.ok(d, `${name} in ${SYS}`);
  return join(SYS, d);
}

/** Where buffer 0's scan elements live on this kernel. */
function scanDir(dev: string): string {
  return existsSync(join(dev, 'buffer0', 'in_voltage0_en'))
    ? join(dev, 'buffer0')
    : join(dev, 'scan_elements');
}

function bufferEnabled(dev: string): string {
  return read(
    join(dev, existsSync(join(dev, 'buffer0', 'enable')) ? 'buffer0' : 'buffer', 'enable'),
  );
}

/**
 * A full garbage collection. Blocks sent as payloads keep their native stream's memory
 * (and its eventfd) until the last one is collected, by design (zero copy): count fds
 * after the collector has run, as a long-running Node-RED eventually does.
 */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 300));
  }
}

const ctxNode: FlowItem = { id: 'ctx', type: 'iio-context', uri: 'local:', reconnect: 0 };

describe('kernel: Node-RED nodes on local:', function () {
  this.timeout(300000);
  before(function () {
    requirePeer(this, PEERS.vm);
  });
  afterEach(() => helper.unload());

  it('iio-attr-read reads what sysfs holds', async function () {
    const dev = deviceDir('dummy0');
    await loadFlow(IIO_NODES, [
      ctxNode,
      {
        id: 'rd',
        type: 'iio-attr-read',
        context: 'ctx',
        device: 'dummy0',
        channel: 'voltage0',
        attr: 'raw',
        wires: [['out']],
      },
      { id: 'out', type: 'helper' },
    ]);
    const got = nextMessages('out', 1, 120000);
    node('rd').receive({});
    const [m] = await got;
    assert.equal(m.payload, Number(read(join(dev, 'in_voltage0_raw'))));
  });

  describe('with buffers', function () {
    it('iio-capture delivers dummy0 scans as the driver pushes them, in the layout sysfs gives', async function () {
      const dev = deviceDir('dummy0');
      const scan = scanDir(dev);
      await loadFlow(IIO_NODES, [
        ctxNode,
        {
          id: 'cap',
          type: 'iio-capture',
          context: 'ctx',
          device: 'dummy0',
          channels: 'voltage0,voltage1-voltage2,accel_x,timestamp',
          samples: 16,
          trigger: 'hrtimer0',
          frequency: 100,
          wires: [['out']],
        },
        { id: 'out', type: 'helper' },
      ]);
      const msgs: TestMsg[] = await nextMessages('out', 3, 120000);
      for (const m of msgs) {
        const im = m.iio as { channels: ChannelMeta[]; scanBytes: number; samples: number };
        const buf = m.payload as Buffer;
        assert.ok(Buffer.isBuffer(buf));
        assert.equal(buf.length, im.samples * im.scanBytes);
        for (const c of im.channels) {
          const stem = c.id === 'timestamp' ? 'in_timestamp' : `in_${c.id}`;
          // Layout: the scan index and type sysfs reports.
          assert.equal(c.index, Number(read(join(scan, `${stem}_index`))));
          const sysType = read(join(scan, `${stem}_type`));
          assert.equal(c.format.toLowerCase(), sysType.replace(/X1(?=>>)/, '').toLowerCase());
          if (c.id === 'timestamp') continue;
          for (let k = 0; k < im.samples; k++) {
            const off = k * im.scanBytes + c.byteOffset;
            const bits = Number(/(\d+)\//.exec(c.format)![1]);
            const storage = Number(/\/(\d+)/.exec(c.format)![1]);
            assert.equal(storage, 16);
            let v = buf.readUInt16LE(off) & ((1 << bits) - 1);
            if (/:s/i.test(c.format) && v >= 1 << (bits - 1)) v -= 1 << bits;
            assert.equal(v, FAKEDATA[c.id], `${c.id} scan ${k}`);
          }
        }
        // Scale and offset as sysfs reports them.
        const v0 = im.channels.find((c) => c.id === 'voltage0')!;
        assert.equal(v0.scale, Number(read(join(dev, 'in_voltage0_scale'))));
        assert.equal(v0.offset, Number(read(join(dev, 'in_voltage0_offset'))));
      }
      await helper.unload();
      assert.equal(bufferEnabled(dev), '0', 'buffer disabled after close');
    });

    it('repeated redeploys leave no fd open and no buffer enabled', async function () {
      const dev = deviceDir('dummy0');
      const flow: FlowItem[] = [
        ctxNode,
        {
          id: 'cap',
          type: 'iio-capture',
          context: 'ctx',
          device: 'dummy0',
          channels: 'voltage0',
          samples: 4,
          trigger: 'hrtimer0',
          wires: [['out']],
        },
        {
          id: 'cap2',
          type: 'iio-capture',
          context: 'ctx',
          device: 'dummy0',
          channels: 'accel_x',
          samples: 4,
          output: 'channels',
          wires: [['out2']],
        },
        { id: 'ev', type: 'iio-event', context: 'ctx', device: 'dummy0', wires: [[]] },
        { id: 'out', type: 'helper' },
        { id: 'out2', type: 'helper' },
      ];
      const fds = (): number => readdirSync('/proc/self/fd').length;
      await loadFlow(IIO_NODES, flow);
      await nextMessages('out', 1, 120000);
      await helper.unload();
      await collect();
      const baseline = fds();
      const rounds = Number(process.env.IIOKIT_KERNEL_REDEPLOYS ?? 20);
      for (let i = 0; i < rounds; i++) {
        await loadFlow(IIO_NODES, flow);
        await Promise.all([nextMessages('out', 1, 120000), nextMessages('out2', 1, 120000)]);
        assert.equal(bufferEnabled(dev), '1');
        await helper.unload();
        assert.equal(bufferEnabled(dev), '0', `round ${i}: buffer disabled`);
      }
      await collect();
      assert.ok(fds() <= baseline, `fds: ${fds()} after ${rounds} rounds, ${baseline} before`);
    });

    it('iio-event sends the dummy event iio_evgen fires', async function () {
      const dev = deviceDir('dummy0');
      const events = join(dev, 'events');
      // Enable the dummy's voltage0 threshold event.
      writeFileSync(join(events, 'in_voltage0_thresh_rising_en'), '1');
      await loadFlow(IIO_NODES, [
        ctxNode,
        { id: 'ev', type: 'iio-event', context: 'ctx', device: 'dummy0', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]);
      const got = nextMessages('out', 1, 120000);
      // Give the node a moment to open the event fd, then poke (the dummy's event 0).
      await new Promise((r) => setTimeout(r, 3000));
      writeFileSync('/sys/bus/iio/devices/iio_evgen/poke_ev0', '1');
      const [m] = await got;
      const p = m.payload as { type: string; channelType: string };
      assert.equal(typeof p.type, 'string');
      assert.equal(typeof p.channelType, 'string');
    });
  });
});
