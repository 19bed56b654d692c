/**
 * Kernel events of a remote device, over libiio 1.0's binary protocol (iiod 0.x has no
 * events): a connection of their own, switched to binary, CREATE_EVSTREAM for the device,
 * then one blocking READ_EVENT at a time, each answered with a 16-byte `struct iio_event`
 * when the server's device produces one. libiio's client keeps its event streams on its
 * one connection under their own client ids; a connection of our own keeps the control
 * connection's one-request-at-a-time order intact while a read waits for hours.
 * Closing drops the connection: iiod frees a client's event streams when it goes.
 */
import { IioError, type IioErrorContext } from '../../errors';
import {
  decodeEvent,
  decodeHeader,
  encodeFrame,
  EVENT_BYTES,
  HEADER_BYTES,
  OP,
} from '../../iiod-protocol/binary';
import { ProtocolError } from '../../iiod-protocol/wire';
import type { BackendEventStream, RawEvent } from '../../model/backend';
import type { Connection } from './connection';

/** The client id of our event streams (libiio's count down from this one). */
export const EVENT_CLIENT_ID = 0xffff;

/** Sends one frame on the event stream's client id and reads its response's code (and data). */
async function command(
  c: Connection,
  op: number,
  dev: number,
  code: number,
): Promise<{ code: number; data?: Buffer }> {
  c.send(encodeFrame({ clientId: EVENT_CLIENT_ID, op, dev, code }));
  const h = decodeHeader(await c.reader.readExact(HEADER_BYTES));
  if (h.op !== OP.RESPONSE)
    throw new ProtocolError(`expected a response frame, got opcode ${h.op}`);
  if (h.clientId !== EVENT_CLIENT_ID)
    throw new ProtocolError(`a response for client id ${h.clientId} on an event connection`);
  if (h.code <= 0 || op !== OP.READ_EVENT) return { code: h.code };
  if (h.code !== EVENT_BYTES) throw new ProtocolError(`an event of ${h.code} bytes`);
  return { code: h.code, data: await c.reader.readExact(h.code) };
}

/** One device's events on a binary connection of their own. */
export class IiodEventStream implements BackendEventStream {
  private closed = false;

  private constructor(
    private readonly conn: Connection,
    private readonly dev: number,
    private readonly where: IioErrorContext,
  ) {}

  /**
   * CREATE_EVSTREAM for device `dev` (its wire index) on `conn`, already switched to the
   * binary protocol. The connection is the stream's from then on (killed on failure).
   */
  static async open(
    conn: Connection,
    dev: number,
    where: IioErrorContext,
    deadline: <T>(p: Promise<T>) => Promise<T>,
  ): Promise<IiodEventStream> {
    try {
      const r = await deadline(command(conn, OP.CREATE_EVSTREAM, dev, 0));
      if (r.code < 0) throw IioError.fromErrno(r.code, { ...where, op: 'open events' });
    } catch (err) {
      const e = IioError.wrap(err, { ...where, op: 'open events' });
      conn.kill(e);
      throw e;
    }
    return new IiodEventStream(conn, dev, where);
  }

  /** The next event: a blocking READ_EVENT, answered when the device has one. */
  async read(): Promise<RawEvent> {
    if (this.closed) throw this.cancelled();
    try {
      const r = await command(this.conn, OP.READ_EVENT, this.dev, 0);
      if (r.code < 0) throw IioError.fromErrno(r.code, { ...this.where, op: 'read event' });
      return decodeEvent(r.data!);
    } catch (err) {
      if (this.closed) throw this.cancelled();
      // a connection in doubt is never read again
      const e = IioError.wrap(err, { ...this.where, op: 'read event' });
      this.conn.kill(e);
      throw e;
    }
  }

  private cancelled(): IioError {
    return new IioError('ECANCELED', 'the event stream was closed', this.where);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.conn.kill(this.cancelled());
  }
}
