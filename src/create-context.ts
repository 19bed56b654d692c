import { openBackend } from './backends';
import type { BackendStatusEvent } from './model/backend';
import { IioError } from './errors';
import { Context } from './model/context';

export interface CreateContextOptions {
  /** Timeout of every operation in ms (0 = wait forever); backend default if absent. */
  readonly timeoutMs?: number;
  /** Backend-specific options (e.g. `sysfsRoot` for local:, `reconnect` for ip:). */
  readonly [option: string]: unknown;
}

/**
 * libiio's default context URI (iio_create_default_context, iio_getenv): `IIOD_REMOTE`
 * holds a whole URI (`ip:192.168.2.1`, `usb:`, `ip:` to discover); a value shorter than
 * `ip:` or longer than a host name and port allow is ignored; without it, `local:`.
 */
export function defaultContextUri(env: NodeJS.ProcessEnv = process.env): string {
  const v = env.IIOD_REMOTE;
  // FQDN_LEN (255) + "serial:" + ":65535" - 2, as libiio's iio_getenv
  if (v === undefined || v.length < 3 || v.length >= 255 + 8 + 7 - 2) return 'local:';
  return v;
}

/**
 * Opens an IIO context. Without a URI: the URI in `IIOD_REMOTE` when set (as libiio:
 * a URI, so `IIOD_REMOTE=ip:192.168.2.1`), else `local:`.
 *
 * URIs: `local:`, `ip:host[:port]`, `ip:[v6addr]:port`, `ip:` (discover),
 * `usb:[bus.addr[.intf]]`, `serial:port[,baud[,8n1]]`, `xml:path`, `emu:`, `emu:path.xml`.
 */
export async function createContext(
  uri?: string,
  options: CreateContextOptions = {},
): Promise<Context> {
  let target = uri;
  if (target === undefined || target === '') {
    target = defaultContextUri();
    if (target !== 'local:' && !/^[a-z]+:/i.test(target)) {
      // libiio fails here with ENOSYS (no backend for the "URI"); say why.
      throw new IioError(
        'ENOSYS',
        `IIOD_REMOTE="${target}" is not a context URI: libiio reads a whole URI there, e.g. IIOD_REMOTE=ip:${target}`,
        { uri: target, op: 'create context' },
      );
    }
  }
  let ctx: Context | undefined;
  const pending: BackendStatusEvent[] = [];
  const onStatus = (ev: BackendStatusEvent): void => {
    if (ctx) ctx.handleStatus(ev);
    else pending.push(ev);
  };
  try {
    const backend = await openBackend(target, { ...options, onStatus });
    ctx = new Context(backend);
    for (const ev of pending) ctx.handleStatus(ev);
    return ctx;
  } catch (err) {
    throw IioError.wrap(err, { uri: target, op: 'create context' });
  }
}
