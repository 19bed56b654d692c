import { EventEmitter } from 'node:events';
import { createContext } from '../create-context';
import { IioError } from '../errors';
import type { Context } from '../model/context';
import { RateGate, repeatText } from './report';
import { StreamHub } from './stream-hub';

/** One log line per kind of problem per minute; repeats are counted in the next one. */
const LOG_WINDOW_MS = 60000;

/** Where a shared context stands; every user node shows it in its status. */
export type ContextState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'connecting' }
  | { readonly kind: 'connected' }
  | {
      readonly kind: 'reconnecting';
      readonly attempt: number;
      /** Counts connection losses: a new number is a new outage (reported once per node). */
      readonly outage: number;
      /** Why the connection was lost. */
      readonly cause?: IioError;
    }
  | { readonly kind: 'error'; readonly error: IioError; readonly retryMs: number };

/** A node that uses the context (the config node fans its state out to these). */
export interface ContextUser {
  readonly id: string;
  onContextState(state: ContextState): void;
}

/** A running "serve this context" server, as src/server returns it. */
interface ServerLike {
  close(): Promise<void> | void;
}

export interface ContextHandleOptions {
  readonly uri: string;
  /** Timeout of every operation (ms); 0 waits forever; absent: backend default. */
  readonly timeoutMs?: number;
  /** Delay before trying again after a failed open or a lost connection; 0: never. */
  readonly reconnectMs: number;
  /** Serve this context (iiod protocol) on this TCP port while it is open. */
  readonly servePort?: number;
  /** Address to listen on (default: the server's, loopback only). */
  readonly serveHost?: string;
  /** Non-loopback peers allowed to connect (addresses or CIDRs). */
  readonly serveAllow?: readonly string[];
  /**
   * The log (the config node's): connect, failure, disconnect, reconnect, rate-limited
   * (first occurrence, then one counted summary per minute).
   */
  readonly log?: (level: 'info' | 'warn', text: string) => void;
  /**
   * True while a deploy that keeps this context is under way: the last user leaving then
   * does not close it (the redeployed nodes come back to it; `settle()` closes it if not).
   */
  readonly keepOpen?: () => boolean;
}

/** Something a node leaves in the handle across a redeploy (a cyclic output buffer). */
export interface Stashed {
  dispose(): Promise<void>;
}

export interface ContextHandleEvents {
  /** The context is (again) usable: open buffers anew. */
  ready: [Context];
  /** The context went away (closing, connection lost): stop using it. */
  lost: [];
  /**
   * The connection was lost but the backend reconnects by itself and its streams resume
   * (counting what the outage cost): keep buffers open, they wait.
   */
  interrupted: [];
  state: [ContextState];
}

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
  private readonly stash = new Map<string, Stashed>();
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
    const old = this.stash.get(key);
    this.stash.set(key, item);
    if (old && old !== item) void old.dispose().catch(() => undefined);
  }

  /** Takes back what a node kept before a redeploy. */
  take(key: string): Stashed | undefined {
    const item = this.stash.get(key);
    this.stash.delete(key);
    return item;
  }

  private async dropStash(): Promise<void> {
    const items = [...this.stash.values()];
    this.stash.clear();
    for (const item of items) {
      try {
        await item.dispose();
      } catch (err) {
        this.options.log?.('warn', `iio-context ${this.uri}: ${(err as Error).message}`);
      }
    }
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
   * The hub of a device, by the reference a flow names it with (created on first use,
   * dropped when its last subscriber leaves). `hint`: the id it had when the flow was saved.
   */
  hub(deviceId: string, hint?: string): StreamHub {
    let h = this.hubs.get(deviceId);
    if (!h) {
      h = new StreamHub(this, deviceId, hint, () => {
        if (this.hubs.get(deviceId) === h) this.hubs.delete(deviceId);
      });
      this.hubs.set(deviceId, h);
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
    if (!this.options.servePort) return;
    try {
      // Loaded lazily: only a config node with "serve this context" needs the server.
      const mod = require('../server') as {
        serveContext(
          c: Context,
          o: { port: number; bind?: string; allow?: readonly string[] },
        ): Promise<ServerLike & { uri?: string }>;
      };
      const server = await mod.serveContext(ctx, {
        port: this.options.servePort,
        ...(this.options.serveHost ? { bind: this.options.serveHost } : {}),
        ...(this.options.serveAllow?.length ? { allow: this.options.serveAllow } : {}),
      });
      this.server = server;
      this.options.log?.(
        'info',
        `serving ${this.uri} as ${server.uri ?? `port ${this.options.servePort}`}`,
      );
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why =
        e.code === 'MODULE_NOT_FOUND'
          ? 'the iiod server is not available in this build'
          : e.message;
      this.options.log?.(
        'warn',
        `cannot serve ${this.uri} on port ${this.options.servePort}: ${why}`,
      );
    }
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
