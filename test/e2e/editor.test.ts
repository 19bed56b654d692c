/**
 * The editor in a real browser (Debian's chromium through playwright-core): the example
 * flows running on emu:, the capture node's dialog filled from the running context,
 * a deploy, the node's status changing, and the Dashboard 2 chart. Screenshots go to
 * test/e2e/artifacts/; with UPDATE_SCREENSHOTS=1 also to docs/images/ (the README's).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { PEERS, requirePeer } from '../helpers/peers';
import { ROOT } from '../nodes/helpers';
import { startNodeRed, type RunningNodeRed } from './node-red';

const ARTIFACTS = join(ROOT, 'test', 'e2e', 'artifacts');
const IMAGES = join(ROOT, 'docs', 'images');
const CAPTURE_ID = 'd1n0000000000001'; // "ADC voltage0-2" in examples/capture-dashboard.json

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, name);
  await page.screenshot({ path: file });
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(IMAGES, { recursive: true });
    copyFileSync(file, join(IMAGES, name));
  }
}

/** The status text Node-RED shows under a node in the editor. */
async function statusText(page: Page, id: string): Promise<string> {
  return (await page.locator(`[id="${id}"] .red-ui-flow-node-status-label`).textContent()) ?? '';
}

/** Waits until the editor has loaded the flows and knows node `id`. */
async function nodeLoaded(page: Page, id: string): Promise<void> {
  await page.waitForFunction(
    (nid) =>
      !!(window as unknown as { RED?: { nodes?: { node(id: string): unknown } } }).RED?.nodes?.node(
        nid,
      ),
    id,
    { timeout: 60000 },
  );
}

describe('e2e: the editor in chromium', function () {
  this.timeout(180000);
  let nr: RunningNodeRed | undefined;
  let browser: BrowserContext | undefined;
  let profile = '';

  before(async function () {
    requirePeer(this, PEERS.chromium);
    nr = await startNodeRed();
    const { chromium } = await import('playwright-core');
    profile = mkdtempSync(join(tmpdir(), 'iiokit-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1400, height: 860 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });

  after(async function () {
    await browser?.close();
    await nr?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('opens the capture dialog with device and channel lists from emu:, deploys, and the status changes', async function () {
    const page = await browser!.newPage();
    await page.goto(`${nr!.url}/`);
    // Once the editor has loaded the flows, show the example tab with the capture node.
    await nodeLoaded(page, CAPTURE_ID);
    await page.evaluate(() => {
      const w = window as unknown as { RED: { workspaces: { show(id: string): void } } };
      w.RED.workspaces.show('d1a0000000000001');
    });
    const node = page.locator(`[id="${CAPTURE_ID}"]`);
    await node.waitFor({ state: 'visible' });
    // Running nodes report their rate.
    await page.waitForFunction(
      (id) =>
        /S\/s/.test(
          document.querySelector(`[id="${id}"] .red-ui-flow-node-status-label`)?.textContent ?? '',
        ),
      CAPTURE_ID,
      { timeout: 30000 },
    );
    await shot(page, 'editor.png');

    await node.locator('.red-ui-flow-node').dblclick();
    await page.waitForSelector('#node-input-device', { state: 'visible' });
    // The lists come from the running context through the admin endpoint.
    await page.waitForFunction(
      () => document.querySelectorAll('#node-input-device option').length >= 2,
    );
    await page.waitForFunction(
      () => document.querySelectorAll('#iio-channel-list input[type=checkbox]').length >= 4,
    );
    const devices = await page.locator('#node-input-device option').allTextContents();
    assert.ok(
      devices.some((d) => d.includes('ad7606-emu')),
      devices.join(' | '),
    );
    assert.ok(
      devices.some((d) => d.includes('adxl345-emu')),
      devices.join(' | '),
    );
    assert.ok(
      !devices.some((d) => d.includes('ad5689-emu')),
      'output-only DAC not offered for capture',
    );
    const channels = await page.locator('#iio-channel-list label').allTextContents();
    assert.deepEqual(
      channels.filter((c) => /voltage/.test(c)).map((c) => c.split(' ')[1]),
      ['voltage0', 'voltage1', 'voltage2', 'voltage3'],
    );
    const checked = await page
      .locator('#iio-channel-list input:checked')
      .evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value));
    assert.deepEqual(checked, ['voltage0', 'voltage1', 'voltage2']);
    await shot(page, 'capture-dialog.png');

    // Add voltage3, close the dialog, deploy.
    await page.locator('#iio-channel-list input[value="voltage3"]').check();
    await page.locator('#node-dialog-ok').click();
    await page.waitForSelector('#node-input-device', { state: 'detached' });
    const before = await statusText(page, CAPTURE_ID);
    const seen = new Set<string>([before]);
    await page.locator('#red-ui-header-button-deploy').click();
    // The node restarts: its status leaves the old text and comes back with a rate.
    const deadline = Date.now() + 30000;
    let restarted = false;
    while (Date.now() < deadline) {
      const t = await statusText(page, CAPTURE_ID);
      seen.add(t);
      if (seen.size > 1 && /S\/s/.test(t) && [...seen].some((s) => !/S\/s/.test(s))) {
        restarted = true;
        break;
      }
      await page.waitForTimeout(50);
    }
    assert.ok(restarted, `status after deploy: ${[...seen].join(' → ')}`);
    // The runtime has the new channel list.
    const flows = (await (await fetch(`${nr!.url}/flows`)).json()) as Array<{
      id: string;
      channels?: string;
    }>;
    assert.equal(
      flows.find((n) => n.id === CAPTURE_ID)?.channels,
      'voltage0,voltage1,voltage2,voltage3',
    );
    await page.close();
  });

  it('fills the attribute dialog from emu: and keeps the saved device and channel', async function () {
    const page = await browser!.newPage();
    await page.goto(`${nr!.url}/`);
    const ATTR_ID = 'd3n0000000000006'; // "voltage0 raw every 2 s" in examples/attributes.json
    await nodeLoaded(page, ATTR_ID);
    await page.evaluate(() => {
      (
        window as unknown as { RED: { workspaces: { show(id: string): void } } }
      ).RED.workspaces.show('d3a0000000000001');
    });
    await page.locator(`[id="${ATTR_ID}"] .red-ui-flow-node`).dblclick();
    await page.waitForFunction(
      () => document.querySelectorAll('#iio-attr-list option').length > 0,
      null,
      { timeout: 30000 },
    );
    assert.equal(await page.locator('#node-input-device').inputValue(), 'emu-adc');
    assert.equal(await page.locator('#iio-attr-channel').inputValue(), 'voltage0|in');
    const attrs = await page
      .locator('#iio-attr-list option')
      .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
    assert.ok(attrs.includes('raw') && attrs.includes('scale'), attrs.join(' '));
    const devices = await page.locator('#node-input-device option').allTextContents();
    assert.match(devices[0], /context attribute/);
    assert.ok(
      devices.some((d) => d.includes('ad5689-emu')),
      'every device, outputs too',
    );
    await page.locator('#node-dialog-cancel').click();
    await page.close();
  });

  it("the context dialog's Scan button lists reachable contexts and picks one", async function () {
    const page = await browser!.newPage();
    await page.goto(`${nr!.url}/`);
    const CONTEXT_ID = 'iioc000000000001'; // the emu: context all examples share
    await nodeLoaded(page, CONTEXT_ID);
    await page.evaluate((id) => {
      (
        window as unknown as {
          RED: { editor: { editConfig(n: string, t: string, id: string): void } };
        }
      ).RED.editor.editConfig('', 'iio-context', id);
    }, CONTEXT_ID);
    const uri = page.locator('#node-config-input-uri');
    await uri.waitFor({ timeout: 30000 });
    await uri.fill('ip:nowhere.invalid');
    await page.locator('#iio-scan').click();
    await page.waitForFunction(
      () =>
        /context\(s\) found|scan failed/.test(
          document.querySelector('#iio-scan-results option')?.textContent ?? '',
        ),
      null,
      { timeout: 60000 },
    );
    const options = await page
      .locator('#iio-scan-results option')
      .evaluateAll((o) => o.map((x) => [(x as HTMLOptionElement).value, x.textContent ?? '']));
    assert.match(options[0][1], /^\d+ context\(s\) found$/, JSON.stringify(options));
    const uris = options.slice(1).map(([v]) => v);
    assert.equal(uris[0], 'emu:', JSON.stringify(options));
    assert.equal(uris.includes('local:'), existsSync('/sys/bus/iio/devices'), uris.join(' '));
    assert.equal(Number(/^\d+/.exec(options[0][1])![0]), uris.length);
    await page.locator('#iio-scan-results').selectOption('emu:');
    assert.equal(await uri.inputValue(), 'emu:');
    await page.locator('#node-config-dialog-cancel').click();
    await page.close();
  });

  it('shows the live capture on the Dashboard 2 chart', async function () {
    const page = await browser!.newPage();
    await page.goto(`${nr!.url}/dashboard/live`);
    // ECharts draws into a canvas once points arrived.
    await page.waitForSelector('canvas', { timeout: 60000 });
    await page.waitForTimeout(2500);
    const text = await page.locator('body').textContent();
    assert.match(text ?? '', /ADC \(emu: ad7606-emu\)/);
    assert.ok((await page.locator('canvas').count()) >= 2, 'both charts drawn');
    await shot(page, 'dashboard.png');
    await page.close();
  });
});
