/**
 * iio-attr-read / iio-attr-write / iio-context on `local:` over copies of the VM's sysfs
 * (test/fixtures/sysfs, Linux 6.1 and 6.12): what the nodes read is what the files hold,
 * what they write lands in the files, and the editor's device list is the tree's.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContextDescription } from '../../src/nodes/iio-context';
import {
  copySnapshot,
  loadSnapshot,
  snapshotNames,
  snapshotOptions,
  withSnapshotBackend,
} from '../helpers/sysfs-snapshot';
import {
  IIO_NODES,
  coreNode,
  helper,
  loadFlow,
  nextMessages,
  node,
  CATCH_TO_HELPER,
} from './helpers';

const CATCH = coreNode('common/25-catch.js');

for (const name of snapshotNames()) {
  describe(`nodes: attribute nodes on local: (${name} sysfs copy)`, function () {
    const snap = loadSnapshot(name);
    const copy = copySnapshot(snap);
    const devices = join(copy.root, 'bus', 'iio', 'devices');
    const file = (...p: string[]): string =>
      readFileSync(join(devices, ...p), 'utf8')
        .replace(/\0/g, '')
        .trim();

    after(() => copy.remove());
    afterEach(() => helper.unload());

    const run = <T>(f: () => Promise<T>): Promise<T> =>
      withSnapshotBackend(snapshotOptions(snap, copy.root), f);

    it('reads dummy0 attributes as the files hold them', async function () {
      await run(async () => {
        await loadFlow(IIO_NODES, [
          { id: 'ctx', type: 'iio-context', uri: 'local:', reconnect: 0 },
          {
            id: 'readRaw',
            type: 'iio-attr-read',
            context: 'ctx',
            device: 'dummy0',
            channel: 'voltage0',
            attr: 'raw',
            wires: [['out']],
          },
          {
            id: 'readName',
            type: 'iio-attr-read',
            context: 'ctx',
            device: 'iio:device0',
            attr: 'current_timestamp_clock',
            output: 'string',
            wires: [['out2']],
          },
          { id: 'out', type: 'helper' },
          { id: 'out2', type: 'helper' },
        ]);
        const a = nextMessages('out');
        const b = nextMessages('out2');
        node('readRaw').receive({});
        node('readName').receive({});
        const [[m1], [m2]] = await Promise.all([a, b]);
        assert.equal(m1.payload, Number(file('iio:device0', 'in_voltage0_raw')));
        assert.equal(String(m2.payload).trim(), file('iio:device0', 'current_timestamp_clock'));
      });
    });

    it('writes through to sysfs and reports what reads back', async function () {
      await run(async () => {
        await loadFlow(IIO_NODES, [
          { id: 'ctx', type: 'iio-context', uri: 'local:', reconnect: 0 },
          {
            id: 'w',
            type: 'iio-attr-write',
            context: 'ctx',
            device: 'dummy0',
            channel: 'voltage0',
            attr: 'offset',
            wires: [['out']],
          },
          { id: 'out', type: 'helper' },
        ]);
        const got = nextMessages('out');
        node('w').receive({ payload: 12 });
        const [m] = await got;
        assert.equal(file('iio:device0', 'in_voltage0_offset'), '12');
        assert.equal((m.iio as { written: string }).written, '12');
        assert.equal((m.iio as { readBack: number }).readBack, 12);
      });
    });

    it('sends a missing device to Catch (ENODEV, naming local:)', async function () {
      await run(async () => {
        await loadFlow(
          [...IIO_NODES, CATCH],
          [
            { id: 'ctx', type: 'iio-context', uri: 'local:', reconnect: 0 },
            {
              id: 'r',
              type: 'iio-attr-read',
              context: 'ctx',
              device: 'nope',
              attr: 'name',
              z: 'f',
              wires: [['out']],
            },
            ...CATCH_TO_HELPER,
          ],
        );
        const got = nextMessages('caught');
        node('r').receive({});
        const [m] = await got;
        assert.match(m.error?.message ?? '', /ENODEV.*nope.*local:/);
      });
    });

    it("lists the tree's devices and channels for the editor", async function () {
      await run(async () => {
        await loadFlow(IIO_NODES, [
          { id: 'ctx', type: 'iio-context', uri: 'local:', reconnect: 0 },
          {
            id: 'r',
            type: 'iio-attr-read',
            context: 'ctx',
            device: 'dummy0',
            attr: 'name',
            wires: [[]],
          },
        ]);
        const cfg = helper.getNode('ctx') as unknown as { handle: { ready(): Promise<unknown> } };
        await cfg.handle.ready();
        const res = await helper
          .request()
          .get('/iio/devices')
          .query({ node: 'ctx', uri: 'local:' })
          .expect(200);
        const desc = res.body as ContextDescription;
        const ids = desc.devices.map((d) => d.id);
        const onDisk = ['iio:device0', 'iio:device1', 'iio:device2', 'iio:device3'].filter((d) => {
          try {
            file(d, 'name');
            return true;
          } catch {
            return false;
          }
        });
        for (const d of onDisk) assert.ok(ids.includes(d), `${d} listed`);
        const dummy = desc.devices.find((d) => d.name === 'dummy0');
        assert.ok(
          dummy?.channels.some((c) => c.id === 'voltage0' && !c.isOutput && c.isScanElement),
        );
        assert.ok(
          dummy?.attrs.includes('sampling_frequency') ||
            dummy?.channels.some((c) => c.attrs.includes('raw')),
        );
      });
    });
  });
}
