import { IioError } from '../errors';
import { strtoul } from '../util/cnumber';
import { serveContext, IIOD_PORT, type ServeOptions } from '../server';
import {
  clampNumber,
  openContext,
  parseCommon,
  printUsage,
  runTool,
  type ToolSpec,
} from './common';
import type { CliIo } from './io';

export const SERVE_TOOL: ToolSpec = {
  name: 'iiokit serve',
  command: 'serve',
  optstring: 'p:b:A:N::wM:m:',
  longs: [
    { name: 'port', arg: 'required', val: 'p' },
    { name: 'bind', arg: 'required', val: 'b' },
    { name: 'allow', arg: 'required', val: 'A' },
    { name: 'advertise', arg: 'optional', val: 'N' },
    { name: 'whole-scan', arg: 'none', val: 'w' },
    { name: 'max-clients', arg: 'required', val: 'M' },
    { name: 'max-memory', arg: 'required', val: 'm' },
  ],
  usage: [
    '\n\t\t\tServe a context to libiio clients (iiod protocol 0.2x)',
    `TCP port to listen on (default ${IIOD_PORT}; 0 picks a free one).`,
    'Address to listen on (default 127.0.0.1; :: with --allow).',
    'Also accept clients from this address or CIDR (repeatable;\n\t\t\tloopback is always accepted).',
    'Announce the server on DNS-SD (_iio._tcp), optionally\n\t\t\tunder the given name.',
    'Send each reader the whole scan of every channel open on\n\t\t\tthe device (as iiod without -D).',
    'Most clients served at once (default 64); when full, the\n\t\t\tlongest idle makes room.',
    'MiB that buffers and device streams may hold in all\n\t\t\t(default 512); past it OPEN answers -ENOMEM.',
  ],
};

/**
 * `iiokit serve -u URI [-p PORT] [--bind ADDR] [--allow CIDR]... [--advertise[=NAME]]`:
 * serves any context over iiod's protocol until SIGINT/SIGTERM.
 */
export function serveMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runTool(io, async (out, err) => {
    const opts = parseCommon(argv, SERVE_TOOL, err);
    if (opts.help) {
      printUsage(out, SERVE_TOOL);
      return 0;
    }
    if (opts.errors.length) {
      for (const e of opts.errors) err.line(`iiokit serve: ${e}`);
      return 1;
    }
    if (opts.operands.length) {
      err.line(`iiokit serve: unexpected argument '${opts.operands[0]}'`);
      return 1;
    }
    const allow: string[] = [];
    let port = IIOD_PORT;
    let bind: string | undefined;
    let advertise: ServeOptions['advertise'];
    let demux = true;
    let maxClients: number | undefined;
    let memoryBytes: number | undefined;
    for (const o of opts.own) {
      if (o.opt === 'p') {
        const p = parsePort(o.arg ?? '');
        if (p === undefined) {
          // iiod's message and status
          err.line('iiokit serve: invalid port number');
          return 1;
        }
        port = p;
      } else if (o.opt === 'b') bind = o.arg;
      else if (o.opt === 'A') allow.push(o.arg ?? '');
      else if (o.opt === 'N') advertise = o.arg ? { name: o.arg } : true;
      else if (o.opt === 'w') demux = false;
      else if (o.opt === 'M') maxClients = clampNumber(err, 'max-clients', o.arg, 1, 100000);
      else if (o.opt === 'm')
        memoryBytes = clampNumber(err, 'max-memory', o.arg, 1, 1024 * 1024) * 1024 * 1024;
    }
    const ctx = await openContext(opts, err);
    let server;
    try {
      server = await serveContext(ctx, {
        port,
        bind,
        allow,
        advertise,
        demux,
        maxClients,
        memoryBytes,
        log: (m) => {
          err.line(`iiokit serve: ${m}`);
          err.flush();
        },
      });
    } catch (e) {
      await ctx.close();
      err.line(`iiokit serve: ${IioError.wrap(e).message}`);
      return 1;
    }
    const who = allow.length ? `loopback and ${allow.join(', ')}` : 'loopback only';
    err.line(`iiokit serve: serving ${ctx.uri} at ${server.uri} (${who})`);
    err.flush();
    // Our handlers stay installed until the devices are restored: a local: buffer's exit
    // guard only acts on a signal nobody else handles (it would re-raise it, and the
    // process would die of it, status 143, before "stopped after" is said).
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const onSignal = (): void => stop();
    for (const sig of signals) process.on(sig, onSignal);
    try {
      await stopped;
      const s = server.stats();
      await server.close();
      await ctx.close();
      err.line(
        `iiokit serve: stopped after ${s.accepted} connections (${s.refused} refused), ` +
          `${s.droppedScans} scans dropped for slow readers`,
      );
    } finally {
      for (const sig of signals) process.off(sig, onSignal);
    }
    return 0;
  });
}

/**
 * iiod's `-p`: a decimal number 0..65535 and nothing else (strtoul base 10 up to the end
 * of the argument); undefined otherwise.
 */
export function parsePort(text: string): number | undefined {
  const r = strtoul(text, 10);
  if (r.end === 0 || r.end !== text.length || r.erange || r.value > 0xffffn) return undefined;
  return Number(r.value);
}
