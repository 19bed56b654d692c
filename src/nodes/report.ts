/**
 * How nodes report problems without flooding: the first occurrence of an error at once,
 * repeats of it counted and summarised once per window ("12 more times in 60 s"), and a
 * pending summary sent when the problem ends, so no occurrence is lost without a count.
 * Used for the errors each node sends to Catch and for the config node's log lines.
 */
import { IioError } from '../errors';
import type { NodeMessage, RedAPI, RedNode } from './red';

/** Per runtime: whether its flows are started, and what waits for them to be. */
const runtimes = new WeakMap<object, { started: boolean; waiting: Array<() => void> }>();

/**
 * Runs `f` once the runtime's flows are started (now, if they are). Catch nodes are only
 * wired up by then: an error found while a flow is being built would find none.
 */
export function whenStarted(RED: RedAPI, f: () => void): void {
  const rt = trackRuntime(RED);
  if (!rt) setImmediate(f);
  else if (rt.started) f();
  // Bounded by the nodes of one deploy: each waits once.
  else rt.waiting.push(f);
}

/**
 * Follows the runtime's flow starts; node modules call it when they register (before any
 * flow starts), so the state is known when a node reports something later.
 */
export function trackRuntime(
  RED: RedAPI,
): { started: boolean; waiting: Array<() => void> } | undefined {
  const events = RED.events;
  if (!events?.on) return undefined;
  let rt = runtimes.get(events);
  if (!rt) {
    const state = { started: false, waiting: [] as Array<() => void> };
    rt = state;
    runtimes.set(events, state);
    events.on('flows:stopping', () => {
      state.started = false;
    });
    events.on('flows:started', () => {
      state.started = true;
      setImmediate(() => {
        for (const w of state.waiting.splice(0)) w();
      });
    });
  }
  return rt;
}

/**
 * An error as flows show it. Node-RED puts `String(err)` in `msg.error.message`, the log
 * and the debug sidebar: for an IioError that would be "IioError: EINVAL: ...", the class
 * name before the errno code that already says what it is.
 */
export function readable<E extends Error>(err: E): E {
  if (!Object.prototype.hasOwnProperty.call(err, 'toString'))
    Object.defineProperty(err, 'toString', { value: () => err.message, enumerable: false });
  return err;
}

/** `node.error(err, msg)` once the flows have started (see whenStarted). */
export function catchable(RED: RedAPI, node: RedNode): (err: Error, msg: NodeMessage) => void {
  return (err, msg) => whenStarted(RED, () => node.error(readable(err), msg));
}

interface GateEntry<T> {
  lastSent: number;
  count: number;
  firstRepeat: number;
  latest: T | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Rate limit per key: `emit(item, 0, 0)` for a first occurrence, `emit(latest, n, ms)` for
 * `n` repeats seen over the last `ms` (at most one summary per key per window).
 */
export class RateGate<T> {
  private readonly entries = new Map<string, GateEntry<T>>();

  constructor(
    private readonly windowMs: number,
    private readonly emit: (item: T, repeats: number, overMs: number) => void,
    /** Keys remembered at once (the oldest is summarised and forgotten past it). */
    private readonly maxKeys = 16,
  ) {}

  report(key: string, item: T): void {
    const now = Date.now();
    const e = this.entries.get(key);
    if (!e || (e.count === 0 && now - e.lastSent >= this.windowMs)) {
      if (!e) this.remember(key, now);
      else e.lastSent = now;
      this.emit(item, 0, 0);
      return;
    }
    if (e.count === 0) e.firstRepeat = now;
    e.count++;
    e.latest = item;
    if (!e.timer) {
      e.timer = setTimeout(
        () => this.summarise(key),
        Math.max(0, e.lastSent + this.windowMs - now),
      );
      e.timer.unref?.();
    }
  }

  /** The problem is over: send what is pending, and treat the next one as new. */
  flush(): void {
    for (const key of [...this.entries.keys()]) this.summarise(key);
    this.entries.clear();
  }

  /** Stops the timers without sending (the node is closing). */
  cancel(): void {
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
  }

  private remember(key: string, now: number): void {
    if (this.entries.size >= this.maxKeys) {
      const oldest = this.entries.keys().next().value as string;
      this.summarise(oldest);
      this.entries.delete(oldest);
    }
    this.entries.set(key, {
      lastSent: now,
      count: 0,
      firstRepeat: 0,
      latest: undefined,
      timer: undefined,
    });
  }

  private summarise(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    clearTimeout(e.timer);
    e.timer = undefined;
    if (e.count === 0 || e.latest === undefined) return;
    const now = Date.now();
    const n = e.count;
    const over = now - e.firstRepeat;
    e.count = 0;
    e.lastSent = now;
    this.emit(e.latest, n, over);
  }
}

/** "3 more times in 42 s": the counted part of a summary. */
export function repeatText(repeats: number, overMs: number): string {
  return `${repeats} more time${repeats === 1 ? '' : 's'} in ${Math.max(1, Math.round(overMs / 1000))} s`;
}

/**
 * Sends errors of one node to Catch nodes (`node.error(err, msg)`: with a message object,
 * so the runtime routes it, and `msg.error.code` carries the errno code). The first
 * occurrence of each error goes at once; repeats within `windowMs` are counted and sent
 * as one summary with the count. Without a Catch node the runtime logs them instead.
 */
export class ErrorGate {
  private readonly gate: RateGate<{ err: IioError; msg: NodeMessage }>;

  constructor(send: (err: IioError, msg: NodeMessage) => void, windowMs = 60000) {
    this.gate = new RateGate(windowMs, ({ err, msg }, repeats, overMs) => {
      const e = repeats
        ? new IioError(err.code, `${err.detail} (${repeatText(repeats, overMs)})`, {
            uri: err.uri,
            device: err.device,
            channel: err.channel,
            attr: err.attr,
            file: err.file,
            op: err.op,
          })
        : err;
      send(e, msg);
    });
  }

  report(err: IioError, msg: NodeMessage = {}): void {
    this.gate.report(`${err.code}|${err.message}`, { err, msg });
  }

  /** The node works again: send pending counts now; the next error is a first one. */
  clear(): void {
    this.gate.flush();
  }

  close(): void {
    this.gate.cancel();
  }
}
