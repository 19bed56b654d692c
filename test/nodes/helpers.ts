/**
 * Shared set-up of the node tests: node-red-node-test-helper on the Node-RED 4 runtime
 * installed as a devDependency, our six node modules, and small waiting utilities.
 */
import { join } from 'node:path';
import helper = require('node-red-node-test-helper');

helper.init(require.resolve('node-red'));

export { helper };

/** The repository root (tests run from dist/test/nodes). */
export const ROOT = join(__dirname, '..', '..', '..');

type NodeModule = (red: unknown) => void;

/** The package's node modules, loaded through their Node-RED entries in nodes/. */
export const IIO_NODES: NodeModule[] = [
  'iio-context',
  'iio-attr-read',
  'iio-attr-write',
  'iio-capture',
  'iio-push',
  'iio-event',
].map((t) => require(join(ROOT, 'nodes', `${t}.js`)) as NodeModule);

/** Node-RED core node modules tests wire in (catch, function, debug...). */
export function coreNode(file: string): NodeModule {
  return require(join(ROOT, 'node_modules', '@node-red', 'nodes', 'core', file)) as NodeModule;
}

/** One node of a test flow. */
export interface FlowItem {
  readonly id: string;
  readonly type: string;
  readonly [key: string]: unknown;
}

/**
 * A Catch node on flow `f` wired to helper `caught`, and helper `out` for the node under
 * test to send to: error tests read what Catch got from `caught`.
 */
export const CATCH_TO_HELPER: FlowItem[] = [
  { id: 'c', type: 'catch', z: 'f', scope: null, uncaught: false, wires: [['caught']] },
  { id: 'out', type: 'helper', z: 'f' },
  { id: 'caught', type: 'helper', z: 'f' },
];

/** Loads our nodes (plus any core ones) and starts the flow. */
export function loadFlow(nodes: NodeModule[], flow: FlowItem[]): Promise<void> {
  return helper.load(nodes as never, flow as never);
}

export interface TestMsg {
  payload?: unknown;
  topic?: string;
  iio?: Record<string, unknown>;
  error?: { message: string; source?: { id: string; type: string } };
  [k: string]: unknown;
}

/** A node as the helper returns it (only what tests use). */
export interface TestNode {
  id: string;
  on(event: string, f: (arg: never) => void): void;
  receive(msg: object): void;
  status?: unknown;
}

export function node(id: string): TestNode {
  const n = helper.getNode(id) as unknown as TestNode | null;
  if (!n) throw new Error(`node ${id} is not in the flow`);
  return n;
}

/** Resolves with the next `count` messages a helper node receives. */
export function nextMessages(id: string, count = 1, timeoutMs = 10000): Promise<TestMsg[]> {
  const n = node(id);
  return new Promise((resolve, reject) => {
    const got: TestMsg[] = [];
    const t = setTimeout(
      () => reject(new Error(`node ${id}: ${got.length}/${count} messages in ${timeoutMs} ms`)),
      timeoutMs,
    );
    n.on('input', ((msg: TestMsg) => {
      if (got.length >= count) return;
      got.push(msg);
      if (got.length === count) {
        clearTimeout(t);
        resolve(got);
      }
    }) as (arg: never) => void);
  });
}

/** Resolves with the next status a node sets that matches `pred`. */
export function statusMatching(
  id: string,
  pred: (s: { fill?: string; shape?: string; text?: string }) => boolean,
  timeoutMs = 10000,
): Promise<{ fill?: string; shape?: string; text?: string }> {
  const n = node(id);
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`node ${id}: no matching status in ${timeoutMs} ms`)),
      timeoutMs,
    );
    n.on('call:status', ((call: { args: [{ fill?: string; shape?: string; text?: string }] }) => {
      const s = call.args[0];
      if (s && pred(s)) {
        clearTimeout(t);
        resolve(s);
      }
    }) as (arg: never) => void);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Absolute path of an XML fixture. */
export function fixture(name: string): string {
  return join(ROOT, 'test', 'fixtures', 'xml', name);
}

type Status = { fill?: string; shape?: string; text?: string };

/**
 * Every status node `id` has set since the flow loaded (the helper spies on Node.prototype,
 * so statuses set before a test could listen are there too).
 */
export function statusesOf(id: string): Status[] {
  const proto = (helper as unknown as { _NodePrototype: { status: unknown } })._NodePrototype;
  const spy = proto.status as { getCalls(): Array<{ thisValue: { id: string }; args: [Status] }> };
  return spy
    .getCalls()
    .filter((c) => c.thisValue.id === id)
    .map((c) => c.args[0]);
}

/** Resolves with the first status (set already or later) of node `id` matching `pred`. */
export async function statusSeen(
  id: string,
  pred: (s: Status) => boolean,
  timeoutMs = 10000,
): Promise<Status> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = statusesOf(id).find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) {
      throw new Error(`node ${id}: no matching status in ${JSON.stringify(statusesOf(id))}`);
    }
    await sleep(20);
  }
}
