/**
 * One measuring process of the flow bench (forked by flow.bench.ts, one per side, so each
 * has its own heap and backend registration):
 * `node flow-worker.js <block bytes> <capture|hop|loop>`.
 *
 * Block source: a backend registered as `emu:` in this process only, handing out ready
 * blocks (a ring of 64 pre-filled Buffers, 4 × s16 per scan) as fast as the reader asks,
 * each read completing on a later turn of the event loop as a native buffer's does. It
 * isolates what the flow costs from what a device or the kernel costs.
 *
 * Sides:
 *  - `capture`: Node-RED 4 (the real runtime, in this process) running iio-capture → one
 *    function node; counted in the function node;
 *  - `hop`: the bare Node-RED hop: a minimal source node (no library: the same ring, one
 *    message per turn of the event loop, the same 16-in-flight bound as iio-capture)
 *    → the same function node. What Node-RED itself can carry;
 *  - `loop`: the same block source read by `for await (const b of buffer.stream())`, no
 *    Node-RED: the library's own ceiling.
 *
 * Once streaming it sends `{ ready: true }`; then, for every `{ measure: ms }` it receives,
 * it counts for `ms` and answers `{ bytes, msgs, ns, cpuUs, copies, dropped }` (the parent
 * stops the other sides' processes meanwhile: SIGSTOP/SIGCONT).
 */
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerBackend } from '../src/backends';
import type { Backend, BackendBuffer, RawBlock } from '../src/model/backend';
import { createContext } from '../src/create-context';
import { parseScanType } from '../src/format/scan-type';
import type { ContextInfo } from '../src/model/info';
import { prepareUserDir, type FlowNode } from '../scripts/start';

const blockBytes = Number(process.argv[2] ?? 65536);
const mode = process.argv[3] ?? 'capture';
const SCAN = 8;
const samples = blockBytes / SCAN;
const RING = 64;
const MAX_IN_FLIGHT = 16;

const format = parseScanType('le:s16/16>>0');
const info: ContextInfo = {
  name: 'emu',
  description: 'flow bench block source',
  version: { major: 0, minor: 0, git: 'bench' },
  attrs: [],
  devices: [
    {
      id: 'iio:device0',
      name: 'bench-source',
      channels: [0, 1, 2, 3].map((i) => ({
        id: `voltage${i}`,
        isOutput: false,
        index: i,
        isScanElement: true,
        format,
        attrs: [],
      })),
      attrs: [],
      bufferAttrs: [],
      debugAttrs: [],
    },
  ],
};

/** Every Buffer the source ever handed out: a payload that is one of these was not copied. */
const handedOut = new WeakSet<Buffer>();

function ring(size: number): Buffer[] {
  return Array.from({ length: RING }, (_, k) => {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i += 2) b.writeInt16LE(((i * 31 + k) % 65536) - 32768, i);
    handedOut.add(b);
    return b;
  });
}

function sourceBackend(): Backend {
  const closed = (): Error => Object.assign(new Error('closed'), { code: 'ECANCELED' });
  return {
    name: 'emu',
    uri: 'emu:',
    info,
    readAttr: async () => '',
    writeAttr: async () => 0,
    getTrigger: async () => null,
    setTrigger: async () => undefined,
    async openBuffer(_dev, opts): Promise<BackendBuffer> {
      const blocks = ring(opts.samples * SCAN);
      let next = 0;
      let isClosed = false;
      let pending: ((err?: Error) => void) | undefined;
      return {
        mask: opts.mask,
        read(): Promise<RawBlock> {
          return new Promise((resolve, reject) => {
            if (isClosed) return reject(closed());
            pending = (err) => (err ? reject(err) : undefined);
            setImmediate(() => {
              pending = undefined;
              if (isClosed) return reject(closed());
              resolve({ data: blocks[next++ % RING], release: () => undefined });
            });
          });
        },
        write: async () => undefined,
        cancel(): void {
          pending?.(Object.assign(new Error('cancelled'), { code: 'ECANCELED' }));
        },
        async close(): Promise<void> {
          isClosed = true;
          pending?.(closed());
        },
      };
    },
    close: async () => undefined,
  };
}

interface Counter {
  bytes: number;
  msgs: number;
  copies: number;
  dropped: number;
}

const c: Counter = { bytes: 0, msgs: 0, copies: 0, dropped: 0 };

/** What the function node calls for every message. */
const iioBench = {
  count(msg: { payload: Buffer; iio?: { dropped: number } }): void {
    c.bytes += msg.payload.length;
    c.msgs++;
    if (!handedOut.has(msg.payload)) c.copies++;
    if (msg.iio) c.dropped = msg.iio.dropped;
  },
};

/** The bare hop's source node, as a node module in the user directory. */
const HOP_NODE = `
module.exports = function (RED) {
  RED.nodes.registerType('bench-source', function (config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const src = global.__iiokitBenchRing;
    let next = 0, inFlight = 0, stopped = false, blocked = false;
    // One message per turn of the event loop while fewer than the bound are in flight;
    // at the bound, the next goes when one is delivered (no spinning meanwhile).
    const tick = () => {
      if (stopped) return;
      if (inFlight >= ${MAX_IN_FLIGHT}) { blocked = true; return; }
      inFlight++;
      node.send({ topic: 'bench', payload: src[next++ % src.length] });
      setImmediate(() => {
        inFlight--;
        if (blocked) { blocked = false; tick(); }
      });
      setImmediate(tick);
    };
    setImmediate(tick);
    node.on('close', () => { stopped = true; });
  });
  RED.nodes.registerType('bench-sink', function (config) {
    RED.nodes.createNode(this, config);
    const count = global.__iiokitBenchCount;
    this.on('input', (msg, send, done) => { count(msg); done(); });
  });
};
`;

async function startLoop(): Promise<void> {
  const ctx = await createContext('emu:');
  const dev = ctx.device('iio:device0');
  const buf = await dev.createBuffer(samples, { channels: dev.channels.map((ch) => ch.id) });
  void (async () => {
    for await (const b of buf.stream()) {
      // The least a consumer does: look at the block once.
      c.bytes += b.data.length + (b.data[0] & 0);
      c.msgs++;
      b.release();
    }
  })();
}

async function startNodeRed(hop: boolean, sink: boolean): Promise<void> {
  const userDir = mkdtempSync(join(tmpdir(), 'iiokit-bench-'));
  process.on('exit', () => rmSync(userDir, { recursive: true, force: true }));
  const fn: FlowNode = sink
    ? { id: 'fn', type: 'bench-sink', z: 'tab', wires: [] }
    : {
        id: 'fn',
        type: 'function',
        z: 'tab',
        func: "global.get('iioBench').count(msg);\nreturn null;",
        outputs: 1,
        wires: [[]],
      };
  const source: FlowNode = hop
    ? { id: 'src', type: 'bench-source', z: 'tab', wires: [['fn']] }
    : {
        id: 'src',
        type: 'iio-capture',
        z: 'tab',
        context: 'ctx',
        device: 'iio:device0',
        channels: '',
        samples,
        output: 'buffer',
        maxInFlight: MAX_IN_FLIGHT,
        wires: [['fn']],
      };
  const flows: FlowNode[] = [
    { id: 'tab', type: 'tab', label: 'bench' },
    ...(hop ? [] : [{ id: 'ctx', type: 'iio-context', uri: 'emu:', reconnect: 0 }]),
    source,
    fn,
  ];
  prepareUserDir(userDir, { flows });
  (globalThis as { __iiokitBenchCount?: unknown }).__iiokitBenchCount = iioBench.count;
  {
    (globalThis as { __iiokitBenchRing?: Buffer[] }).__iiokitBenchRing = ring(blockBytes);
    const dir = join(userDir, 'node_modules', 'iiokit-bench-source');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({
        name: 'iiokit-bench-source',
        version: '0.0.0',
        keywords: ['node-red'],
        'node-red': { nodes: { 'bench-source': 'source.js' } },
      }),
    );
    writeFileSync(join(dir, 'source.js'), HOP_NODE);
    writeFileSync(
      join(dir, 'source.html'),
      `<script type="text/javascript">RED.nodes.registerType('bench-source', { category: 'input', defaults: {}, outputs: 1 });RED.nodes.registerType('bench-sink', { category: 'output', defaults: {}, inputs: 1 });</script>\n`,
    );
  }
  const RED = require('node-red') as {
    init(server: unknown, settings: object): void;
    start(): Promise<void>;
  };
  RED.init(createServer(), {
    userDir,
    flowFile: 'flows.json',
    credentialSecret: false,
    logging: { console: { level: 'warn', metrics: false, audit: false } },
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    editorTheme: { tours: false, projects: { enabled: false } },
    functionGlobalContext: { iioBench },
  });
  await RED.start();
}

async function main(): Promise<void> {
  registerBackend('emu', () => async () => sourceBackend());
  if (mode === 'loop') await startLoop();
  else await startNodeRed(mode.startsWith('hop'), mode.endsWith('-sink'));
  // Warm up (JIT, the flow started) until messages flow for a while.
  const t0 = Date.now();
  while (c.msgs < 1000 && Date.now() - t0 < 30000) await new Promise((r) => setTimeout(r, 50));
  if (!c.msgs) throw new Error(`no message reached the function node (${mode})`);
  await new Promise((r) => setTimeout(r, 500));
  process.on('message', (m: { measure?: number; exit?: boolean }) => {
    if (m.exit) process.exit(0);
    if (!m.measure) return;
    const b0 = c.bytes;
    const m0 = c.msgs;
    const cpu0 = process.cpuUsage();
    const t = process.hrtime.bigint();
    setTimeout(() => {
      const cpu = process.cpuUsage(cpu0);
      process.send!({
        bytes: c.bytes - b0,
        msgs: c.msgs - m0,
        ns: Number(process.hrtime.bigint() - t),
        cpuUs: cpu.user + cpu.system,
        copies: c.copies,
        delivered: c.msgs,
        dropped: c.dropped,
      });
    }, m.measure);
  });
  process.send!({ ready: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
