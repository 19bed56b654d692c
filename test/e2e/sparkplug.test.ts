/**
 * The Sparkplug example (examples/sparkplug.json) in a real Node-RED process, in the fleet
 * topology: the edge node publishes to one mosquitto, the test host subscribes on a second
 * one bridged to it. Every device of emu: is born on the far broker, a DCMD sent there
 * reaches the device (read back through the library over the context's iiod server), and
 * after `kill -9` of Node-RED the far broker delivers the NDEATH will with the births'
 * bdSeq within the keep-alive. The host's view is rendered and photographed in chromium (the
 * README's picture: test/e2e/artifacts/, and docs/images/ with UPDATE_SCREENSHOTS=1).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext } from '../../src/create-context';
import type { FlowNode } from '../../scripts/start';
import { startMosquitto, freePort, type Mosquitto } from '../helpers/mosquitto';
import { PEERS, requirePeer } from '../helpers/peers';
import { SparkplugHost, type HostEdge } from '../helpers/sparkplug-host';
import { ROOT } from '../nodes/helpers';
import { startNodeRed, type RunningNodeRed } from './node-red';
import { hostViewHtml } from './sparkplug-view';

const SPARKPLUG_NODE = 'd9n0000000000001';
const CONTEXT_NODE = 'iioc000000000001';
const KEEPALIVE_S = 4;
const DEVICES = ['ad5689-emu', 'ad7606-emu', 'adxl345-emu', 'emu-trig0'];

describe('e2e: Sparkplug example in Node-RED, bridged brokers, kill -9', function () {
  this.timeout(120000);
  let edgeBroker: Mosquitto | undefined;
  let hostBroker: Mosquitto | undefined;
  let host: SparkplugHost | undefined;
  let nr: RunningNodeRed | undefined;
  let servePort = 0;
  let e: HostEdge;

  before(async function () {
    requirePeer(this, PEERS.mosquitto);
    edgeBroker = await startMosquitto();
    hostBroker = await startMosquitto({ bridgeTo: edgeBroker.port });
    host = await SparkplugHost.connect(hostBroker.url);
    servePort = await freePort();
    const example = JSON.parse(
      readFileSync(join(ROOT, 'examples', 'sparkplug.json'), 'utf8'),
    ) as FlowNode[];
    // The example as shipped: its tab enabled, the brokers on our ports, the context served
    // over iiod so the test can read the device back through the library.
    const flows = example.map((n): FlowNode => {
      if (n.type === 'tab') return { ...n, disabled: false };
      if (n.id === SPARKPLUG_NODE) return { ...n, broker: edgeBroker!.url, keepalive: KEEPALIVE_S };
      if (n.type === 'mqtt-broker')
        return { ...n, broker: '127.0.0.1', port: String(edgeBroker!.port) };
      if (n.id === CONTEXT_NODE) return { ...n, serve: true, servePort, serveHost: '127.0.0.1' };
      return n;
    });
    nr = await startNodeRed(flows);
    e = await host.waitFor(
      () => {
        const x = host!.edge('IIO', 'emu-edge');
        return x && DEVICES.every((d) => x.devices.get(d)?.online) ? x : undefined;
      },
      30000,
      'every device of emu: born on the bridged broker',
    );
  });

  after(async function () {
    if (nr) {
      if (nr.child.exitCode === null && nr.child.signalCode === null) await nr.stop();
      else rmSync(nr.userDir, { recursive: true, force: true });
    }
    await host?.close();
    await hostBroker?.stop();
    await edgeBroker?.stop();
  });

  it('births every device of the default context on the far broker, by the rules', function () {
    assert.deepEqual([...e.devices.keys()].sort(), DEVICES);
    assert.equal(e.metrics.get('Context/URI')?.value, 'emu:');
    assert.deepEqual(host!.violations, []);
  });

  it('a DCMD sent on the far broker reaches the device (read back through the library)', async function () {
    const d = e.devices.get('ad7606-emu')!;
    const from = d.data.length;
    await host!.dcmd('IIO', 'emu-edge', 'ad7606-emu', [
      {
        alias: host!.alias('IIO', 'emu-edge', 'ad7606-emu', 'Attributes/sampling_frequency'),
        value: 500,
      },
    ]);
    const answer = await host!.waitFor(
      () => d.data.slice(from).find((x) => x.name === 'Last Command/Result'),
      60000,
      'the DCMD answer',
    );
    assert.equal(answer.value, 'OK');
    const ctx = await createContext(`ip:127.0.0.1:${servePort}`, { timeoutMs: 5000 });
    try {
      assert.equal((await ctx.device('ad7606-emu').readAttr('sampling_frequency')).trim(), '500');
    } finally {
      await ctx.close();
    }
  });

  it('shows what the host saw (chromium screenshot of the host view)', async function () {
    requirePeer(this, PEERS.chromium);
    // A few intervals of data first, so the aggregates have values.
    const adc = e.devices.get('ad7606-emu')!;
    await host!.waitFor(
      () => adc.data.filter((x) => x.name === 'Inputs/voltage0/Mean').length >= 2 || undefined,
      // generous: on a loaded CI machine the flow (now at 500 S/s) may take a while
      60000,
      'aggregates',
    );
    const dir = mkdtempSync(join(tmpdir(), 'iiokit-spview-'));
    const page = join(dir, 'view.html');
    writeFileSync(page, hostViewHtml(e, host!.log, `127.0.0.1:${hostBroker!.port} (bridged)`));
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const p = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      await p.goto(`file://${page}`);
      assert.match((await p.textContent('h1')) ?? '', /spBv1\.0\/IIO\/emu-edge/);
      assert.ok((await p.locator('section').count()) >= 5, 'the edge node and its four devices');
      const artifacts = join(ROOT, 'test', 'e2e', 'artifacts');
      mkdirSync(artifacts, { recursive: true });
      const file = join(artifacts, 'sparkplug-host.png');
      await p.screenshot({ path: file });
      if (process.env.UPDATE_SCREENSHOTS === '1')
        copyFileSync(file, join(ROOT, 'docs', 'images', 'sparkplug-host.png'));
    } finally {
      await browser.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('after kill -9 of Node-RED the far broker delivers NDEATH with the births’ bdSeq within the keep-alive', async function () {
    const bdSeq = e.bdSeq;
    assert.equal(typeof bdSeq, 'number');
    const deaths = e.deaths.length;
    const killedAt = Date.now();
    const exited = new Promise((r) => nr!.child.once('exit', r));
    nr!.child.kill('SIGKILL');
    await exited;
    // The broker sends the will at the latest 1.5 keep-alives after the last packet
    // (MQTT 3.1.1 §3.1.2.10); the bridge adds its hop. Waiting longer would not be the spec.
    const death = await host!.waitFor(() => e.deaths[deaths], KEEPALIVE_S * 1500 + 3000, 'NDEATH');
    assert.equal(death.bdSeq, bdSeq);
    assert.ok(death.receivedAt >= killedAt);
    assert.equal(e.online, false);
    assert.ok(
      [...e.devices.values()].every((d) => !d.online),
      'its devices are offline too',
    );
    assert.deepEqual(host!.violations, []);
  });
});
