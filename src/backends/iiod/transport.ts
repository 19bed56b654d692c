/**
 * The byte streams the iiod protocol client runs over. The client (ASCII or binary
 * protocol) never knows whether it talks TCP, a USB pipe or a UART: it gets a `Link`
 * (one per context URI) and asks it for connections.
 */
import { IioError } from '../../errors';

/**
 * What a pending read still needs, for transports that read only on demand (a USB bulk
 * IN transfer must never ask for more than the server is bound to send, or it waits).
 */
export interface ReadWant {
  /** Memory to read the rest of a payload straight into (exactly what is still due). */
  readonly target?: Buffer;
  /** Bytes still due (at least); 0 when a reply line of unknown length is awaited. */
  readonly atLeast: number;
}

/** Receives what a transport reads. */
export interface TransportSink {
  /**
   * Bytes arrived. When `transient` is true the memory is reused as soon as this
   * returns: the sink must copy what it keeps.
   */
  data(chunk: Buffer, transient: boolean): void;
  /** The stream ended (EOF when `error` is absent). Called once. */
  end(error?: Error): void;
  /**
   * Optional zero-copy path: memory the next read may go straight into (the rest of a
   * payload being read), or undefined. A transport that uses it reports with `filled`.
   */
  readTarget?(): Buffer | undefined;
  /** `n` bytes were read into the memory `readTarget` returned last. */
  filled?(n: number): void;
  /**
   * Optional: at most how many bytes the next read should take when there is no
   * `readTarget` (a reply line is awaited: reading little keeps the payload after it for
   * the zero-copy path).
   */
  readLimit?(): number | undefined;
  /** Optional: what the pending read still needs, or undefined when none is pending. */
  want?(): ReadWant | undefined;
  /**
   * Optional: registers the callback an on-demand transport (USB) uses to learn that a
   * read became pending; it then calls `want()`.
   */
  setWantListener?(listener: () => void): void;
}

/**
 * What a write carries: a protocol line (`command`) or bytes the server reads by length
 * (`data`). A transport with message framing (USB bulk: iiod reads each transfer as a
 * whole) keeps every write in its own transfers and terminates command lines.
 */
export type WriteKind = 'command' | 'data';

/** One bidirectional byte stream to the server (a TCP connection, a USB pipe pair, a UART). */
export interface Transport {
  /** For messages: `tcp 127.0.0.1:30431`. */
  readonly description: string;
  /** Where received bytes go; set once, before any data is read. */
  attach(sink: TransportSink): void;
  /**
   * Queues bytes; a failure shows up as the sink's `end(error)`. Each call is one
   * message (see WriteKind); byte-stream transports ignore the kind.
   */
  write(data: Uint8Array, kind?: WriteKind): void;
  /** Resolves when everything written so far was handed to the OS (backpressure). */
  drain(): Promise<void>;
  /** Closes at once, dropping anything unsent. Idempotent. */
  close(): void;
  readonly closed: boolean;
  /**
   * True when deadlines should count from the last byte received rather than from the
   * request (a UART at 115200 baud moves 11 KB/s: a large reply is slow, not late).
   */
  readonly idleTimeouts?: boolean;
  /**
   * Optional, after close(): resolves once the server has let go of what this connection
   * held (its open device), where the transport can tell (a USB pipe's server thread has
   * ended). A TCP peer notices a hang-up on its own time.
   */
  settled?(): Promise<void>;
}

/** A way to reach one server: hands out connections to it. */
export interface Link {
  /** For messages and the `uri` context attribute: `127.0.0.1:30431`. */
  readonly description: string;
  /**
   * Opens a connection. `purpose` is `control` for the context's requests and `stream`
   * for a buffer (libiio opens one TCP connection per open buffer).
   */
  connect(purpose: 'control' | 'stream', timeoutMs: number): Promise<Transport>;
  /**
   * False when the link carries a single connection (a UART): buffers then share the
   * control connection.
   */
  readonly multiConnection: boolean;
  /** Context attributes the backend adds (`ip,ip-addr`, `uri`), in libiio's order. */
  contextAttrs(): Array<readonly [string, string]>;
  /** Prefix of the context description (`127.0.0.1`), or '' for none. */
  readonly descriptionPrefix: string;
  /** The backend's name as libiio prints it (`usb`, `serial`); `network` when absent. */
  readonly backendName?: string;
  /** The context timeout when the caller gives none (libiio's per-backend default). */
  readonly defaultTimeoutMs?: number;
  /**
   * Optional: the context description from the server's (absent when its XML has none);
   * replaces the `descriptionPrefix` rule (libiio's serial backend names the port).
   */
  contextDescription?(server: string | undefined): string;
  /** Optional: releases what the link holds (USB interface, serial port) once the context closes. */
  close?(): Promise<void>;
}

/**
 * A transport's end because the thing it runs over went away (USB device unplugged or
 * unbound, serial port gone): the context treats it as a lost server and reconnects,
 * whatever errno it carries (ENODEV, as libiio reports a vanished USB device).
 */
export class LinkLostError extends IioError {}

/** True when `e`, or an error it wraps, says the link went away. */
export function isLinkLoss(e: unknown): boolean {
  for (let x = e, depth = 0; x && depth < 8; depth++) {
    if (x instanceof LinkLostError) return true;
    x = (x as { cause?: unknown }).cause;
  }
  return false;
}
