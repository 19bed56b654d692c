/**
 * What the client asks of the protocol its control connection speaks. The handshake
 * picks one dialect — 0.x ASCII (ascii.ts) or libiio 1.0's binary frames (binary.ts) —
 * and the client holds that object: it never asks which protocol it speaks.
 * Buffers always use ASCII connections of their own (stream.ts), whatever the dialect.
 */
import type { IioError, IioErrorContext } from '../../errors';
import type { AttrRef } from '../../model/backend';
import type { DeviceInfo } from '../../model/info';
import type { Connection } from './connection';

/** What a dialect needs from the client. */
export interface DialectHost {
  readonly uri: string;
  /** Runs one request on the control connection (in order, under its deadline). */
  run<T>(op: string, ctx: IioErrorContext, body: (c: Connection) => Promise<T>): Promise<T>;
  /** The devices as the server described them at connection (frames index them). */
  devices(): readonly DeviceInfo[];
}

export type AttrFamily = 'device' | 'debug' | 'buffer' | 'channel';

export interface IiodDialect {
  readonly name: 'ascii' | 'binary';
  /** What a new control connection must send before requests (BINARY), under `timeoutMs`. */
  setUp(c: Connection, timeoutMs: number): Promise<void>;
  /** Tells the server our timeout on `c` (it gets half); resolves with its answer. */
  sendTimeout(c: Connection, timeoutMs: number): Promise<number>;
  readAttr(ref: AttrRef): Promise<string>;
  /** Writes the value (with its NUL, as libiio); resolves with the bytes the server took. */
  writeAttr(ref: AttrRef, value: string): Promise<number>;
  /** Every attribute of one family, in the description's order; failed ones as IioErrors. */
  readAllAttrs(
    device: DeviceInfo,
    family: AttrFamily,
    channel?: DeviceInfo['channels'][number],
  ): Promise<Array<string | IioError>>;
  getTrigger(device: DeviceInfo): Promise<string | null>;
  setTrigger(device: DeviceInfo, trigger: DeviceInfo | null): Promise<void>;
  readRegister(device: DeviceInfo, address: number): Promise<number>;
  writeRegister(device: DeviceInfo, address: number, value: number): Promise<void>;
  setKernelBuffersCount(device: DeviceInfo, count: number): Promise<void>;
  /** Sends what the protocol says before hanging up (or nothing); `c` is then closed. */
  goodbye(c: Connection): void;
}

/** The error context of an attribute request. */
export function attrCtx(
  uri: string,
  ref: { device?: DeviceInfo; channel?: { id: string }; attr?: { name: string } },
): IioErrorContext {
  return { uri, device: ref.device?.id, channel: ref.channel?.id, attr: ref.attr?.name };
}
