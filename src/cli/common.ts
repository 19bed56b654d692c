import { createContext } from '../create-context';
import { ERRNO, IioError, strerror } from '../errors';
import type { Context } from '../model/context';
import { strtoul } from '../util/cnumber';
import { getopt, type LongOption, type ParsedOption } from './getopt';
import { CliExit, Out, type CliIo } from './io';

/** The options every libiio tool takes (iio_common.c): -h -x -u -a -S -T (and -n). */
export const COMMON_OPTSTRING = 'hn:x:u:a::S::T:';

export const COMMON_LONG: readonly LongOption[] = [
  { name: 'help', arg: 'none', val: 'h' },
  { name: 'xml', arg: 'required', val: 'x' },
  { name: 'uri', arg: 'required', val: 'u' },
  { name: 'scan', arg: 'optional', val: 'S' },
  { name: 'auto', arg: 'optional', val: 'a' },
  { name: 'timeout', arg: 'required', val: 'T' },
];

const COMMON_DESCRIPTIONS = [
  'Show this help and quit.',
  'Use the XML backend with the provided XML file.',
  "Use the context at the provided URI.\n\t\t\teg: 'ip:192.168.2.1', 'ip:pluto.local', or 'ip:'\n\t\t\t    'usb:1.2.3', or 'usb:'\n\t\t\t    'serial:/dev/ttyUSB0,115200,8n1'\n\t\t\t    'local:' (Linux only)\n\t\t\t    'emu:' (emulated devices)",
  "Scan for available backends.\n\t\t\toptional arg of specific backend(s)\n\t\t\t    'ip', 'usb' or 'ip:usb'",
  "Scan for available contexts and if a single context is\n\t\t\tavailable use it. <arg> filters backend(s)\n\t\t\t    'ip', 'usb' or 'ip:usb:'",
  'Context timeout in milliseconds.\n\t\t\t0 = no timeout (wait forever)',
];

export interface ToolSpec {
  /** libiio's name for the tool (`iio_info`), used in messages. */
  readonly name: string;
  /** Our subcommand (`info`). */
  readonly command: string;
  readonly optstring: string;
  readonly longs: readonly LongOption[];
  /** Usage line after `[OPTION]...` and the descriptions of the tool's own options. */
  readonly usage: readonly string[];
}

/** libiio's usage(): prints and exits 0. */
export function printUsage(out: Out, tool: ToolSpec): void {
  out.line('Usage:');
  out.line(`\tiiokit ${tool.command} [OPTION]...\t${tool.usage[0]}`);
  out.line('Options:');
  const arg = (l: LongOption): string =>
    l.arg === 'required' ? ' [arg]' : l.arg === 'optional' ? ' <arg>' : '';
  COMMON_LONG.forEach((l, i) =>
    out.line(`\t-${l.val}, --${l.name}${arg(l)}\n\t\t\t${COMMON_DESCRIPTIONS[i]}`),
  );
  // Our own additions have no short form (a long option's val is then a word, not a letter),
  // so that no letter libiio may take one day means something else here.
  tool.longs.forEach((l, i) =>
    out.line(
      `\t${l.val.length === 1 ? `-${l.val}, ` : ''}--${l.name}${arg(l)}\n\t\t\t${tool.usage[i + 1]}`,
    ),
  );
  out.line(
    '\nThis is free software; see the source for copying conditions.  There is NO\n' +
      'warranty; not even for MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.\n',
  );
}

export interface CommonOptions {
  readonly uri?: string;
  readonly scan?: { arg?: string };
  readonly auto?: { arg?: string };
  readonly timeoutMs?: number;
  readonly help: boolean;
  /** The tool's own options, in order. */
  readonly own: ParsedOption[];
  readonly operands: string[];
  readonly errors: string[];
}

/**
 * libiio's sanitize_clamp for numeric options: strtoul(first 19 characters, base 0),
 * 0 when nothing parses or it overflows (ERANGE), then clamped with a warning. A negative
 * number wraps around to a huge one, as strtoul does, and is clamped to the max.
 */
export function clampNumber(
  err: Out,
  name: string,
  text: string | undefined,
  min: number,
  max: number,
): number {
  let v = 0n;
  if (text !== undefined) {
    // snprintf into char[20]: at most 19 bytes of the argument
    const r = strtoul(Buffer.from(text, 'utf8').subarray(0, 19).toString('latin1'), 0);
    v = r.end === 0 || r.erange ? 0n : r.value;
  }
  if (v > BigInt(max)) {
    v = BigInt(max);
    err.line(`Clamped ${name} to max ${max}`);
  }
  if (v < BigInt(min)) {
    v = BigInt(min);
    err.line(`Clamped ${name} to min ${min}`);
  }
  return Number(v);
}

/** Parses the common options and the tool's own; `-S`/`-a` take the next word as libiio does. */
export function parseCommon(argv: readonly string[], tool: ToolSpec, err: Out): CommonOptions {
  const res = getopt(argv, COMMON_OPTSTRING + tool.optstring.replace(/^\+/, ''), [
    ...tool.longs,
    ...COMMON_LONG,
  ]);
  let uri: string | undefined;
  let scan: { arg?: string } | undefined;
  let auto: { arg?: string } | undefined;
  let timeoutMs: number | undefined;
  let help = false;
  const own: ParsedOption[] = [];
  const operands = [...res.operands];
  let chosen = '';
  const ownLetters = new Set(tool.optstring.replace(/[+:]/g, ''));
  const exclusive = (which: string): void => {
    if (chosen) {
      err.line('-a, -x, -n and -u are mutually exclusive');
      throw new CliExit(1);
    }
    chosen = which;
  };
  for (const o of res.options) {
    switch (o.opt) {
      case 'h':
        help = true;
        break;
      case 'x':
        exclusive('x');
        uri = `xml:${o.arg}`;
        break;
      case 'n':
        // libiio 1.0's iio_info uses -n for an option of its own (the tool's spec wins)
        if (ownLetters.has('n')) {
          own.push(o);
          break;
        }
        exclusive('n');
        uri = `ip:${o.arg}`;
        break;
      case 'u':
        exclusive('u');
        uri = o.arg;
        break;
      case 'a': {
        exclusive('a');
        let a = o.arg;
        if (a === undefined && operands.length && !operands[0].startsWith('-'))
          a = operands.shift();
        auto = { arg: a };
        break;
      }
      case 'S': {
        let a = o.arg;
        if (a === undefined && operands.length && !operands[0].startsWith('-'))
          a = operands.shift();
        scan = { arg: a };
        break;
      }
      case 'T':
        timeoutMs = clampNumber(err, 'timeout', o.arg, 0, 2147483647);
        break;
      default:
        own.push(o);
    }
  }
  return { uri, scan, auto, timeoutMs, help, own, operands, errors: res.errors };
}

/**
 * Opens the context the options name, printing libiio's messages on failure
 * (`Unable to create IIO context <uri>: <strerror>`). Throws CliExit(1) on failure.
 * As libiio, the context is created with its backend's own timeout and `-T` applies
 * once it exists (`-T 1` limits the requests, not the connection set-up).
 */
export async function openContext(
  opts: CommonOptions,
  err: Out,
  backendOptions: Readonly<Record<string, unknown>> = {},
): Promise<Context> {
  let ctx: Context;
  try {
    ctx = await createContext(opts.uri, backendOptions);
  } catch (e) {
    const ie = IioError.wrap(e);
    if (opts.uri)
      err.line(
        `Unable to create IIO context ${opts.uri.replace(/^xml:/, '')}: ${strerror(ie.errno || ERRNO.EIO)}`,
      );
    else err.line(`Unable to create Local IIO context : ${strerror(ie.errno || ERRNO.EIO)}`);
    if (process.env.IIOKIT_DEBUG) err.line(ie.message);
    else err.line(`  (${ie.message})`);
    throw new CliExit(1);
  }
  if (opts.timeoutMs !== undefined) {
    let errno = 0;
    if (!ctx.supportsTimeout) errno = ERRNO.ENOSYS;
    else {
      try {
        await ctx.setTimeout(opts.timeoutMs);
      } catch (e) {
        errno = IioError.wrap(e).errno || ERRNO.EIO;
      }
    }
    if (errno) {
      err.line(`IIO contexts set timeout failed : ${strerror(errno)}`);
      await ctx.close();
      throw new CliExit(1);
    }
  }
  return ctx;
}

/**
 * libiio's tools create the context while reading the common options, before their own:
 * a failure is said first, and their own options are still checked after it. Resolves
 * undefined when the context could not be created (the message is printed).
 */
export async function openContextFirst(
  opts: CommonOptions,
  err: Out,
  backendOptions: Readonly<Record<string, unknown>> = {},
): Promise<Context | undefined> {
  try {
    return await openContext(opts, err, backendOptions);
  } catch (e) {
    if (e instanceof CliExit) return undefined;
    throw e;
  }
}

/**
 * What libiio's tools do with an option getopt refused: getopt's own message on stderr
 * (`iio_info: invalid option -- 'Z'`, with our tool name), then `Unknown argument '?'`
 * on stdout (the tools print the `?` getopt returned, not the option); status 1.
 */
export function refuseOption(out: Out, err: Out, tool: ToolSpec, errors: readonly string[]): 1 {
  for (const e of errors) err.line(`iiokit ${tool.command}: ${e}`);
  out.line("Unknown argument '?'");
  return 1;
}

/** Runs a tool body with stdout/stderr buffered and CliExit turned into a status. */
export async function runTool(
  io: CliIo,
  body: (out: Out, err: Out) => Promise<number>,
): Promise<number> {
  const out = new Out(io.stdout);
  const err = new Out(io.stderr);
  try {
    return await body(out, err);
  } catch (e) {
    if (e instanceof CliExit) return e.status;
    out.flush();
    err.line(e instanceof Error ? e.message : String(e));
    return 1;
  } finally {
    out.flush();
    err.flush();
  }
}
