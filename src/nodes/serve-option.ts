import type { Context } from '../model/context';

/** A running "serve this context" server, as src/server returns it. */
export interface ServerLike {
  close(): Promise<void> | void;
}

/**
 * The config node's "Serve it" option: serves an open context over the iiod protocol.
 * A failure is logged, not thrown: the context itself still works for the flows.
 */
export async function serveForNodes(
  ctx: Context,
  port: number,
  host: string | undefined,
  allow: readonly string[] | undefined,
  log: (level: 'info' | 'warn', text: string) => void,
): Promise<ServerLike | undefined> {
  try {
    // Loaded lazily: only a config node with "serve this context" needs the server.
    const mod = require('../server') as {
      serveContext(
        c: Context,
        o: { port: number; bind?: string; allow?: readonly string[] },
      ): Promise<ServerLike & { uri?: string }>;
    };
    const server = await mod.serveContext(ctx, {
      port,
      ...(host ? { bind: host } : {}),
      ...(allow?.length ? { allow } : {}),
    });
    log('info', `serving ${ctx.uri} as ${server.uri ?? `port ${port}`}`);
    return server;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'MODULE_NOT_FOUND' ? 'the iiod server is not available in this build' : e.message;
    log('warn', `cannot serve ${ctx.uri} on port ${port}: ${why}`);
    return undefined;
  }
}
