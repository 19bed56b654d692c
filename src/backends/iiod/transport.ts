/**
 * The byte streams the iiod protocol client runs over. The client (ASCII or binary
 * protocol) never knows whether it talks TCP, a USB pipe or a UART: it gets a `Link`
 * (one per context URI) and asks it for connections.
 */

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
}

/** One bidirectional byte stream to the server (a TCP connection, a USB pipe pair, a UART). */
export interface Transport {
  /** For messages: `tcp 127.0.0.1:30431`. */
  readonly description: string;
  /** Where received bytes go; set once, before any data is read. */
  attach(sink: TransportSink): void;
  /** Queues bytes; a failure shows up as the sink's `end(error)`. */
  write(data: Uint8Array): void;
  /** Resolves when everything written so far was handed to the OS (backpressure). */
  drain(): Promise<void>;
  /** Closes at once, dropping anything unsent. Idempotent. */
  close(): void;
  readonly closed: boolean;
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
}
