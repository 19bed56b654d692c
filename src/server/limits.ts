/**
 * The server's bounds (docs/server.md, "Limits"): memory per connection and for the whole
 * server, whatever the clients ask, and how long a client may take over a command.
 *
 * Memory: what buffers may hold. Every open buffer, and every device stream, reserves
 * what it can hold at most before it opens; an open that does not fit is refused
 * (-ENOMEM, what iiod answers when an allocation fails) and nothing is allocated. The
 * reservations are upper bounds (a reader that shares the stream's block holds no copy
 * of it): the budget errs on the side of refusing.
 */

/** A pool of bytes that reservations draw from. */
export class MemoryBudget {
  private used = 0;

  constructor(
    /** Bytes that may be reserved in all. */
    readonly limit: number,
    /** The pool above this one (a connection's is the server's): both must have room. */
    private readonly parent?: MemoryBudget,
  ) {}

  /** Bytes reserved now. */
  get reserved(): number {
    return this.used;
  }

  /** Whether `bytes` more fit here and in every pool above. */
  fits(bytes: number): boolean {
    return this.used + bytes <= this.limit && (this.parent?.fits(bytes) ?? true);
  }

  /** Takes `bytes` here and above; undefined (nothing taken) when they do not fit. */
  reserve(bytes: number): Reservation | undefined {
    if (!this.fits(bytes)) return undefined;
    this.take(bytes);
    return new Reservation(this, bytes);
  }

  /** @internal */
  take(bytes: number): void {
    this.used += bytes;
    this.parent?.take(bytes);
  }
}

/** Bytes held from a budget until released (idempotent). */
export class Reservation {
  private released = false;

  constructor(
    private readonly budget: MemoryBudget,
    readonly bytes: number,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.take(-this.bytes);
  }
}

/** Every bound of a server, resolved (ServeOptions with their defaults). */
export interface ServerLimits {
  /** Connections served at once; past it the longest-idle one makes room, or the new one is refused. */
  readonly maxClients: number;
  /** Bytes a reader may have queued before its oldest blocks are dropped (one block is always kept). */
  readonly queueBytes: number;
  /** Largest buffer one OPEN may ask for (samples × bytes per scan of its channels). */
  readonly maxBufferBytes: number;
  /** What the buffers of one connection may reserve in all. */
  readonly connectionBytes: number;
  /** What the buffers and device streams of the whole server may reserve. */
  readonly memoryBytes: number;
  /** A command line must be whole, and a payload must progress, within this (0: never checked). */
  readonly commandTimeoutMs: number;
  /** A connection with nothing open and no command for this long is closed (0: never). */
  readonly idleTimeoutMs: number;
}

const MiB = 1024 * 1024;

/** The defaults (docs/server.md says why each is what it is). */
export const DEFAULT_LIMITS: ServerLimits = {
  maxClients: 64,
  queueBytes: 4 * MiB,
  maxBufferBytes: 64 * MiB,
  connectionBytes: 256 * MiB,
  memoryBytes: 512 * MiB,
  commandTimeoutMs: 30000,
  idleTimeoutMs: 0,
};

/** Device blocks a stream or an output buffer is counted with when no count was set. */
export const DEFAULT_DEVICE_BLOCKS = 4;
