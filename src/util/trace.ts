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

/** The trace function of section `iiokit:<section>`. */
export function tracer(section: string): Trace {
  const name = `iiokit:${section}`;
  const own = debuglog(name);
  const trace = (message: string): void => {
    if (process.env.IIOKIT_DEBUG) process.stderr.write(`${name}: ${message}\n`);
    else if (own.enabled) own(message);
    else if (everything.enabled) everything(`${section}: ${message}`);
  };
  Object.defineProperty(trace, 'enabled', {
    get: () => !!process.env.IIOKIT_DEBUG || own.enabled || everything.enabled,
  });
  return trace as Trace;
}
