import { IioError } from '../errors';
import type { ContextHandle, ContextState } from './context-handle';
import type { NodeConfig, NodeMessage, NodeStatus, RedAPI, RedNode } from './red';

/** The npm module name: the i18n namespace of the config node is `<module>/iio-context`. */
export const MODULE = '@iiokit/node-red-iio';

/** A deployed `iio-context` config node, as user nodes see it. */
export interface IioContextNode extends RedNode {
  readonly handle: ContextHandle;
  readonly uri: string;
}

/** i18n text from the config node's catalogue (shared status words). */
export function tShared(RED: RedAPI, key: string, subs?: Record<string, unknown>): string {
  const full = `${MODULE}/iio-context:iio-context.${key}`;
  const text = RED._(full, subs);
  // Outside a real runtime (test helper) `_` echoes the key: show the short key instead.
  return text === full ? key : text;
}

/** The status a user node shows for a context state. */
export function contextStatus(RED: RedAPI, state: ContextState): NodeStatus {
  switch (state.kind) {
    case 'idle':
      return {};
    case 'connecting':
      return { fill: 'yellow', shape: 'ring', text: tShared(RED, 'status.connecting') };
    case 'connected':
      return { fill: 'green', shape: 'dot', text: tShared(RED, 'status.connected') };
    case 'reconnecting':
      return {
        fill: 'yellow',
        shape: 'ring',
        text: tShared(RED, 'status.reconnecting', { attempt: state.attempt }),
      };
    case 'error':
      return { fill: 'red', shape: 'ring', text: shortText(state.error) };
  }
}

/** A status text of at most ~24 characters: the errno code and the start of the detail. */
export function shortText(err: unknown): string {
  if (err instanceof IioError) return `${err.code}: ${err.detail}`.slice(0, 32);
  return String((err as Error)?.message ?? err).slice(0, 32);
}

/**
 * Reports a configuration error found while a node is being built: a red status now,
 * and the error once the flow has started (Catch nodes are only wired up by then).
 */
export function configError(RED: RedAPI, node: RedNode, err: Error): void {
  node.status({ fill: 'red', shape: 'ring', text: shortText(err) });
  let sent = false;
  const send = (): void => {
    if (sent) return;
    sent = true;
    node.error(err, {});
  };
  if (RED.events) RED.events.once('flows:started', () => setImmediate(send));
  else setImmediate(send);
}

/** Finds the config node a user node names; undefined (and an error) if missing. */
export function configNode(RED: RedAPI, node: RedNode, id: unknown): IioContextNode | undefined {
  const cfg =
    typeof id === 'string' && id ? (RED.nodes.getNode(id) as IioContextNode | null) : null;
  if (!cfg || !cfg.handle) {
    configError(
      RED,
      node,
      new IioError('EINVAL', 'no iio-context configured: open the node and pick or add a context'),
    );
    return undefined;
  }
  return cfg;
}

/** Reads a string property of a node's config, trimmed ('' when absent). */
export function str(config: NodeConfig, key: string): string {
  const v = config[key];
  return v === undefined || v === null ? '' : String(v).trim();
}

/** Reads a number property; `dflt` when blank; NaN stays NaN so callers can reject it. */
export function num(config: NodeConfig, key: string, dflt: number): number {
  const s = str(config, key);
  return s === '' ? dflt : Number(s);
}

export function bool(config: NodeConfig, key: string): boolean {
  const v = config[key];
  return v === true || v === 'true' || v === 1 || v === '1';
}

/**
 * Sends errors from a source node (no input message) to Catch nodes, at most one per
 * `intervalMs` per node (more are counted and reported with the next one), so a
 * failing stream does not flood the debug sidebar.
 */
export class ErrorGate {
  private last = 0;
  private suppressed = 0;

  constructor(
    private readonly node: RedNode,
    private readonly intervalMs = 5000,
  ) {}

  report(err: IioError, msg: NodeMessage = {}): void {
    const now = Date.now();
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.last = now;
    const extra = this.suppressed ? ` (${this.suppressed} similar errors suppressed)` : '';
    this.suppressed = 0;
    const e = extra ? new IioError(err.code, err.detail + extra, errCtx(err)) : err;
    // A message object makes the error catchable (Node-RED only routes errors that have one).
    this.node.error(e, msg);
  }
}

function errCtx(e: IioError): ConstructorParameters<typeof IioError>[2] {
  return { uri: e.uri, device: e.device, channel: e.channel, attr: e.attr, file: e.file, op: e.op };
}

/** Calls `f` at most once per `intervalMs` (trailing call kept), for status updates. */
export class Throttle {
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  private pending: (() => void) | undefined;

  constructor(private readonly intervalMs = 1000) {}

  run(f: () => void): void {
    const now = Date.now();
    const wait = this.last + this.intervalMs - now;
    if (wait <= 0 && !this.timer) {
      this.last = now;
      f();
      return;
    }
    this.pending = f;
    if (!this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.last = Date.now();
          const p = this.pending;
          this.pending = undefined;
          p?.();
        },
        Math.max(0, wait),
      );
    }
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }
}

/**
 * Registers a plain user node with its context: the context's state shows in the node's
 * status (unless `quiet` returns true: the node shows something of its own), and closing
 * the node deregisters it (the last user closes the context). `onClose` runs first.
 */
export function useContext(
  RED: RedAPI,
  node: RedNode,
  cfg: IioContextNode,
  options: { onState?: (s: ContextState) => void; onClose?: () => Promise<void> | void } = {},
): void {
  const user = {
    id: node.id,
    onContextState: (s: ContextState): void => {
      node.status(contextStatus(RED, s));
      options.onState?.(s);
    },
  };
  cfg.handle.register(user);
  node.on('close', (_removed, done) => {
    Promise.resolve()
      .then(() => options.onClose?.())
      .then(() => cfg.handle.deregister(user))
      .catch((err: unknown) => node.error(err))
      .finally(() => {
        node.status({});
        done();
      });
  });
}
