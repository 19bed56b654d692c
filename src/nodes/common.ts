import { IioError } from '../errors';
import type { ContextHandle, ContextState } from './context-handle';
import type { NodeConfig, NodeMessage, RedAPI, RedNode } from './red';
import { ErrorGate, catchable } from './report';
import { contextStatus, errorStatus } from './status';

export { ErrorGate } from './report';
export { MODULE, contextStatus, errorStatus, fitStatus } from './status';

/** A deployed `iio-context` config node, as user nodes see it. */
export interface IioContextNode extends RedNode {
  readonly handle: ContextHandle;
  readonly uri: string;
}

/**
 * Reports a configuration error found while a node is being built: a red status now,
 * and the error once the flow has started (Catch nodes are only wired up by then).
 */
export function configError(RED: RedAPI, node: RedNode, err: Error): void {
  node.status(errorStatus(err));
  catchable(RED, node)(err, {});
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
 * What every user node does with its context's state: reports failures to Catch (through
 * `node.error(err, msg)`: `msg.error.code` is the errno code) — an open failure at once and
 * then as a counted summary while it repeats, each lost connection once — and clears the
 * count when the context works again.
 */
export class ContextReporter {
  readonly errors: ErrorGate;
  private lastOutage = 0;
  private readonly send: (err: Error, msg: NodeMessage) => void;

  constructor(
    RED: RedAPI,
    node: RedNode,
    private readonly uri: string,
  ) {
    this.send = catchable(RED, node);
    this.errors = new ErrorGate(this.send);
  }

  onState(s: ContextState): void {
    if (s.kind === 'error') {
      this.errors.report(s.error, this.msg());
    } else if (s.kind === 'reconnecting' && s.cause && s.outage !== this.lastOutage) {
      this.lastOutage = s.outage;
      // One message per outage: the connection is gone now, not when retries give up.
      this.send(s.cause, this.msg());
    } else if (s.kind === 'connected') {
      this.errors.clear();
    }
  }

  /** The message a context error travels in (Catch gets a copy with `msg.error`). */
  msg(): NodeMessage {
    return { iio: { context: this.uri } };
  }

  close(): void {
    this.errors.close();
  }
}

/**
 * Registers a plain user node with its context: the context's state shows in the node's
 * status (unless the node shows something of its own in `onState`), its failures go to
 * Catch, and closing the node deregisters it (the last user closes the context, unless a
 * redeploy keeps it). `onClose` runs first.
 */
export function useContext(
  RED: RedAPI,
  node: RedNode,
  cfg: IioContextNode,
  options: {
    /** Also called during registration (the reporter is passed: it is not returned yet). */
    onState?: (s: ContextState, reporter: ContextReporter) => void;
    onClose?: (removed: boolean) => Promise<void> | void;
  } = {},
): ContextReporter {
  const reporter = new ContextReporter(RED, node, cfg.uri);
  const user = {
    id: node.id,
    onContextState: (s: ContextState): void => {
      node.status(contextStatus(RED, s));
      reporter.onState(s);
      options.onState?.(s, reporter);
    },
  };
  cfg.handle.register(user);
  node.on('close', (removed, done) => {
    reporter.close();
    Promise.resolve()
      .then(() => options.onClose?.(removed))
      .then(() => cfg.handle.deregister(user))
      .catch((err: unknown) => node.error(err))
      .finally(() => {
        node.status({});
        done();
      });
  });
  return reporter;
}

/** typedInput types a value or topic field accepts. */
export const VALUE_TYPES = ['msg', 'flow', 'global', 'env', 'str', 'num', 'bool', 'json'] as const;

/**
 * Evaluates a typedInput field (`msg.x`, flow/global context, env, literal) for a message,
 * through the runtime's own evaluator (context stores may be asynchronous).
 */
export function evaluate(
  RED: RedAPI,
  node: RedNode,
  value: string,
  type: string,
  msg: NodeMessage,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    try {
      RED.util.evaluateNodeProperty(value, type, node, msg, (err, result) =>
        err ? reject(IioError.wrap(err, { op: `evaluate ${type} ${value}` })) : resolve(result),
      );
    } catch (err) {
      reject(IioError.wrap(err, { op: `evaluate ${type} ${value}` }));
    }
  });
}
