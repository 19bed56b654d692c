import { ERRNO_TABLE } from './errno-table';

const byNumber = new Map<number, { code: string; message: string }>();
const byCode = new Map<string, number>();
for (const [errno, code, message] of ERRNO_TABLE) {
  byNumber.set(errno, { code, message });
  byCode.set(code, errno);
}
// Aliases glibc defines to the same number.
byCode.set('EWOULDBLOCK', byCode.get('EAGAIN') ?? 11);
byCode.set('ENOTSUP', byCode.get('EOPNOTSUPP') ?? 95);
byCode.set('EDEADLOCK', byCode.get('EDEADLK') ?? 35);

/** An errno name glibc knows (`'EBUSY'`). */
export type ErrnoCode = (typeof ERRNO_TABLE)[number][1];

/**
 * errno numbers by name, from the errno table: code says `ERRNO.EBUSY`, never a bare 16
 * (a typo is a type error, not a silent wrong number).
 */
export const ERRNO: { readonly [K in ErrnoCode]: number } = Object.freeze(
  Object.fromEntries(ERRNO_TABLE.map(([n, c]) => [c, n])) as { [K in ErrnoCode]: number },
);

/** The errno number of a code such as `'ENOENT'` (0 if unknown). */
export function errnoOf(code: string): number {
  return byCode.get(code) ?? 0;
}

/** The errno code (`'ENOENT'`) of a number; `'EUNKNOWN'` if the number is not an errno. */
export function codeOf(errno: number): string {
  return byNumber.get(Math.abs(errno))?.code ?? 'EUNKNOWN';
}

/**
 * What libiio's `iio_strerror()` prints: glibc's message followed by the number,
 * e.g. `Function not implemented (38)`.
 */
export function strerror(errno: number): string {
  const n = Math.abs(errno);
  const known = byNumber.get(n);
  return known ? `${known.message} (${n})` : `Unknown error ${n}`;
}

/** The errno number of any error, EIO when it carries none (libiio's fallback). */
export function errnoOrEio(err: unknown): number {
  return IioError.wrap(err).errno || ERRNO.EIO;
}

/** Where an error happened: every field that is known is named in the message. */
export interface IioErrorContext {
  uri?: string;
  device?: string;
  channel?: string;
  attr?: string;
  file?: string;
  /** What was being done, e.g. `read`, `write`, `open buffer`. */
  op?: string;
}

/**
 * The one error type of the library. `code` is an errno name (`ENOENT`, `EBUSY`,
 * `ETIMEDOUT`, ...), `errno` its number; the message names the device, channel,
 * attribute, file and URI that were involved, where known.
 */
export class IioError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly uri?: string;
  readonly device?: string;
  readonly channel?: string;
  readonly attr?: string;
  readonly file?: string;
  readonly op?: string;
  /** The message without its code and location (used when re-wrapping). */
  readonly detail: string;

  constructor(
    code: string,
    detail: string,
    ctx: IioErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(IioError.compose(code, detail, ctx), options);
    this.name = 'IioError';
    this.code = code;
    this.errno = errnoOf(code);
    this.uri = ctx.uri;
    this.device = ctx.device;
    this.channel = ctx.channel;
    this.attr = ctx.attr;
    this.file = ctx.file;
    this.op = ctx.op;
    this.detail = detail || strerror(errnoOf(code));
  }

  private static compose(code: string, detail: string, ctx: IioErrorContext): string {
    const where: string[] = [];
    if (ctx.device) where.push(`device ${ctx.device}`);
    if (ctx.channel) where.push(`channel ${ctx.channel}`);
    if (ctx.attr) where.push(`attribute ${ctx.attr}`);
    let msg = ctx.op ? `${ctx.op}: ` : '';
    if (where.length) msg += `${where.join(', ')}: `;
    msg += detail || strerror(errnoOf(code));
    const tail: string[] = [];
    if (ctx.file) tail.push(`file ${ctx.file}`);
    if (ctx.uri) tail.push(`context ${ctx.uri}`);
    if (tail.length) msg += ` (${tail.join(', ')})`;
    return `${code}: ${msg}`;
  }

  /** Builds an IioError from a negative errno as returned by iiod or the kernel. */
  static fromErrno(errno: number, ctx: IioErrorContext = {}, detail?: string): IioError {
    const code = codeOf(errno);
    return new IioError(code, detail ?? strerror(errno), ctx);
  }

  /**
   * Wraps an error from Node (fs, net, the addon) into an IioError, keeping the
   * errno code when there is one. IioErrors pass through, enriched with missing context.
   */
  static wrap(err: unknown, ctx: IioErrorContext = {}): IioError {
    if (err instanceof IioError) {
      if (Object.keys(ctx).every((k) => err[k as keyof IioErrorContext] !== undefined)) return err;
      const merged: IioErrorContext = {
        uri: err.uri ?? ctx.uri,
        device: err.device ?? ctx.device,
        channel: err.channel ?? ctx.channel,
        attr: err.attr ?? ctx.attr,
        file: err.file ?? ctx.file,
        op: err.op ?? ctx.op,
      };
      return new IioError(err.code, err.detail, merged, { cause: err });
    }
    const e = err as NodeJS.ErrnoException | undefined;
    const code = typeof e?.code === 'string' && errnoOf(e.code) ? e.code : 'EIO';
    const detail =
      typeof e?.code === 'string' && errnoOf(e.code)
        ? strerror(errnoOf(e.code))
        : e instanceof Error
          ? e.message
          : String(err);
    return new IioError(code, detail, ctx, { cause: err });
  }
}
