/**
 * `iiokit attr`'s command line, parsed into what it asks for (an AttrQuery) before any
 * context exists: libiio 0.24's iio_attr option handling (tests/iio_attr.c), its checks
 * and its messages, kept apart from running the query (attr-run.ts).
 */
import { parseCommon, type CommonOptions, type ToolSpec } from './common';
import type { Out } from './io';

export const ATTR_TOOL: ToolSpec = {
  name: 'iio_attr',
  command: 'attr',
  optstring: '+CdcBDiosIqvg:',
  longs: [
    { name: 'ignore-case', arg: 'none', val: 'I' },
    { name: 'quiet', arg: 'none', val: 'q' },
    { name: 'verbose', arg: 'none', val: 'v' },
    { name: 'generate-code', arg: 'required', val: 'g' },
    { name: 'input-channel', arg: 'none', val: 'i' },
    { name: 'output-channel', arg: 'none', val: 'o' },
    { name: 'scan-channel', arg: 'none', val: 's' },
    { name: 'device-attr', arg: 'none', val: 'd' },
    { name: 'channel-attr', arg: 'none', val: 'c' },
    { name: 'context-attr', arg: 'none', val: 'C' },
    { name: 'buffer-attr', arg: 'none', val: 'B' },
    { name: 'debug-attr', arg: 'none', val: 'D' },
  ],
  usage: [
    '-d [device] [attr] [value]\n' +
      '\t\t\t\t-c [device] [channel] [attr] [value]\n' +
      '\t\t\t\t-B [device] [attr] [value]\n' +
      '\t\t\t\t-D [device] [attr] [value]\n' +
      '\t\t\t\t-C [attr]',
    'Ignore case distinctions.',
    'Return result only.',
    'Verbose, say what is going on',
    'Generate code.',
    'Filter Input Channels only.',
    'Filter Output Channels only.',
    'Filter Scan Channels only.',
    'Read/Write device attributes',
    'Read/Write channel attributes.',
    'Read IIO context attributes.',
    'Read/Write buffer attributes.',
    'Read/Write debug attributes.',
  ],
};

/** libiio truncates every argument to NAME_MAX bytes (dup_argv). */
const NAME_MAX = 255;

export enum Verbosity {
  Quiet,
  Normal,
  Verbose,
}

/** Which attributes a query reads or writes: -C, -d, -c, -B or -D. */
export type AttrTarget = 'context' | 'device' | 'channel' | 'buffer' | 'debug';

/** One iio_attr query: names may be wildcards (`.`, `*`, `key*`, `*key*`, `*key`). */
export interface AttrQuery {
  readonly target: AttrTarget;
  readonly device?: string;
  readonly channel?: string;
  readonly attr?: string;
  /** The value to write; absent for a read. */
  readonly value?: string;
  /** -i, -o, -s: channel filters. */
  readonly inputOnly: boolean;
  readonly outputOnly: boolean;
  readonly scanOnly: boolean;
  /** -I */
  readonly ignoreCase: boolean;
  /** -q / -v; a wildcard name makes a query verbose, as iio_attr does. */
  readonly verbosity: Verbosity;
}

/**
 * A command line iio_attr refuses, with what it prints. `early` refusals (bad own
 * options) are printed even when the context could not be created; the others only
 * once it was (iio_attr checks them after creating it).
 */
export interface AttrRefusal {
  readonly early: boolean;
  readonly stdout: readonly string[];
  readonly stderr: readonly string[];
}

/** What the command line asks for once the context is open. */
export type AttrPlan =
  | { readonly kind: 'query'; readonly query: AttrQuery }
  /** No -d/-c/-C/-B/-D and no argument at all: the usage text, exit 0. */
  | { readonly kind: 'usage' }
  | { readonly kind: 'refuse'; readonly refusal: AttrRefusal };

export type AttrCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'scan'; readonly arg?: string }
  /** Open the context `common` names, then carry out `plan`. */
  | { readonly kind: 'run'; readonly common: CommonOptions; readonly plan: AttrPlan };

const isWildcard = (s: string | undefined): boolean =>
  s !== undefined && (s === '.' || s.includes('*'));

const TARGET_OF: Readonly<Record<string, AttrTarget>> = {
  d: 'device',
  c: 'channel',
  C: 'context',
  B: 'buffer',
  D: 'debug',
};

function refuse(early: boolean, stderr: string[], stdout: string[] = []): AttrPlan {
  return { kind: 'refuse', refusal: { early, stdout, stderr } };
}

/**
 * Parses iio_attr's arguments. Common-option diagnostics (clamped numbers, exclusive
 * -a/-x/-u) go to `err` as libiio prints them while parsing; an exclusive-option error
 * throws CliExit(1) after printing, as parseCommon does.
 */
export function parseAttrArgs(argv: readonly string[], err: Out): AttrCommand {
  // getopt would read a negative number as an option: iio_attr keeps a last argument
  // like `-5` out of option parsing (it can only be a value to write).
  const args = argv.map((a) => a.slice(0, NAME_MAX));
  const last = args[args.length - 1];
  const negativeLast = last !== undefined && /^-[0-9]/.test(last);
  const opts = parseCommon(negativeLast ? args.slice(0, -1) : args, ATTR_TOOL, err);
  if (opts.help) return { kind: 'help' };
  if (opts.scan) return { kind: 'scan', arg: opts.scan.arg };
  const operands = negativeLast ? [...opts.operands, last] : opts.operands;
  return { kind: 'run', common: opts, plan: planQuery(opts, operands, argv.length === 0) };
}

/** iio_attr's own options and operands, checked in its order, into a query or a refusal. */
function planQuery(opts: CommonOptions, operands: readonly string[], noArgs: boolean): AttrPlan {
  const targets = new Set<AttrTarget>();
  let inputOnly = false;
  let outputOnly = false;
  let scanOnly = false;
  let ignoreCase = false;
  let verbosity = Verbosity.Normal;
  for (const o of opts.own) {
    if (o.opt in TARGET_OF) targets.add(TARGET_OF[o.opt]);
    else if (o.opt === 'i') inputOnly = true;
    else if (o.opt === 'o') outputOnly = true;
    else if (o.opt === 's') scanOnly = true;
    else if (o.opt === 'I') ignoreCase = true;
    else if (o.opt === 'q') verbosity = Verbosity.Quiet;
    else if (o.opt === 'v') verbosity = Verbosity.Verbose;
    else if (o.opt === 'g') {
      if (!o.arg || o.arg.startsWith('-'))
        return refuse(true, ['Code generation requires an option']);
      return refuse(true, ['iiokit attr: code generation (-g) is not supported']);
    } else if (o.opt === '?') {
      return refuse(
        true,
        opts.errors.map((m) => `iiokit attr: ${m}`),
        ["Unknown argument '?'"],
      );
    }
  }

  if (targets.size >= 2)
    return refuse(false, ['The options -d, -c, -C, -B, and -D are exclusive (can use only one).']);
  const [target] = targets;
  if (target === undefined)
    return noArgs
      ? { kind: 'usage' }
      : refuse(false, ['must specify one of -d, -c, -C, -B or -D.']);

  const tooMany = (what: string): AttrPlan =>
    refuse(false, [`Too many options for searching for ${what}`]);
  let device: string | undefined;
  let channel: string | undefined;
  let attr: string | undefined;
  let value: string | undefined;
  if (target === 'context') {
    if (operands.length >= 2) return tooMany('context attributes');
    attr = operands[0];
  } else if (target === 'channel') {
    if (operands.length >= 5) return tooMany('channel attributes');
    [device, channel, attr, value] = operands;
  } else {
    if (operands.length >= 4)
      return tooMany(target === 'buffer' ? 'buffer attributes' : 'device attributes');
    [device, attr, value] = operands;
  }

  if (isWildcard(device) || isWildcard(channel) || isWildcard(attr)) {
    if (value !== undefined) return refuse(false, [], ["can't write value with wildcard match"]);
    verbosity = Verbosity.Verbose;
  }
  return {
    kind: 'query',
    query: {
      target,
      device,
      channel,
      attr,
      value,
      inputOnly,
      outputOnly,
      scanOnly,
      ignoreCase,
      verbosity,
    },
  };
}
