/**
 * The MQTT forwarding example (examples/mqtt-forwarding.json) against a real broker:
 * Debian's mosquitto on an ephemeral port. What iio-capture sent is what an mqtt-in node
 * receives, byte for byte; the retained layout topic carries msg.iio as JSON.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PEERS, requirePeer } from '../helpers/peers';
import {
  IIO_NODES,
  ROOT,
  coreNode,
  helper,
  loadFlow,
  nextMessages,
  node,
  type FlowItem,
  type TestMsg,
} from '../nodes/helpers';
import { freePort } from './node-red';

const CAPTURE = 'd2n0000000000001';
const MQTT_IN = 'd2n0000000000006';
const BROKER = 'd2b0000000000001';

async function waitForPort(port: number, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('e2e: MQTT forwarding example with mosquitto', function () {
  this.timeout(60000);
  let broker: ChildProcess | undefined;
  let dir = '';
  let port = 0;

  before(async function () {
    requirePeer(this, PEERS.mosquitto);
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'iiokit-mosq-'));
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
    broker = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
    await waitForPort(port);
  });

  after(async function () {
    await helper.unload();
    if (broker && broker.exitCode === null) {
      const exited = new Promise((r) => broker!.once('exit', r));
      broker.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('delivers the captured scans byte for byte, and the layout as retained JSON', async function () {
    // The example as shipped, with its tab enabled, the broker on our port, and test
    // probes where it has debug nodes.
    const example = JSON.parse(
      readFileSync(join(ROOT, 'examples', 'mqtt-forwarding.json'), 'utf8'),
    ) as Array<FlowItem & { wires?: string[][]; disabled?: boolean }>;
    const flow: FlowItem[] = example.map((n) => {
      if (n.type === 'tab') return { ...n, disabled: false };
      if (n.id === BROKER) return { ...n, broker: '127.0.0.1', port: String(port) };
      if (n.id === CAPTURE) return { ...n, wires: [[...(n.wires?.[0] ?? []), 'sent']] };
      if (n.id === MQTT_IN) return { ...n, wires: [['received']] };
      return n;
    });
    const tab = example.find((n) => n.type === 'tab')!.id;
    flow.push({ id: 'sent', type: 'helper', z: tab });
    flow.push({ id: 'received', type: 'helper', z: tab });
    flow.push({
      id: 'layoutIn',
      type: 'mqtt in',
      z: tab,
      topic: 'iio/emu/ad7606-emu/layout',
      qos: '1',
      datatype: 'json',
      broker: BROKER,
      nl: false,
      rap: true,
      rh: 0,
      inputs: 0,
      wires: [['layout']],
    });
    flow.push({ id: 'layout', type: 'helper', z: tab });

    const sent: Buffer[] = [];
    const sentMeta: TestMsg[] = [];
    await loadFlow(
      [
        ...IIO_NODES,
        coreNode('network/10-mqtt.js'),
        coreNode('function/15-change.js'),
        coreNode('function/89-delay.js'),
        coreNode('common/21-debug.js'),
      ],
      flow,
    );
    node('sent').on('input', ((m: TestMsg) => {
      // Keep our own copy: the payload is the device's block (never written by anyone).
      sent.push(Buffer.from(m.payload as Buffer));
      sentMeta.push(m);
    }) as (arg: never) => void);
    const received = await nextMessages('received', 20, 30000);
    const [layout] = await nextMessages('layout', 1, 30000);

    const first = received[0].payload as Buffer;
    const start = sent.findIndex((b) => b.equals(first));
    assert.ok(start >= 0, 'the first received message is one the capture node sent');
    received.forEach((m, i) => {
      assert.ok(Buffer.isBuffer(m.payload));
      assert.equal(m.topic, 'iio/emu/ad7606-emu/scans');
      assert.ok(sent[start + i], `sent message ${start + i}`);
      assert.ok((m.payload as Buffer).equals(sent[start + i]), `message ${i} identical`);
    });
    // The scans have the layout the capture node described.
    const meta = sentMeta[start].iio as { scanBytes: number; samples: number };
    assert.equal(first.length, meta.scanBytes * meta.samples);
    // The retained layout topic: msg.iio as JSON.
    const l = layout.payload as {
      device: string;
      scanBytes: number;
      channels: Array<{ id: string; byteOffset: number; format: string }>;
    };
    assert.equal(l.device, 'iio:device0');
    assert.equal(l.scanBytes, meta.scanBytes);
    assert.deepEqual(
      l.channels.map((c) => c.id),
      ['voltage0', 'voltage1', 'voltage2', 'voltage3', 'timestamp'],
    );
  });
});
