/**
 * 200 full redeploys of the example flows through Node-RED's admin API (as the editor's
 * Deploy button does), each waiting until every capture stream is running again: the
 * Node-RED process ends with no more file descriptors than it had, and an empty deploy
 * leaves no context, hub or buffer open (GET iio/status).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import type { FlowNode } from '../../scripts/start';
import { startNodeRed, type RunningNodeRed } from './node-red';

interface HandleStatus {
  id: string;
  uri: string;
  state: string;
  users: number;
  open: boolean;
  hubs: Array<{ device: string; subscribers: number; streaming: boolean }>;
}

const REDEPLOYS = Number(process.env.IIOKIT_REDEPLOYS ?? 200);

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function deploy(nr: RunningNodeRed, flows: FlowNode[]): Promise<void> {
  const r = await fetch(`${nr.url}/flows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
    body: JSON.stringify(flows),
  });
  assert.ok(r.ok, `deploy answered ${r.status}: ${await r.text()}`);
}

async function status(nr: RunningNodeRed): Promise<HandleStatus[]> {
  const r = await fetch(`${nr.url}/iio/status`);
  assert.ok(r.ok);
  return (await r.json()) as HandleStatus[];
}

/** Waits until every hub of every context streams (the deploy really opened buffers). */
async function untilStreaming(nr: RunningNodeRed, hubsWanted: number): Promise<HandleStatus[]> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const s = await status(nr);
    const hubs = s.flatMap((h) => h.hubs);
    if (hubs.length >= hubsWanted && hubs.every((h) => h.streaming)) return s;
    if (Date.now() > deadline) throw new Error(`streams not running: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('e2e: redeploys through the admin API', function () {
  this.timeout(600000);
  let nr: RunningNodeRed | undefined;

  after(async () => nr?.stop());

  it(`${REDEPLOYS} full redeploys leave no extra fd and an empty deploy leaves nothing open`, async function () {
    nr = await startNodeRed();
    const pid = nr.child.pid!;
    const flows = (await (await fetch(`${nr.url}/flows`)).json()) as FlowNode[];
    const first = await untilStreaming(nr, 1);
    const hubsWanted = first.flatMap((h) => h.hubs).length;
    // The examples share one context: one hub per captured device (the ADC, the accelerometer).
    assert.ok(hubsWanted >= 2, `capture hubs running: ${JSON.stringify(first)}`);
    // Warm up (lazy module loads, HTTP keep-alive), then take the baseline.
    for (let i = 0; i < 3; i++) {
      await deploy(nr, flows);
      await untilStreaming(nr, hubsWanted);
    }
    const baseline = fdCount(pid);
    for (let i = 0; i < REDEPLOYS; i++) {
      await deploy(nr, flows);
      const s = await untilStreaming(nr, hubsWanted);
      // Exactly the deployed config nodes hold contexts: nothing from earlier deploys.
      assert.equal(s.length, first.length, `deploy ${i}: ${s.length} contexts`);
    }
    let fds = fdCount(pid);
    for (let t = 0; t < 50 && fds > baseline; t++) {
      await new Promise((r) => setTimeout(r, 100));
      fds = fdCount(pid);
    }
    assert.ok(fds <= baseline, `fds after ${REDEPLOYS} redeploys: ${fds}, before: ${baseline}`);
    await deploy(nr, []);
    assert.deepEqual(await status(nr), []);
    assert.doesNotMatch(nr.log(), /\[error\]/, 'no error logged');
  });
});
