/**
 * A new user's first flows, in a real Node-RED driven in chromium (issue 14, "Done when"):
 * starting from an empty workspace, a capture → debug flow and an inject → attr-write flow
 * with a Catch → debug beside it are built by dragging nodes from the palette and wiring
 * their ports; the dialogs are filled from the lists the running context offers (a new
 * iio-context added from the capture dialog); after Deploy the debug sidebar shows the
 * captured arrays, the status texts say what runs, a refused write reaches Catch as
 * readable text, and a bad URI reaches Catch and the log. Screenshots go to
 * test/e2e/artifacts/ (with UPDATE_SCREENSHOTS=1 the README's flow-built.png also to docs/images/).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { PEERS, requirePeer } from '../helpers/peers';
import { ROOT } from '../nodes/helpers';
import { startNodeRed, type RunningNodeRed } from './node-red';

const ARTIFACTS = join(ROOT, 'test', 'e2e', 'artifacts');
const IMAGES = join(ROOT, 'docs', 'images');

/** A screenshot in artifacts/; `readme`: one the README shows (refreshed with UPDATE_SCREENSHOTS=1). */
async function shot(page: Page, name: string, readme = false): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, name);
  await page.screenshot({ path: file });
  if (readme && process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(IMAGES, { recursive: true });
    copyFileSync(file, join(IMAGES, name));
  }
}

type Win = {
  RED: {
    nodes: {
      eachNode(f: (n: { id: string; type: string }) => void): void;
    };
  };
};

/** Ids of the flow nodes in the editor. */
function nodeIds(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const ids: string[] = [];
    (window as unknown as Win).RED.nodes.eachNode((n) => ids.push(n.id));
    return ids;
  });
}

/** Drags a node type from the palette (found with the palette's filter) onto the workspace. */
async function dragFromPalette(page: Page, type: string, x: number, y: number): Promise<string> {
  const before = await nodeIds(page);
  const search = page.locator('#red-ui-palette-search input');
  await search.fill('');
  await search.pressSequentially(type.replace(/^iio-/, 'iio ').replace(/-/g, ' '), { delay: 10 });
  const item = page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`).first();
  await item.waitFor({ state: 'visible' });
  const chart = page.locator('#red-ui-workspace-chart');
  let added: string[] = [];
  // jQuery UI's drag sometimes misses the first mouse moves of a page still settling.
  for (let attempt = 0; attempt < 3 && added.length === 0; attempt++) {
    await page.waitForTimeout(300);
    await item.dragTo(chart, { targetPosition: { x, y }, steps: 25 });
    for (let i = 0; i < 40 && added.length === 0; i++) {
      added = (await nodeIds(page)).filter((id) => !before.includes(id));
      if (!added.length) await page.waitForTimeout(50);
    }
  }
  assert.equal(added.length, 1, `one ${type} node dropped`);
  return added[0];
}

/** Wires the output port of `from` to the input port of `to`, with the mouse. */
async function wire(page: Page, from: string, to: string): Promise<void> {
  const out = await page.locator(`[id="${from}"] .red-ui-flow-port-output`).first().boundingBox();
  const inp = await page.locator(`[id="${to}"] .red-ui-flow-port-input`).first().boundingBox();
  assert.ok(out && inp, 'both ports drawn');
  await page.mouse.move(out.x + out.width / 2, out.y + out.height / 2);
  await page.mouse.down();
  await page.mouse.move(inp.x + inp.width / 2, inp.y + inp.height / 2, { steps: 15 });
  await page.mouse.up();
}

async function openDialog(page: Page, id: string): Promise<void> {
  await page.locator(`[id="${id}"] .red-ui-flow-node`).dblclick();
  await page.locator('#node-dialog-ok').waitFor({ state: 'visible' });
}

async function closeDialog(page: Page): Promise<void> {
  await page.locator('#node-dialog-ok').click();
  await page.locator('#node-dialog-ok').waitFor({ state: 'detached' });
}

/** Waits until a <select> offers at least `n` options, then returns their texts. */
async function optionsOf(page: Page, selector: string, n: number): Promise<string[]> {
  await page.waitForFunction(
    ([sel, count]) => document.querySelectorAll(`${sel} option`).length >= count,
    [selector, n] as const,
    { timeout: 30000 },
  );
  return page.locator(`${selector} option`).allTextContents();
}

async function statusText(page: Page, id: string): Promise<string> {
  return (await page.locator(`[id="${id}"] .red-ui-flow-node-status-label`).textContent()) ?? '';
}

async function statusMatching(page: Page, id: string, re: RegExp): Promise<string> {
  await page.waitForFunction(
    ([nid, src]) =>
      new RegExp(src).test(
        document.querySelector(`[id="${nid}"] .red-ui-flow-node-status-label`)?.textContent ?? '',
      ),
    [id, re.source] as const,
    { timeout: 60000 },
  );
  return statusText(page, id);
}

/** Texts of the debug sidebar's messages (shown when the debug tab is open). */
function debugMessages(page: Page): Promise<string[]> {
  return page.locator('.red-ui-debug-msg').allTextContents();
}

async function untilDebug(page: Page, pred: (t: string) => boolean): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const hit = (await debugMessages(page)).find(pred);
    if (hit) return hit;
    await page.waitForTimeout(100);
  }
  throw new Error(`no such debug message in: ${(await debugMessages(page)).join('\n---\n')}`);
}

async function deploy(page: Page): Promise<void> {
  await page.locator('#red-ui-header-button-deploy').click();
  // The deploy button goes back to its disabled look once the flows are running.
  await page.waitForSelector('#red-ui-header-button-deploy.disabled', { timeout: 60000 });
}

describe('e2e: flows built from the palette in chromium', function () {
  this.timeout(300000);
  let nr: RunningNodeRed | undefined;
  let browser: BrowserContext | undefined;
  let profile = '';
  let page: Page;
  const ids: Record<string, string> = {};

  before(async function () {
    requirePeer(this, PEERS.chromium);
    nr = await startNodeRed([]);
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
    page = await browser.newPage();
    await page.goto(`${nr.url}/`);
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="iio-capture"]', {
      timeout: 60000,
    });
  });

  after(async function () {
    await browser?.close();
    await nr?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('the palette shows the nodes under "Industrial I/O", named for what they are', async function () {
    const search = page.locator('#red-ui-palette-search input');
    await search.pressSequentially('iio', { delay: 10 });
    const header = page.locator('.red-ui-palette-header span', { hasText: 'Industrial' });
    await header.waitFor({ state: 'visible' });
    assert.equal((await header.textContent())?.trim(), 'Industrial I/O');
    const labels = (
      await page
        .locator('.red-ui-palette-node[data-palette-type^="iio-"] .red-ui-palette-label')
        .allTextContents()
    ).map((l) => l.replace(/\s+/g, ' ').trim());
    assert.deepEqual(labels.sort(), [
      'iio attr read',
      'iio attr write',
      'iio capture',
      'iio event',
      'iio push',
      'iio sparkplug',
    ]);
    await shot(page, 'palette.png');
  });

  it('builds capture → debug from the palette, with a new emu: context, and sees the arrays', async function () {
    ids.capture = await dragFromPalette(page, 'iio-capture', 220, 120);
    ids.debug = await dragFromPalette(page, 'debug', 560, 120);
    await openDialog(page, ids.capture);
    // No context yet: add one from the dialog, offered by the context's own Scan.
    await page.locator('#node-input-btn-context-add').click();
    const uri = page.locator('#node-config-input-uri');
    await uri.waitFor({ state: 'visible' });
    await page.locator('#iio-scan').click();
    const found = await optionsOf(page, '#iio-scan-results', 2);
    assert.match(found[0], /context\(s\) found/);
    await page.locator('#iio-scan-results').selectOption('emu:');
    assert.equal(await uri.inputValue(), 'emu:');
    await page.locator('#node-config-dialog-ok').click();
    await uri.waitFor({ state: 'detached' });
    // The device list comes from the context (not deployed yet: opened for the dialog).
    const devices = await optionsOf(page, '#node-input-device', 2);
    const adc = devices.find((d) => d.includes('emu-adc'));
    assert.ok(adc, devices.join(' | '));
    assert.ok(!devices.some((d) => d.includes('emu-dac')), 'no output-only device offered');
    await page.locator('#node-input-device').selectOption({ label: adc });
    await page.waitForFunction(
      () => document.querySelectorAll('#iio-channel-list input[type=checkbox]').length >= 4,
    );
    await page.locator('#iio-channel-list input[value="voltage0"]').check();
    await page.locator('#iio-channel-list input[value="voltage1"]').check();
    await page.locator('#node-input-samples').fill('256');
    // At most two messages a second (the sidebar is for people).
    await page.locator('#node-input-interval').fill('500');
    await page.locator('#node-input-output').selectOption('channels');
    await shot(page, 'capture-dialog-new.png');
    await closeDialog(page);
    await wire(page, ids.capture, ids.debug);

    // What the editor will deploy: the device by its label, its id only as a hint.
    const saved = await page.evaluate((id) => {
      const n = (
        window as unknown as {
          RED: { nodes: { node(id: string): Record<string, unknown> } };
        }
      ).RED.nodes.node(id);
      return { device: n.device, deviceId: n.deviceId, channels: n.channels };
    }, ids.capture);
    assert.deepEqual(saved, {
      device: 'emu-adc',
      deviceId: 'iio:device0',
      channels: 'voltage0,voltage1',
    });
  });

  it('builds inject → attr-write and Catch → debug from the palette', async function () {
    ids.inject = await dragFromPalette(page, 'inject', 160, 260);
    ids.write = await dragFromPalette(page, 'iio-attr-write', 420, 260);
    ids.catch = await dragFromPalette(page, 'catch', 160, 380);
    ids.errors = await dragFromPalette(page, 'debug', 420, 380);
    await openDialog(page, ids.write);
    // Pick the context added with the capture node; the lists come from it.
    const contexts = await optionsOf(page, '#node-input-context', 2);
    await page.locator('#node-input-context').selectOption({
      label: contexts.find((c) => c === 'emu:')!,
    });
    const devices = await optionsOf(page, '#node-input-device', 3);
    await page.locator('#node-input-device').selectOption({
      label: devices.find((d) => d.includes('emu-adc'))!,
    });
    const channels = await optionsOf(page, '#iio-attr-channel', 3);
    assert.ok(
      channels.some((c) => /in voltage0/.test(c)),
      channels.join(' | '),
    );
    await page.locator('#iio-attr-channel').selectOption('voltage0|in');
    await page.waitForFunction(() => document.querySelectorAll('#iio-attr-list option').length > 0);
    const attrs = await page
      .locator('#iio-attr-list option')
      .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
    assert.ok(attrs.includes('waveform_frequency'), attrs.join(' '));
    await page.locator('#node-input-attr').fill('waveform_frequency');
    // The value: a literal string, which a numeric attribute refuses.
    const value = page.locator('#node-input-value + .red-ui-typedInput-container');
    await value.locator('.red-ui-typedInput-type-select').click();
    await page.locator('.red-ui-typedInput-options a[value="str"]').click();
    await value.locator('input.red-ui-typedInput-input').fill('fast');
    await closeDialog(page);
    // The Catch's debug shows msg.error (message and errno code), named "caught".
    await openDialog(page, ids.errors);
    const output = page.locator('#node-input-typed-complete + .red-ui-typedInput-container');
    await output.locator('input.red-ui-typedInput-input').fill('error');
    await page.locator('#node-input-name').fill('caught');
    await closeDialog(page);
    await wire(page, ids.inject, ids.write);
    await wire(page, ids.catch, ids.errors);
  });

  it('deploys: the arrays in the debug sidebar, short statuses, a refused write in Catch as text', async function () {
    await deploy(page);
    await page.locator('#red-ui-tab-debug-link-button').click();
    const arrays = await untilDebug(page, (t) => /voltage0/.test(t) && /voltage1/.test(t));
    assert.match(arrays, /array\[256\]/);
    const rate = await statusMatching(page, ids.capture, /S\/s$/);
    assert.ok(rate.length <= 22, rate);
    assert.equal(await statusText(page, ids.write), 'connected');

    await page.locator(`[id="${ids.inject}"] .red-ui-flow-node-button`).click();
    const refused = await untilDebug(page, (t) => /node: caught/.test(t));
    // Readable: the errno code first, what it concerns, why (the sidebar cuts it short).
    assert.match(refused, /message: "EINVAL: device emu-a/);
    assert.match(refused, /code: "EINVAL"/);
    assert.equal(await statusMatching(page, ids.write, /^EINVAL/), 'EINVAL');
    await shot(page, 'flow-built.png', true);
  });

  it('a bad URI reaches Catch (msg.error.code) and the log', async function () {
    await openDialog(page, ids.write);
    await page.locator('#node-input-btn-context-edit').click();
    const uri = page.locator('#node-config-input-uri');
    await uri.waitFor({ state: 'visible' });
    await uri.fill('bogus:nowhere');
    await page.locator('#node-config-dialog-ok').click();
    await uri.waitFor({ state: 'detached' });
    await closeDialog(page);
    await page.locator('.red-ui-debug-msg').first().waitFor();
    await page
      .locator('#red-ui-debug-tab .red-ui-sidebar-header a:has(i.fa-trash)')
      .first()
      .click()
      .catch(() => undefined);
    await deploy(page);
    // Every node using the context reports it to the Catch of its flow.
    const caught = await untilDebug(
      page,
      (t) => /node: caught/.test(t) && /EINVAL: create context/.test(t),
    );
    assert.match(caught, /code: "EINVAL"/);
    // The whole sentence, as the log has it.
    assert.match(nr!.log(), /unknown context URI scheme "bogus:" in "bogus:nowhere"/);
    assert.equal(await statusMatching(page, ids.capture, /^EINVAL/), 'EINVAL');
    const log = nr!.log();
    assert.match(log, /\[iio-context[^\]]*\] cannot open bogus:nowhere: EINVAL/);
    await shot(page, 'bad-uri.png');
  });
});

describe('e2e: importing the examples in chromium', function () {
  this.timeout(300000);
  let nr: RunningNodeRed | undefined;
  let browser: BrowserContext | undefined;
  let profile = '';

  before(async function () {
    requirePeer(this, PEERS.chromium);
    nr = await startNodeRed([]);
    const { chromium } = await import('playwright-core');
    profile = mkdtempSync(join(tmpdir(), 'iiokit-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1400, height: 860 },
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
  });

  after(async function () {
    await browser?.close();
    await nr?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('two examples imported one after the other share one iio-context', async function () {
    const page = await browser!.newPage();
    await page.goto(`${nr!.url}/`);
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="iio-capture"]', {
      timeout: 60000,
    });
    const contexts = (): Promise<number> =>
      page.evaluate(() => {
        let n = 0;
        (
          window as unknown as {
            RED: { nodes: { eachConfig(f: (c: { type: string }) => void): void } };
          }
        ).RED.nodes.eachConfig((c) => {
          if (c.type === 'iio-context') n++;
        });
        return n;
      });
    const importText = async (file: string): Promise<void> => {
      await page.locator('#red-ui-workspace-chart').click({ position: { x: 600, y: 500 } });
      await page.keyboard.press('Control+i');
      const text = page.locator('#red-ui-clipboard-dialog-import-text');
      await text.waitFor({ state: 'visible' });
      await text.fill(readFileSync(join(ROOT, 'examples', file), 'utf8'));
      // The dialog checks the text on keyup.
      await text.press('End');
      await page.locator('#red-ui-clipboard-dialog-ok').click();
      await text.waitFor({ state: 'hidden' });
    };
    const tabs = (): Promise<number> =>
      page.evaluate(() => document.querySelectorAll('#red-ui-workspace-tabs .red-ui-tab').length);
    await importText('attributes.json');
    for (let i = 0; i < 50 && (await tabs()) < 2; i++) await page.waitForTimeout(100);
    assert.equal(await contexts(), 1);
    await importText('events.json');
    // The context's id exists already: the editor asks; "Import copy" reuses it.
    const copy = page.locator('.red-ui-notification button', { hasText: 'Import copy' });
    await copy.waitFor({ state: 'visible', timeout: 30000 });
    await copy.click();
    for (let i = 0; i < 50 && (await tabs()) < 3; i++) await page.waitForTimeout(100);
    assert.equal(await tabs(), 3, 'both examples imported');
    const n = await contexts();
    assert.equal(n, 1, 'one iio-context after importing two examples');
    await page.close();
  });
});
