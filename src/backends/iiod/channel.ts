import { IioError, type IioErrorContext } from '../../errors';
import type { Connection } from './connection';

export interface RequestChannelOptions {
  /** For messages: `127.0.0.1:30431`. */
  readonly where: string;
  /** Opens (and sets up) a new connection. */
  readonly open: (timeoutMs: number) => Promise<Connection>;
  /** The current timeout in ms (0: none). */
  readonly timeoutMs: () => number;
  /** When set, requests fail at once with this error (the server is away). */
  readonly unavailable?: () => IioError | undefined;
  /** A connection ended without us asking, or could not be opened: the server may be gone. */
  readonly onLost?: (error: IioError) => void;
}

interface Job {
  readonly op: string;
  readonly ctx: IioErrorContext;
  readonly body: (c: Connection) => Promise<unknown>;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
  timer?: NodeJS.Timeout;
  settled: boolean;
  running: boolean;
}

/**
 * Runs requests on one connection, one at a time and in order (iiod answers a
 * connection's commands in sequence). Each request has its own deadline, counted from
 * when it was issued: when it passes, a queued request is dropped and a running one
 * kills the connection, so its late reply is never read. The next request opens a
 * fresh connection.
 *
 * A request's body must not throw for answers the server gives (negative errno values
 * are returned as values): a throw means the connection is in doubt and it is killed.
 */
export class RequestChannel {
  private queue: Job[] = [];
  private current?: Job;
  private conn?: Connection;
  private opening?: Promise<Connection>;
  private closed = false;
  private readonly ours = new WeakSet<Connection>();

  constructor(private readonly opts: RequestChannelOptions) {}

  /** The open connection, if any (for tests). */
  get currentConnection(): Connection | undefined {
    return this.conn;
  }

  /** Installs an already open connection (the one the context was created on). */
  adopt(conn: Connection): void {
    this.conn = conn;
    this.watch(conn);
  }

  run<T>(op: string, ctx: IioErrorContext, body: (c: Connection) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed) {
        reject(new IioError('EBADF', 'the context is closed', { ...ctx, op }));
        return;
      }
      const down = this.opts.unavailable?.();
      if (down) {
        reject(IioError.wrap(down, { ...ctx, op }));
        return;
      }
      const job: Job = {
        op,
        ctx,
        body: body as (c: Connection) => Promise<unknown>,
        resolve: resolve as (v: unknown) => void,
        reject,
        settled: false,
        running: false,
      };
      const t = this.opts.timeoutMs();
      if (t > 0) job.timer = setTimeout(() => this.expire(job, t), t);
      this.queue.push(job);
      this.pump();
    });
  }

  private settle(job: Job, err: unknown, value?: unknown): void {
    if (job.settled) return;
    job.settled = true;
    if (job.timer) clearTimeout(job.timer);
    if (err !== undefined) job.reject(IioError.wrap(err, { ...job.ctx, op: job.op }));
    else job.resolve(value);
  }

  private expire(job: Job, t: number): void {
    if (job.settled) return;
    const err = new IioError('ETIMEDOUT', `no reply from iiod (${this.opts.where}) within ${t} ms`);
    if (job.running && this.conn) {
      // The reply may still come: drop the connection so it can never be mistaken
      // for the answer to a later request.
      this.kill(this.conn, err);
    }
    this.queue = this.queue.filter((j) => j !== job);
    this.settle(job, err);
  }

  private watch(conn: Connection): void {
    conn.onDeath((e) => {
      if (this.conn === conn) this.conn = undefined;
      if (!this.ours.has(conn) && !this.closed) this.opts.onLost?.(e);
    });
  }

  private kill(conn: Connection, err: IioError): void {
    this.ours.add(conn);
    if (this.conn === conn) this.conn = undefined;
    conn.kill(err);
  }

  private async connection(): Promise<Connection> {
    if (this.conn?.alive) return this.conn;
    if (!this.opening) {
      const t = this.opts.timeoutMs();
      this.opening = this.opts.open(t).finally(() => {
        this.opening = undefined;
      });
    }
    const c = await this.opening;
    if (this.closed) {
      this.kill(c, new IioError('EBADF', 'the context is closed'));
      throw new IioError('EBADF', 'the context is closed');
    }
    if (this.conn !== c) {
      this.conn = c;
      this.watch(c);
    }
    return c;
  }

  private pump(): void {
    if (this.current || !this.queue.length) return;
    const job = this.queue.shift()!;
    if (job.settled) {
      this.pump();
      return;
    }
    this.current = job;
    job.running = true;
    void this.execute(job).finally(() => {
      this.current = undefined;
      this.pump();
    });
  }

  private async execute(job: Job): Promise<void> {
    let conn: Connection;
    try {
      conn = await this.connection();
    } catch (err) {
      const e = IioError.wrap(err);
      this.settle(job, e);
      // A hung server shows as a timeout: the next request tries again. Anything else
      // (refused, reset, unreachable) means the server went away.
      if (e.code !== 'EBADF' && e.code !== 'ETIMEDOUT') this.opts.onLost?.(e);
      return;
    }
    if (job.settled) return; // timed out while connecting
    try {
      const v = await job.body(conn);
      this.settle(job, undefined, v);
    } catch (err) {
      const e = IioError.wrap(err);
      if (conn.alive) this.kill(conn, e);
      this.settle(job, conn.error ?? e);
    }
  }

  /** Fails everything queued with `error` (the server went away). */
  failPending(error: IioError): void {
    for (const j of this.queue.splice(0)) this.settle(j, error);
  }

  /** Drops the connection now (e.g. before a reconnect). */
  drop(error: IioError): void {
    if (this.conn) this.kill(this.conn, error);
  }

  /**
   * Runs `last` on the connection if it is open (e.g. `EXIT`), then closes; later
   * requests fail with EBADF.
   */
  async close(last?: (c: Connection) => void): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new IioError('EBADF', 'the context is closed');
    this.failPending(err);
    const c = this.conn;
    if (c?.alive) {
      try {
        last?.(c);
        await c.transport.drain();
      } catch {
        // closing anyway
      }
      this.kill(c, err);
    }
  }
}
