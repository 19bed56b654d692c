import { openBackend } from './backends';
import type { BackendStatusEvent } from './backends/backend';
import { IioError } from './errors';
import { Context } from './model/context';

export interface CreateContextOptions {
  /** Timeout of every operation in ms (0 = wait forever); backend default if absent. */
  readonly timeoutMs?: number;
  /** Backend-specific options (e.g. `sysfsRoot` for local:, `reconnect` for ip:). */
  readonly [option: string]: unknown;
}

/**
 * Opens an IIO context. Without a URI: `ip:$IIOD_REMOTE` when that variable is set
 * (as libiio does), else `local:`.
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
    const remote = process.env.IIOD_REMOTE;
    target = remote ? `ip:${remote}` : 'local:';
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
