import { IioError } from '../../errors';
import { ByteReader, ProtocolError } from './reader';
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
    transport.attach(this.reader);
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

  send(text: string | Uint8Array): void {
    if (this.deathError) throw this.deathError;
    this.transport.write(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
  }

  /**
   * Reads one decimal integer line as iiod prints it (`%li\n`); empty lines before it
   * are skipped as libiio does. Anything else is a protocol error.
   */
  async readInteger(): Promise<number> {
    for (let blank = 0; ; blank++) {
      const line = await this.reader.readLine(1024);
      if (line.trim() === '') {
        if (blank > 16) throw new ProtocolError('too many empty lines');
        continue;
      }
      return parseReplyInteger(line);
    }
  }
}

/** `-22`, `4304`: iiod's integer replies; anything else is a ProtocolError. */
export function parseReplyInteger(line: string): number {
  const t = line.trim();
  if (!/^[-+]?\d{1,10}$/.test(t)) {
    throw new ProtocolError(`expected a number, got "${printable(line)}"`);
  }
  const v = Number(t);
  if (v > 0x7fffffff || v < -0x80000000) throw new ProtocolError(`number ${t} is out of range`);
  return v;
}

/** A short, printable rendering of bytes from the wire for error messages. */
export function printable(s: string, max = 60): string {
  const cut = s.length > max ? `${s.slice(0, max)}...` : s;
  return cut.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
