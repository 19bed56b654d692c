/**
 * Device identity across "boots" on the real kernel (issue 14 item 2): configfs makes
 * iio_dummy devices in one order, a flow is saved against them (devices by name, the ids
 * they had as hints), the devices are destroyed and made again in the other order — their
 * iio:deviceN ids swap — and the same flow still writes to the device it names (read back
 * from sysfs by name, not through the library). A device that is gone is an error at
 * deploy naming the id it had. Kept small: Node-RED is slow to load under emulation.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { PEERS, requirePeer } from '../helpers/peers';
import {
  IIO_NODES,
  coreNode,
  helper,
  loadFlow,
  nextMessages,
  node,
  statusSeen,
  type FlowItem,
} from '../nodes/helpers';

const SYS = '/sys/bus/iio/devices';
const CONFIGFS = '/sys/kernel/config/iio/devices/dummy';
const CATCH = coreNode('common/25-catch.js');
const NAMES = ['nrid_a', 'nrid_b'];

const read = (p: string): string => readFileSync(p, 'utf8').trim();

/** The sysfs id of the device with this name (found by its `name` file). */
function idOf(name: string): string | undefined {
  return readdirSync(SYS).find(
    (e) => e.startsWith('iio:device') && read(join(SYS, e, 'name')) === name,
  );
}

function make(names: string[]): void {
  for (const n of names) mkdirSync(join(CONFIGFS, n));
}

function destroy(): void {
  for (const n of NAMES) if (existsSync(join(CONFIGFS, n))) rmdirSync(join(CONFIGFS, n));
}

function writer(id: string, device: string, hint: string): FlowItem {
  return {
    id,
    type: 'iio-attr-write',
    context: 'ctx',
    device,
    deviceId: hint,
    channel: 'voltage0',
    direction: 'out',
    attr: 'raw',
    z: 'f',
    wires: [['out']],
  };
}

describe('kernel: a flow names iio_dummy devices by name across creation orders', function () {
  this.timeout(600000);
  before(function () {
    requirePeer(this, PEERS.vm);
    destroy();
  });
  afterEach(() => helper.unload());
  after(() => destroy());

  it('writes to the device it names whichever iio:deviceN it got, and says so when it is gone', async function () {
    make(NAMES);
    const firstIds = NAMES.map(idOf);
    assert.ok(firstIds.every(Boolean), `made: ${firstIds.join(' ')}`);
    // The flow as the dialog saves it in this "boot": names, with the ids as hints.
    const flow: FlowItem[] = [
      { id: 'ctx', type: 'iio-context', uri: 'local:', reconnect: 0 },
      writer('wa', 'nrid_a', firstIds[0]!),
      writer('wb', 'nrid_b', firstIds[1]!),
      { id: 'out', type: 'helper', z: 'f' },
      { id: 'c', type: 'catch', z: 'f', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'f' },
    ];

    const run = async (a: number, b: number): Promise<void> => {
      await loadFlow([...IIO_NODES, CATCH], flow);
      const got = nextMessages('out', 2, 300000);
      node('wa').receive({ payload: a });
      node('wb').receive({ payload: b });
      const msgs = await got;
      assert.deepEqual(msgs.map((m) => m.topic).sort(), [
        'nrid_a/voltage0/raw',
        'nrid_b/voltage0/raw',
      ]);
      assert.equal(read(join(SYS, idOf('nrid_a')!, 'out_voltage0_raw')), String(a));
      assert.equal(read(join(SYS, idOf('nrid_b')!, 'out_voltage0_raw')), String(b));
      await helper.unload();
    };
    await run(11, 22);

    // Another "boot": the same devices made in the other order swap their ids.
    destroy();
    make([...NAMES].reverse());
    const secondIds = NAMES.map(idOf);
    assert.notDeepEqual(secondIds, firstIds, 'the ids changed');
    await run(33, 44);

    // nrid_a is gone: the flow says so at deploy, naming the id it had.
    rmdirSync(join(CONFIGFS, 'nrid_a'));
    await loadFlow([...IIO_NODES, CATCH], flow);
    const [m] = await nextMessages('caught', 1, 300000);
    const e = m.error as { code?: string; message: string; source?: { id: string } };
    assert.equal(e.code, 'ENODEV');
    assert.equal(e.source?.id, 'wa');
    assert.match(e.message, new RegExp(`no device "nrid_a" \\(it was ${firstIds[0]} when`));
    await statusSeen('wa', (s) => s.fill === 'red' && /^ENODEV/.test(s.text ?? ''), 60000);
  });
});
