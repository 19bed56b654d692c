/**
 * Event attributes in the editor, in a real browser (Debian's chromium through
 * playwright-core) on a real Node-RED: the iio-event dialog offers the device's event
 * attributes (from the running context) under "Set when it starts", saves what the user
 * picks, and after Deploy the event it enabled arrives — the emulated accelerometer's
 * y axis, whose threshold is off out of the box. The attribute nodes' dialog lists event
 * attributes under "Attribute of: event".
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import type { FlowNode } from '../../scripts/start';
import { PEERS, requirePeer } from '../helpers/peers';
import { startNodeRed, type RunningNodeRed } from './node-red';

const TAB = 'evtab00000000001';
const EVENT_ID = 'evnode0000000001';
const READ_ID = 'evread0000000001';
const FLOW: FlowNode[] = [
  { id: TAB, type: 'tab', label: 'events' },
  {
    id: 'evctx00000000001',
    type: 'iio-context',
    name: 'emulator',
    uri: 'emu:',
    timeout: '',
    reconnect: 5,
    serve: false,
    servePort: 30431,
    serveHost: '',
    serveAllow: '',
  },
  {
    id: EVENT_ID,
    type: 'iio-event',
    z: TAB,
    name: 'y axis',
    context: 'evctx00000000001',
    device: 'adxl345-emu',
    deviceId: 'iio:device2',
    channel: 'accel_y',
    eventType: '',
    direction: '',
    settings: [],
    x: 200,
    y: 100,
    wires: [[]],
  },
  {
    id: READ_ID,
    type: 'iio-attr-read',
    z: TAB,
    context: 'evctx00000000001',
    device: 'adxl345-emu',
    deviceId: 'iio:device2',
    channel: 'accel_y',
    direction: 'in',
    kind: 'event',
    attr: 'thresh_rising_en',
    output: 'auto',
    interval: '',
    topic: '',
    topicType: 'str',
    x: 200,
    y: 200,
    wires: [[]],
  },
];

async function openEditor(page: Page, nr: RunningNodeRed, id: string): Promise<void> {
  await page.goto(`${nr.url}/`);
  await page.waitForFunction(
    (nid) =>
      !!(window as unknown as { RED?: { nodes?: { node(id: string): unknown } } }).RED?.nodes?.node(
        nid,
      ),
    id,
    { timeout: 60000 },
  );
  await page.evaluate((tab) => {
    (window as unknown as { RED: { workspaces: { show(id: string): void } } }).RED.workspaces.show(
      tab,
    );
  }, TAB);
  await page.locator(`[id="${id}"] .red-ui-flow-node`).dblclick();
}

describe('e2e: event attributes in the editor (chromium)', function () {
  this.timeout(180000);
  let nr: RunningNodeRed | undefined;
  let browser: BrowserContext | undefined;
  let profile = '';

  before(async function () {
    requirePeer(this, PEERS.chromium);
    nr = await startNodeRed(FLOW);
    const { chromium } = await import('playwright-core');
    profile = mkdtempSync(join(tmpdir(), 'iiokit-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1400, height: 860 },
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    await nr?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("iio-event's dialog sets a threshold and an enable; after Deploy the event arrives", async () => {
    const page = await browser!.newPage();
    await openEditor(page, nr!, EVENT_ID);
    await page.waitForFunction(
      () => document.querySelectorAll('#node-input-device option').length >= 2,
      null,
      {
        timeout: 30000,
      },
    );
    const add = page.locator('.red-ui-editableList-addButton');
    for (const [attr, value] of [
      ['accel_y|in|thresh_rising_value', '0'],
      ['accel_y|in|thresh_rising_en', '1'],
    ]) {
      await add.click();
      const row = page.locator('#node-input-settings-container li').last();
      // the choices come from the running context: the accelerometer's event attributes
      await page.waitForFunction(
        (v) =>
          !!document.querySelector(
            `#node-input-settings-container li:last-child option[value="${v}"]`,
          ),
        attr,
        { timeout: 30000 },
      );
      await row.locator('select.iio-setting-attr').selectOption(attr);
      await row.locator('input.iio-setting-value').fill(value);
    }
    const offered = await page
      .locator('#node-input-settings-container li:last-child select option')
      .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
    assert.ok(offered.includes('accel_x|in|thresh_falling_value'), offered.join(' '));
    await page.locator('#node-dialog-ok').click();
    await page.locator('#red-ui-header-button-deploy').click();

    // saved as the runtime reads it
    const deadline = Date.now() + 30000;
    let saved: unknown;
    while (Date.now() < deadline) {
      const flows = (await (await fetch(`${nr!.url}/flows`)).json()) as FlowNode[];
      saved = flows.find((n) => n.id === EVENT_ID)?.settings;
      if (Array.isArray(saved) && saved.length === 2) break;
      await page.waitForTimeout(200);
    }
    assert.deepEqual(saved, [
      { channel: 'accel_y', attr: 'thresh_rising_value', value: '0', direction: 'in' },
      { channel: 'accel_y', attr: 'thresh_rising_en', value: '1', direction: 'in' },
    ]);
    // the y axis (a 0.25 Hz sine) now crosses its rising threshold every 4 s: the node counts
    await page.waitForFunction(
      (id) =>
        /\d+ events?/.test(
          document.querySelector(`[id="${id}"] .red-ui-flow-node-status-label`)?.textContent ?? '',
        ),
      EVENT_ID,
      { timeout: 30000 },
    );
    await page.close();
  });

  it("the attribute nodes' dialog lists event attributes under 'Attribute of: event'", async () => {
    const page = await browser!.newPage();
    await openEditor(page, nr!, READ_ID);
    await page.waitForFunction(
      () => document.querySelectorAll('#iio-attr-list option').length > 0,
      null,
      {
        timeout: 30000,
      },
    );
    assert.equal(await page.locator('#node-input-kind').inputValue(), 'event');
    const list = async (): Promise<string[]> =>
      page
        .locator('#iio-attr-list option')
        .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
    assert.deepEqual(await list(), [
      'thresh_falling_en',
      'thresh_falling_value',
      'thresh_rising_en',
      'thresh_rising_value',
    ]);
    // on a channel, buffer and debug are not offered; its own attributes are
    assert.equal(await page.locator('#node-input-kind option[value="debug"]').isDisabled(), true);
    await page.locator('#node-input-kind').selectOption('');
    assert.ok((await list()).includes('raw'));
    await page.locator('#node-dialog-cancel').click();
    await page.close();
  });
});
