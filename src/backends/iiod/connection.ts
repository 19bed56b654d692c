import { IioError } from '../../errors';
import { parseInteger } from '../../iiod-protocol/ascii';
import { MAX_LINE, ProtocolError } from '../../iiod-protocol/wire';
import { ByteReader } from './reader';
import type { Transport } from './transport';

/** Why a connection ended, as the error its pending and later reads get. */
export function connectionLost(where: string, cause?: Error): IioError {
  if (cause instanceof IioError) return cause;
  const e = cause ? IioError.wrap(cause) : undefined;
  const code = e && e.code !== 'EIO' ? e.code : 'ECONNRESET';
  return new IioError(
    code,
    `the connection to iiod (${where}) was lost${e ? `: ${e.detail}` : ''}`,
    {},
    cause ? { cause } : undefined,
  );
}

/**
 * One connection to iiod: a transport and the reader over it. It carries one request at
 * a time (the caller serialises). A connection whose state is in doubt — a request timed
 * out, a reply did not parse — is killed, never reused: a late reply can then never be
 * read as the answer to a later request (libiio's desync, PR #589).
 */
export class Connection {
  readonly reader: ByteReader;
  private deathError?: IioError;
  private readonly deathListeners: Array<(e: IioError) => void> = [];

  constructor(readonly transport: Transport) {
    this.reader = new ByteReader((cause) => {
      const e = connectionLost(transport.description, cause);
      this.died(e);
      return e;
    });
    this.reader.trackActivity = transport.idleTimeouts === true;
    transport.attach(this.reader);
  }

  /**
   * How long a deadline of `ms` that started at `since` still runs: from the request,
   * or, on links with idle timeouts, from the last byte received after it.
   */
  remaining(ms: number, since: number): number {
    const from = this.reader.trackActivity ? Math.max(since, this.reader.lastDataAt) : since;
    return from + ms - Date.now();
  }

  get alive(): boolean {
    return !this.deathError;
  }

  get error(): IioError | undefined {
    return this.deathError;
  }

  /** Called once when the connection ends for any reason. */
  onDeath(cb: (e: IioError) => void): void {
    if (this.deathError) cb(this.deathError);
    else this.deathListeners.push(cb);
  }

  private died(e: IioError): void {
    if (this.deathError) return;
    this.deathError = e;
    for (const cb of this.deathListeners.splice(0)) cb(e);
  }

  /** Drops the connection; pending reads reject with `error`. */
  kill(error: IioError): void {
    this.died(error);
    this.reader.fail(error);
    this.transport.close();
  }

  /** Sends a command line (a string) or payload bytes (see WriteKind). */
  send(text: string | Uint8Array): void {
    if (this.deathError) throw this.deathError;
    if (typeof text === 'string') this.transport.write(Buffer.from(text, 'latin1'), 'command');
    else this.transport.write(text, 'data');
  }

  /**
   * Reads one decimal integer line as iiod prints it (`%li\n`); empty lines before it
   * are skipped as libiio does. Anything else is a protocol error.
   */
  async readInteger(): Promise<number> {
    for (let blank = 0; ; blank++) {
      const line = await this.reader.readLine(MAX_LINE);
      if (line.trim() === '') {
        if (blank > 16) throw new ProtocolError('too many empty lines');
        continue;
      }
      return parseInteger(line);
    }
  }
}

/** Runs `p` on `c`; past `ms` the connection is killed with ETIMEDOUT (p then rejects). */
export async function withDeadline<T>(
  c: Connection,
  ms: number,
  where: string,
  p: Promise<T>,
): Promise<T> {
  if (!(ms > 0)) return p;
  const since = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
    // on idle-timeout links (a UART) a reply still arriving keeps the deadline away
    const left = c.remaining(ms, since);
    if (left > 0) {
      timer = setTimeout(check, left);
      return;
    }
    c.kill(new IioError('ETIMEDOUT', `no reply from iiod within ${ms} ms`, { uri: where }));
  };
  timer = setTimeout(check, ms);
  try {
    return await p;
  } finally {
    clearTimeout(timer);
  }
}
