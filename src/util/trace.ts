/**
 * Tracing, Node's way: one `util.debuglog` section per part of the library, switched on
 * with NODE_DEBUG (`NODE_DEBUG=iiokit:local,iiokit:server`, `NODE_DEBUG=iiokit:*`).
 * `NODE_DEBUG=iiokit` or `IIOKIT_DEBUG=1` switch on every section. The sections are
 * listed in docs/architecture.md ("Tracing").
 *
 * Nothing is traced per block or per sample: a trace call on a streaming path would cost
 * even when off (its message is built first). Where a message is costly to build, test
 * `trace.enabled` first.
 */
import { debuglog } from 'node:util';

/** A trace function of one section; `enabled` says whether calling it prints anything. */
export interface Trace {
  (message: string): void;
  readonly enabled: boolean;
}

/** The umbrella section: `NODE_DEBUG=iiokit` traces every section. */
const everything = debuglog('iiokit');

/**
 * The trace function of section `iiokit:<section>`. Whether it prints is settled at the
 * first call, like debuglog (NODE_DEBUG and IIOKIT_DEBUG are read once), so a trace
 * that is off costs a call and a test.
 */
export function tracer(section: string): Trace {
  const name = `iiokit:${section}`;
  const own = debuglog(name);
  let mode: 'off' | 'stderr' | 'own' | 'everything' | undefined;
  const settle = (): NonNullable<typeof mode> =>
    (mode ??= process.env.IIOKIT_DEBUG
      ? 'stderr'
      : own.enabled
        ? 'own'
        : everything.enabled
          ? 'everything'
          : 'off');
  const trace = (message: string): void => {
    switch (settle()) {
      case 'off':
        return;
      case 'stderr':
        process.stderr.write(`${name}: ${message}\n`);
        return;
      case 'own':
        own(message);
        return;
      case 'everything':
        everything(`${section}: ${message}`);
    }
  };
  Object.defineProperty(trace, 'enabled', { get: () => settle() !== 'off' });
  return trace as Trace;
}
