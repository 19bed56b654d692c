/**
 * Reconnection, once for the context and its buffers: when a connection ends without us
 * asking (EOF, reset, refused, a USB device or serial port gone), the server may be
 * gone. The context then says `disconnected`, fails requests at once (ENOTCONN), and
 * tries again — first at once, then with backoff doubling from 100 ms to 2 s, saying
 * `reconnecting {attempt, delayMs}` — until a new session is up (`reconnected
 * {changed}`). Buffers wait through the outage with resume() and reopen their own
 * connection once the context is back.
 */
import { IioError } from '../../errors';
import type { BackendStatusEvent } from '../../model/backend';
import { isLinkLoss } from './transport';

/** Backoff between reconnect attempts: first at once, then doubling up to MAX. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;

/** The wait before attempt `n` (1-based). */
export function backoffMs(attempt: number): number {
  return attempt === 1 ? 0 : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (attempt - 2));
}

/** Errors that mean the server (or the link to it) went away, not that it refused. */
export function isConnectionLoss(e: IioError): boolean {
  if (isLinkLoss(e)) return true;
  return [
    'ECONNRESET',
    'ECONNREFUSED',
    'EPIPE',
    'ENOTCONN',
    'ECONNABORTED',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'ENETDOWN',
  ].includes(e.code);
}

/** A session a reconnect attempt set up, not yet in use. */
export interface Session {
  /** Whether the server describes other devices than before. */
  readonly changed: boolean;
  /** Takes it into use: from now on requests run on it. */
  adopt(): void;
  /** The context closed meanwhile: drop it. */
  abandon(): void;
  /** Once it is in use, before `reconnected` is said (resends the server's timeout). */
  settle?(): Promise<void>;
}

export interface ReconnectorOptions {
  /** False: a lost server stays lost (`createContext(uri, { reconnect: false })`). */
  readonly enabled: boolean;
  readonly uri: string;
  /** For messages: `127.0.0.1:30431`. */
  readonly where: string;
  /** The link went down: drop what used it (the control connection, queued requests). */
  onDown(error: IioError): void;
  /** One attempt: a new session (connect, handshake); throws while the server is away. */
  attempt(): Promise<Session>;
  /** Status events for the context (`disconnected`, `reconnecting`, `reconnected`). */
  onStatus?(ev: BackendStatusEvent): void;
}

type State = 'connected' | 'down' | 'closed';

export class Reconnector {
  private state: State = 'connected';
  private attempt = 0;
  private downError?: IioError;
  private loop?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private wakeSleep?: () => void;
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  constructor(private readonly opts: ReconnectorOptions) {}

  get enabled(): boolean {
    return this.opts.enabled;
  }

  get isDown(): boolean {
    return this.state === 'down';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** The error requests get while the server is away (ENOTCONN, saying why and since when). */
  notConnected(): IioError {
    return new IioError(
      'ENOTCONN',
      `not connected to iiod at ${this.opts.where}${this.opts.enabled ? `: reconnecting (attempt ${this.attempt})` : ''}${this.downError ? ` after: ${this.downError.detail}` : ''}`,
      { uri: this.opts.uri },
    );
  }

  private emit(ev: BackendStatusEvent): void {
    try {
      this.opts.onStatus?.(ev);
    } catch {
      // a listener's failure must not break the connection logic
    }
  }

  /** A connection ended without us asking (or could not be opened): the server may be gone. */
  lost(error: IioError): void {
    if (this.state !== 'connected') return;
    this.state = 'down';
    this.downError = error;
    this.attempt = 0;
    this.opts.onDown(error);
    this.emit({ type: 'disconnected', error });
    if (this.opts.enabled) this.loop = this.reconnectLoop();
    else {
      for (const w of this.waiters.splice(0)) w.reject(this.notConnected());
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeSleep = resolve;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.wakeSleep = undefined;
        resolve();
      }, ms);
    });
  }

  private async reconnectLoop(): Promise<void> {
    while (this.state === 'down') {
      this.attempt++;
      const delayMs = backoffMs(this.attempt);
      this.emit({ type: 'reconnecting', attempt: this.attempt, delayMs });
      if (delayMs) await this.sleep(delayMs);
      if (this.state !== 'down') return;
      try {
        const s = await this.opts.attempt();
        if (this.state !== 'down') {
          s.abandon();
          return;
        }
        s.adopt();
        this.state = 'connected';
        this.downError = undefined;
        await s.settle?.().catch(() => undefined);
        this.emit({ type: 'reconnected', changed: s.changed });
        for (const w of this.waiters.splice(0)) w.resolve();
        return;
      } catch (err) {
        this.downError = IioError.wrap(err);
      }
    }
  }

  /** Resolves once connected; rejects when closed, or lost for good (reconnect off). */
  whenConnected(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closed') {
      return Promise.reject(new IioError('EBADF', 'the context is closed'));
    }
    if (!this.opts.enabled) return Promise.reject(this.notConnected());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * A buffer's way back after an outage: waits for the context to reconnect, then runs
   * `open`; when that meets another loss, reports it and waits again. Resolves undefined
   * once `wanted()` turns false (the buffer closed or moved on); rejects with what
   * cannot be waited out (the context closed, the server refused).
   */
  async resume<T>(open: () => Promise<T>, wanted: () => boolean): Promise<T | undefined> {
    for (;;) {
      await this.whenConnected();
      if (!wanted()) return undefined;
      try {
        return await open();
      } catch (err) {
        const e = IioError.wrap(err);
        if (!wanted()) return undefined;
        if (!(isConnectionLoss(e) && this.opts.enabled)) throw e;
        this.lost(e);
      }
    }
  }

  /** Stops trying; waiters fail with EBADF. finished() then resolves when the loop is out. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.wakeSleep?.();
    for (const w of this.waiters.splice(0))
      w.reject(new IioError('EBADF', 'the context is closed'));
  }

  /** Resolves when no attempt is under way any more (after close()). */
  async finished(): Promise<void> {
    await this.loop?.catch(() => undefined);
  }
}
