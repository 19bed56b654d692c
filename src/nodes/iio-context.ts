/**
 * `iio-context` (config node): owns one Context shared by every node that uses it,
 * opened on the first user, closed with the last, reconnected after errors. Also
 * registers the editor's admin endpoints (context scan, device/channel/attribute lists).
 */
import { existsSync } from 'node:fs';
import { createContext } from '../create-context';
import { IioError } from '../errors';
import type { Context } from '../model/context';
import { scanContexts } from '../scan';
import { ContextHandle } from './context-handle';
import { trackRuntime } from './report';
import { bool, num, str, type IioContextNode } from './common';
import { stableRef } from './device-ref';
import type { AdminResponse, NodeConfig, RedAPI, RedNode } from './red';

/** What the editor gets from `GET iio/devices`. */
export interface ContextDescription {
  readonly uri: string;
  readonly name: string;
  readonly description: string;
  readonly devices: ReadonlyArray<{
    readonly id: string;
    /** What a dialog saves for it: label, else name, when that names it alone; else the id. */
    readonly ref: string;
    readonly name?: string;
    readonly label?: string;
    readonly isTrigger: boolean;
    readonly bufferCapable: boolean;
    readonly attrs: readonly string[];
    readonly bufferAttrs: readonly string[];
    readonly debugAttrs: readonly string[];
    readonly channels: ReadonlyArray<{
      readonly id: string;
      readonly name?: string;
      readonly label?: string;
      readonly type: string;
      readonly isOutput: boolean;
      readonly isScanElement: boolean;
      readonly index: number;
      readonly attrs: readonly string[];
    }>;
  }>;
}

/** The plain description of a context, for the editor's pick-lists. */
export function describeContext(ctx: Context): ContextDescription {
  return {
    uri: ctx.uri,
    name: ctx.name,
    description: ctx.description,
    devices: ctx.devices.map((d) => ({
      id: d.id,
      ref: stableRef(ctx, d),
      ...(d.name ? { name: d.name } : {}),
      ...(d.label ? { label: d.label } : {}),
      isTrigger: d.isTrigger,
      bufferCapable: d.isBufferCapable,
      attrs: d.attrs.map((a) => a.name),
      bufferAttrs: d.bufferAttrs.map((a) => a.name),
      debugAttrs: d.debugAttrs.map((a) => a.name),
      channels: d.channels.map((c) => ({
        id: c.id,
        ...(c.name ? { name: c.name } : {}),
        ...(c.label ? { label: c.label } : {}),
        type: c.type,
        isOutput: c.isOutput,
        isScanElement: c.isScanElement,
        index: c.index,
        attrs: c.attrs.map((a) => a.name),
      })),
    })),
  };
}

/** Contexts the editor's Scan button offers: the emulator, local IIO, and what scanners find. */
export async function scanForEditor(): Promise<Array<{ uri: string; description: string }>> {
  const found: Array<{ uri: string; description: string }> = [
    { uri: 'emu:', description: 'Emulated devices with live data (demo)' },
  ];
  if (existsSync('/sys/bus/iio/devices')) {
    found.push({ uri: 'local:', description: 'IIO devices of this machine (sysfs)' });
  }
  // Backends register their scanners when src/backends loads (local, ip: DNS-SD, usb).
  for (const e of await scanContexts()) {
    if (!found.some((f) => f.uri === e.uri)) found.push(e);
  }
  return found;
}

function sendError(res: AdminResponse, err: unknown): void {
  const e = IioError.wrap(err);
  const status = e.code === 'EINVAL' ? 400 : e.code === 'ENOENT' || e.code === 'ENODEV' ? 404 : 500;
  res.status(status).json({ error: e.message, code: e.code });
}

const adminApps = new WeakSet<object>();
/** Config nodes alive in this runtime, by node id (for GET iio/status). */
const live = new Map<string, ContextHandle>();

function registerAdmin(RED: RedAPI): void {
  // Once per admin app (a runtime has one; the test helper makes one per flow load).
  // A runtime without an editor (httpAdminRoot: false) has no admin app at all.
  if (!RED.httpAdmin || adminApps.has(RED.httpAdmin)) return;
  adminApps.add(RED.httpAdmin);
  const read = RED.auth.needsPermission('iio-context.read');
  // What every deployed iio-context holds open: contexts, device hubs, buffers.
  RED.httpAdmin.get('/iio/status', read, (_req, res) => {
    res.json([...live.entries()].map(([id, h]) => ({ id, ...h.describe() })));
  });
  RED.httpAdmin.get('/iio/scan', read, (_req, res) => {
    scanForEditor().then(
      (list) => res.json(list),
      (err: unknown) => sendError(res, err),
    );
  });
  // ?node=<config node id> uses the deployed context; ?uri= opens one for the moment
  // (a config node not deployed yet), closes it after answering.
  RED.httpAdmin.get('/iio/devices', read, (req, res) => {
    const id = typeof req.query.node === 'string' ? req.query.node : '';
    const uri = typeof req.query.uri === 'string' ? req.query.uri.trim() : '';
    const cfg = id ? (RED.nodes.getNode(id) as IioContextNode | null) : null;
    const live = cfg?.handle?.context;
    if (live && (!uri || uri === cfg.uri)) {
      res.json(describeContext(live));
      return;
    }
    if (!uri) {
      res
        .status(400)
        .json({ error: 'give ?uri= or the id of a deployed iio-context node', code: 'EINVAL' });
      return;
    }
    (async () => {
      const ctx = await createContext(uri, { timeoutMs: 5000 });
      try {
        res.json(describeContext(ctx));
      } finally {
        await ctx.close();
      }
    })().catch((err: unknown) => sendError(res, err));
  });
}

interface ContextNodeFields {
  handle: ContextHandle;
  uri: string;
}

/**
 * A deploy under way (between the runtime's `flows:stopping` and `flows:started`): which
 * config nodes it keeps as they were. Their contexts stay open — and an emulator's
 * attribute values, a remote connection, a cyclic waveform stay with them — while the
 * nodes using them restart, as core MQTT keeps its broker connection when its config node
 * did not change. Stopping the runtime is not a deploy: everything closes.
 */
let deploying: { keeps(id: string): boolean } | undefined;
/** Handles of config nodes closed by a deploy that keeps them, until the new node adopts one. */
const parked = new Map<string, { key: string; handle: ContextHandle; timer: NodeJS.Timeout }>();
const watchedRuntimes = new WeakSet<object>();
/** A parked handle nobody adopts (a deploy that never finished) closes after this. */
const PARK_MS = 60000;

interface FlowsDiff {
  changed?: string[];
  removed?: string[];
  globalConfigChanged?: boolean;
}

function watchDeploys(RED: RedAPI): void {
  const events = RED.events;
  if (!events?.on || watchedRuntimes.has(events)) return;
  watchedRuntimes.add(events);
  events.on('flows:stopping', (...args: unknown[]) => {
    const diff = (args[0] as { diff?: FlowsDiff } | undefined)?.diff;
    // Only a deploy carries the runtime's computed diff (with globalConfigChanged); a stop
    // of the runtime gets an empty default one.
    if (!diff || typeof diff.globalConfigChanged !== 'boolean') {
      deploying = undefined;
      return;
    }
    const gone = new Set([...(diff.changed ?? []), ...(diff.removed ?? [])]);
    deploying = { keeps: (id) => !gone.has(id) };
  });
  events.on('flows:started', () => {
    deploying = undefined;
    for (const [id, p] of parked) {
      parked.delete(id);
      clearTimeout(p.timer);
      if (live.get(id) === p.handle) live.delete(id);
      void p.handle.destroy(0);
    }
    for (const h of live.values()) void h.settle();
  });
}

/** The settings that make a context what it is: same key, same context. */
function contextKey(config: NodeConfig): string {
  return JSON.stringify(
    ['uri', 'timeout', 'reconnect', 'serve', 'servePort', 'serveHost', 'serveAllow'].map((k) =>
      str(config, k),
    ),
  );
}

export default function register(RED: RedAPI): void {
  trackRuntime(RED);
  registerAdmin(RED);
  watchDeploys(RED);
  RED.nodes.registerType(
    'iio-context',
    function (this: RedNode & ContextNodeFields, config: NodeConfig) {
      RED.nodes.createNode(this, config);
      const uri = str(config, 'uri') || 'emu:';
      const timeout = num(config, 'timeout', NaN);
      const reconnect = num(config, 'reconnect', 5);
      const servePort = bool(config, 'serve') ? num(config, 'servePort', 30431) : undefined;
      const id = this.id;
      const key = contextKey(config);
      const log = (level: 'info' | 'warn', text: string): void =>
        level === 'warn' ? this.warn(text) : this.log(text);
      this.uri = uri;
      const kept = parked.get(id);
      if (kept) {
        parked.delete(id);
        clearTimeout(kept.timer);
        if (kept.key !== key) void kept.handle.destroy(0);
      }
      if (kept && kept.key === key) {
        this.handle = kept.handle;
        this.handle.logger = log;
      } else {
        this.handle = new ContextHandle({
          uri,
          ...(Number.isFinite(timeout) && timeout >= 0 ? { timeoutMs: timeout } : {}),
          reconnectMs: Number.isFinite(reconnect) && reconnect > 0 ? reconnect * 1000 : 0,
          ...(servePort !== undefined && Number.isInteger(servePort) && servePort > 0
            ? { servePort }
            : {}),
          ...(str(config, 'serveHost') ? { serveHost: str(config, 'serveHost') } : {}),
          ...(str(config, 'serveAllow')
            ? {
                serveAllow: str(config, 'serveAllow')
                  .split(/[\s,]+/)
                  .filter(Boolean),
              }
            : {}),
          log,
          keepOpen: () => deploying?.keeps(id) === true,
        });
      }
      live.set(id, this.handle);
      this.on('close', (removed, done) => {
        const handle = this.handle;
        if (!removed && deploying?.keeps(id)) {
          // A deploy that keeps this config node: the next one with this id takes it over.
          const timer = setTimeout(() => {
            if (parked.get(id)?.handle !== handle) return;
            parked.delete(id);
            if (live.get(id) === handle) live.delete(id);
            void handle.destroy(0);
          }, PARK_MS);
          timer.unref?.();
          parked.set(id, { key, handle, timer });
          done();
          return;
        }
        const forget = (): void => {
          if (live.get(id) === handle) live.delete(id);
        };
        handle.destroy().then(
          () => {
            forget();
            done();
          },
          (err: unknown) => {
            forget();
            this.error(err);
            done();
          },
        );
      });
    },
  );
}
