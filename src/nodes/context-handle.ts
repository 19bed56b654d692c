import { EventEmitter } from 'node:events';
import { createContext } from '../create-context';
import { IioError } from '../errors';
import type { Context } from '../model/context';
import type {
  ContextHandleEvents,
  ContextHandleOptions,
  ContextState,
  ContextUser,
} from './context-types';
import { Keeper, type Stashed } from './keeper';
import { RateGate, repeatText } from './report';
import { serveForNodes, type ServerLike } from './serve-option';
import { HubLink } from './hub-link';
import { StreamHub } from './stream-hub';

/** One log line per kind of problem per minute; repeats are counted in the next one. */
const LOG_WINDOW_MS = 60000;

export type {
  ContextHandleEvents,
  ContextHandleOptions,
  ContextState,
  ContextUser,
} from './context-types';

/**
 * One Context shared by every node that uses one `iio-context` config node (core MQTT's
 * broker pattern): opened when the first user registers, closed when the last one
 * deregisters or the config node closes; its state fanned out to all users; reopened
 * after `reconnectMs` when opening fails or the connection is lost and the backend does
 * not reconnect by itself.
 */
export class ContextHandle extends EventEmitter<ContextHandleEvents> {
  private readonly users = new Set<ContextUser>();
  private readonly noUsersWaiters: Array<() => void> = [];
  private readonly hubs = new Map<string, StreamHub>();
  private ctx: Context | undefined;
  private server: ServerLike | undefined;
  private stateValue: ContextState = { kind: 'idle' };
  /** Serialises open/close so a register during a close waits for it. */
  private lifecycle: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  private generation = 0;
  private destroyed = false;
  private attempts = 0;
  private outages = 0;
  private outageStart = 0;
  private everConnected = false;
  private readonly stash = new Keeper();
  private readonly logGate: RateGate<{ level: 'info' | 'warn'; text: string }>;

  constructor(readonly options: ContextHandleOptions) {
    super();
    // Many user nodes (and their hubs) listen; that is the point, not a leak.
    this.setMaxListeners(0);
    this.logGate = new RateGate(LOG_WINDOW_MS, ({ level, text }, repeats, overMs) =>
      this.options.log?.(level, repeats ? `${text} (${repeatText(repeats, overMs)})` : text),
    );
  }

  /** Where the log lines go now (a config node adopting this handle after a redeploy). */
  set logger(f: ContextHandleOptions['log']) {
    (this.options as { log?: ContextHandleOptions['log'] }).log = f;
  }

  /** A rate-limited log line: the same `key` is logged once, then counted. */
  private note(key: string, level: 'info' | 'warn', text: string): void {
    this.logGate.report(key, { level, text });
  }

  get uri(): string {
    return this.options.uri;
  }

  get state(): ContextState {
    return this.stateValue;
  }

  /** The open context, if connected. */
  get context(): Context | undefined {
    return this.stateValue.kind === 'connected' ? this.ctx : undefined;
  }

  get userCount(): number {
    return this.users.size;
  }

  /** Hubs currently alive (one per device with capture nodes). */
  get hubCount(): number {
    return this.hubs.size;
  }

  /** What is open right now (the admin status endpoint shows it). */
  describe(): {
    uri: string;
    state: ContextState['kind'];
    users: number;
    open: boolean;
    hubs: Array<{ device: string; subscribers: number; streaming: boolean }>;
  } {
    return {
      uri: this.uri,
      state: this.stateValue.kind,
      users: this.users.size,
      open: this.ctx !== undefined && !this.ctx.isClosed,
      hubs: [...this.hubs.values()].map((h) => ({
        device: h.deviceId,
        subscribers: h.subscriberCount,
        streaming: h.isStreaming,
      })),
    };
  }

  /** Adds a user; the first one opens the context. The user gets the current state at once. */
  register(user: ContextUser): void {
    if (this.destroyed) {
      user.onContextState({
        kind: 'error',
        error: new IioError('ESHUTDOWN', 'the iio-context config node was closed', {
          uri: this.uri,
        }),
        retryMs: 0,
      });
      return;
    }
    this.users.add(user);
    user.onContextState(this.stateValue);
    if (this.users.size === 1) this.enqueue(() => this.connect());
  }

  /**
   * Removes a user; the last one closes the context, unless a deploy that keeps it is
   * under way (`keepOpen`). Resolves when that is done.
   */
  deregister(user: ContextUser): Promise<void> {
    if (!this.users.delete(user)) return this.lifecycle;
    if (this.users.size === 0) {
      for (const w of this.noUsersWaiters.splice(0)) w();
      if (!this.destroyed && this.options.keepOpen?.()) return this.lifecycle;
      this.enqueue(() => this.disconnect());
    }
    return this.lifecycle;
  }

  /** A deploy finished: close the context if no node came back to it; drop unclaimed stash. */
  settle(): Promise<void> {
    void this.dropStash();
    if (this.users.size === 0) this.enqueue(() => this.disconnect());
    return this.lifecycle;
  }

  /** True while a deploy keeps this context open (nodes may `keep` things for their successors). */
  get keeping(): boolean {
    return !this.destroyed && this.options.keepOpen?.() === true;
  }

  /** Keeps something for a node across a redeploy (disposed if nobody takes it back). */
  keep(key: string, item: Stashed): void {
    this.stash.keep(key, item);
  }

  /** Takes back what a node kept before a redeploy. */
  take(key: string): Stashed | undefined {
    return this.stash.take(key);
  }

  private dropStash(): Promise<void> {
    return this.stash.dropAll((err) =>
      this.options.log?.('warn', `iio-context ${this.uri}: ${err.message}`),
    );
  }

  /**
   * The config node is closing: everything goes, for good. Node-RED stops the config node
   * in parallel with the nodes using it, so the users get up to `graceMs` to close their
   * buffers and event streams (and deregister) before the context itself is closed.
   */
  destroy(graceMs = 10000): Promise<void> {
    this.destroyed = true;
    if (this.users.size > 0) {
      const usersGone = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        this.noUsersWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.enqueue(() => usersGone);
    }
    this.enqueue(async () => {
      this.users.clear();
      await this.disconnect();
    });
    return this.lifecycle;
  }

  /**
   * The context, waiting while it connects. Rejects at once with the last error when
   * opening failed (a retry may be pending), and with ENOTCONN when no node uses it.
   */
  ready(): Promise<Context> {
    const s = this.stateValue;
    if (s.kind === 'connected' && this.ctx) return Promise.resolve(this.ctx);
    if (s.kind === 'error') return Promise.reject(s.error);
    if (s.kind === 'idle' || this.destroyed) {
      return Promise.reject(
        new IioError('ENOTCONN', 'the context is not open (no node uses it)', { uri: this.uri }),
      );
    }
    return new Promise((resolve, reject) => {
      const onState = (st: ContextState): void => {
        if (st.kind === 'connected' && this.ctx) {
          this.off('state', onState);
          resolve(this.ctx);
        } else if (st.kind === 'error' || st.kind === 'idle') {
          this.off('state', onState);
          reject(
            st.kind === 'error'
              ? st.error
              : new IioError('ENOTCONN', 'the context was closed', { uri: this.uri }),
          );
        }
      };
      this.on('state', onState);
    });
  }

  /**
   * The way to a device's hub, by the reference a flow names it with (label, name or id;
   * `hint`: the id it had when the flow was saved). Every reference to one device reaches
   * the same hub once the context is open (HubLink).
   */
  hub(deviceRef: string, hint?: string): HubLink {
    return new HubLink(this, deviceRef, hint);
  }

  /** The hub serving a device reference now, if any (tests, the admin endpoint). */
  findHub(deviceRef: string): StreamHub | undefined {
    const key = new HubLink(this, deviceRef, undefined).currentKey();
    return key === undefined ? undefined : this.hubs.get(key);
  }

  /** The hub under one key (created on first use, dropped when its last subscriber leaves). */
  hubByKey(key: string, hint?: string): StreamHub {
    let h = this.hubs.get(key);
    if (!h) {
      h = new StreamHub(this, key, hint, () => {
        if (this.hubs.get(key) === h) this.hubs.delete(key);
      });
      this.hubs.set(key, h);
    }
    return h;
  }

  private enqueue(step: () => Promise<void>): void {
    // Each step is awaited after the previous one; a failing step never breaks the chain.
    this.lifecycle = this.lifecycle.then(step).catch((err: unknown) => {
      this.options.log?.('warn', `iio-context ${this.uri}: ${(err as Error).message}`);
    });
  }

  private setState(s: ContextState): void {
    this.stateValue = s;
    this.emit('state', s);
    for (const u of this.users) {
      try {
        u.onContextState(s);
      } catch (err) {
        this.options.log?.('warn', `status update failed: ${(err as Error).message}`);
      }
    }
  }

  private async connect(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.destroyed || this.users.size === 0 || this.ctx) return;
    const gen = ++this.generation;
    this.setState(
      this.attempts > 0
        ? { kind: 'reconnecting', attempt: this.attempts, outage: this.outages }
        : { kind: 'connecting' },
    );
    let ctx: Context;
    try {
      ctx = await createContext(
        this.uri,
        this.options.timeoutMs !== undefined ? { timeoutMs: this.options.timeoutMs } : {},
      );
    } catch (err) {
      const error = IioError.wrap(err, { uri: this.uri, op: 'open context' });
      this.attempts++;
      const retry =
        this.options.reconnectMs > 0
          ? `; trying again every ${this.options.reconnectMs / 1000} s`
          : '; not retrying (reconnect delay 0)';
      this.note(
        `open|${error.message}`,
        'warn',
        `cannot open ${this.uri}: ${error.message}${retry}`,
      );
      this.setState({ kind: 'error', error, retryMs: this.options.reconnectMs });
      this.scheduleRetry(gen);
      return;
    }
    if (this.destroyed || this.users.size === 0 || gen !== this.generation) {
      await ctx.close();
      return;
    }
    this.ctx = ctx;
    const failed = this.attempts;
    this.attempts = 0;
    this.watch(ctx, gen);
    await this.startServer(ctx);
    this.logGate.flush();
    const again = this.everConnected ? 're' : '';
    this.everConnected = true;
    this.options.log?.(
      'info',
      `${again}connected to ${this.uri}${failed ? ` after ${failed} failed attempt${failed === 1 ? '' : 's'}` : ''}`,
    );
    this.setState({ kind: 'connected' });
    this.emit('ready', ctx);
  }

  private watch(ctx: Context, gen: number): void {
    let backendReconnects = false;
    let attempt = 0;
    let cause: IioError | undefined;
    ctx.on('disconnected', (err) => {
      if (gen !== this.generation) return;
      cause = IioError.wrap(err, { uri: this.uri });
      this.outages++;
      this.outageStart = Date.now();
      attempt = 0;
      this.note(
        `lost|${cause.message}`,
        'warn',
        `connection to ${this.uri} lost: ${cause.message}`,
      );
      this.setState({ kind: 'reconnecting', attempt: 0, outage: this.outages, cause });
      // A backend that reconnects by itself says so right after this event: its streams
      // then wait and resume (counting the scans lost); otherwise everything stops and the
      // context is reopened from scratch after the reconnect delay.
      setImmediate(() => {
        if (gen !== this.generation) return;
        if (backendReconnects) {
          this.emit('interrupted');
          return;
        }
        this.emit('lost');
        if (this.options.reconnectMs > 0) {
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => {
            if (gen === this.generation && !backendReconnects) this.enqueue(() => this.reopen());
          }, this.options.reconnectMs);
        }
      });
    });
    ctx.on('reconnecting', ({ attempt: n }) => {
      if (gen !== this.generation) return;
      backendReconnects = true;
      attempt = n;
      clearTimeout(this.retryTimer);
      this.note('reconnecting', 'info', `reconnecting to ${this.uri} (attempt ${n})`);
      this.setState({ kind: 'reconnecting', attempt: n, outage: this.outages, cause });
    });
    ctx.on('reconnected', ({ changed }) => {
      if (gen !== this.generation) return;
      backendReconnects = false;
      clearTimeout(this.retryTimer);
      this.logGate.flush();
      const secs = ((Date.now() - this.outageStart) / 1000).toFixed(1);
      this.options.log?.(
        'info',
        `reconnected to ${this.uri} after ${secs} s (${attempt} attempt${attempt === 1 ? '' : 's'})${changed ? ': its devices changed, reopening' : ''}`,
      );
      if (changed) {
        // The remote side's devices changed: the old description is stale.
        this.enqueue(() => this.reopen());
        return;
      }
      this.setState({ kind: 'connected' });
      this.emit('ready', ctx);
    });
  }

  private scheduleRetry(gen: number): void {
    if (this.options.reconnectMs <= 0 || this.destroyed || this.users.size === 0) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (gen === this.generation) this.enqueue(() => this.connect());
    }, this.options.reconnectMs);
  }

  private async reopen(): Promise<void> {
    await this.closeContext();
    this.attempts = Math.max(this.attempts, 1);
    await this.connect();
  }

  private async startServer(ctx: Context): Promise<void> {
    const o = this.options;
    if (!o.servePort) return;
    this.server = await serveForNodes(ctx, o.servePort, o.serveHost, o.serveAllow, (l, t) =>
      o.log?.(l, t),
    );
  }

  private async closeContext(): Promise<void> {
    const ctx = this.ctx;
    this.ctx = undefined;
    this.generation++;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (ctx) this.emit('lost');
    // What nodes kept across a redeploy belongs to this context: release it first.
    await this.dropStash();
    // Hubs close their buffers first, while the context can still restore the devices.
    await Promise.all([...this.hubs.values()].map((h) => h.stop()));
    const server = this.server;
    this.server = undefined;
    if (server) {
      try {
        await server.close();
      } catch (err) {
        this.options.log?.('warn', `closing the server failed: ${(err as Error).message}`);
      }
    }
    if (ctx) await ctx.close();
  }

  private async disconnect(): Promise<void> {
    if (!this.destroyed && this.users.size > 0) return;
    const wasOpen = this.ctx !== undefined;
    await this.closeContext();
    this.attempts = 0;
    this.logGate.flush();
    if (wasOpen) this.options.log?.('info', `closed ${this.uri}`);
    this.setState({ kind: 'idle' });
  }
}
