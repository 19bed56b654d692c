/**
 * `iiokit info --libiio 1.0`: a context printed as libiio 1.0's iio_info prints it
 * (utils/iio_info.c of libiio main): attributes with their file names, `options:` and
 * `range:` for `_available` lists, event attributes, buffers with their scan elements,
 * "(events supported)", trigger errors on stderr. libiio 0.24's format (info.ts) stays
 * the default; event attributes appear only here, since 0.24's iio_info has none.
 */
import { errnoOf, IioError, strerror } from '../errors';
import { formatScanType } from '../format/scan-type';
import type { Attr } from '../model/attr';
import type { Channel } from '../model/channel';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import { cG } from '../util/cformat';
import { openContext, parseCommon, printUsage, type ToolSpec } from './common';
import { LIBIIO1_UNNAMED_TYPES } from '../names/tables';
import type { Out } from './io';
import { printScan } from './scan';
import { LIBRARY_VERSION } from '../version';
import { readLibiio1Value } from './libiio1-value';

export interface Libiio1InfoOptions {
  /** -n: print attribute names only (context attributes keep their values). */
  readonly readAttrs: boolean;
  /** -d: read debug attributes too. */
  readonly readDebugAttrs: boolean;
}

/** iio_strerror of a negative code, as 1.0's iio_info prints it: `<message> (-<errno>)`. */
function negError(errno: number): string {
  return strerror(errno).replace(/\((\d+)\)$/, '(-$1)');
}

/** print_attr: `attr  N: name (file) value: ...`, `options: ...` or `range: [...]`. */
async function attrLine(a: Attr, level: number, idx: number, o: Libiio1InfoOptions) {
  let line = `${'\t'.repeat(level)}attr ${String(idx).padStart(2)}: ${a.name}`;
  const file = a.filename ?? a.name;
  if (file !== a.name) line += ` (${file})`;
  const read = a.kind === 'debug' ? o.readDebugAttrs : o.readAttrs;
  if (!read) return line;
  const v = await readLibiio1Value(a);
  if (v.kind === 'options') return `${line} options:${v.list.map((x) => ` ${x}`).join('')}`;
  if (v.kind === 'range')
    return `${line} range: [min: ${cG(v.min)} step: ${cG(v.step)} max: ${cG(v.max)}]`;
  if (v.kind === 'value') return `${line} value: ${v.text}`;
  return `${line} value: ERROR: ${negError(v.errno)}`;
}

/** Attribute lines of one list, read concurrently (one round trip each on remote contexts). */
function attrLines(list: readonly Attr[], level: number, o: Libiio1InfoOptions) {
  return Promise.all(list.map((a, i) => attrLine(a, level, i, o)));
}

/** A buffer as libiio 1.0 describes it. */
interface Buffer1 {
  readonly index: number;
  readonly isOutput: boolean;
  readonly scans: readonly Channel[];
  readonly attrs: readonly Attr[];
}

/** iio_sort_scan_elements: by scan index, then by shift. */
function sortScans(chs: Channel[]): Channel[] {
  return chs.sort((a, b) => a.index - b.index || (a.format?.shift ?? 0) - (b.format?.shift ?? 0));
}

/** iio_buffer_is_output without a known direction: any output scan element. */
function anyOutputScan(dev: Device): boolean {
  return dev.channels.some((c) => c.isOutput && c.isScanElement);
}

/**
 * The device's buffers as libiio 1.0 sees them. A 1.0 description lists them
 * (`<buffer>` with its channels); otherwise buffer 0 exists when the device has buffer
 * attributes or scan elements, holding every scan element. On `local:`, 1.0 reads the
 * direction from `buffer/direction` and does not list that file as an attribute.
 */
async function buffersOf(ctx: Context, dev: Device): Promise<Buffer1[]> {
  const scanElements = sortScans(dev.channels.filter((c) => c.isScanElement));
  const local = ctx.name === 'local';
  const described = dev.info.buffers;
  if (described?.length) {
    return described.map((b) => ({
      index: b.index,
      isOutput: b.direction ? b.direction === 'out' : anyOutputScan(dev),
      scans: b.channels
        ? sortScans(
            b.channels.flatMap((c) => {
              const ch = dev.channels.find((x) => x.id === c.id && x.isOutput === c.isOutput);
              return ch ? [ch] : [];
            }),
          )
        : b.index === 0
          ? scanElements
          : [],
      attrs: dev.bufferAttrsAt(b.index).filter((a) => !(local && a.name === 'direction')),
    }));
  }
  if (!dev.bufferAttrs.length && !scanElements.length) return [];
  let isOutput = anyOutputScan(dev);
  const dir = dev.bufferAttrs.find((a) => a.name === 'direction');
  if (local && dir) {
    const v = await dir.read().catch(() => undefined);
    if (v !== undefined) isOutput = v !== 'in';
  }
  return [
    {
      index: 0,
      isOutput,
      scans: scanElements,
      attrs: local ? dev.bufferAttrs.filter((a) => a.name !== 'direction') : dev.bufferAttrs,
    },
  ];
}

/** print_channel's line. */
function channelLine(ch: Channel): string {
  let line = `\t\t\t${ch.id}: ${ch.name ?? ''}`;
  if (ch.label !== undefined) line += ` (label: ${ch.label})`;
  line += ` (${ch.isOutput ? 'output' : 'input'}`;
  if (ch.type === 'unknown' || LIBIIO1_UNNAMED_TYPES.has(ch.type))
    line += ', ERROR: iio_channel_get_type() = UNKNOWN';
  if (ch.isScanElement && ch.format)
    return `${line}, index: ${ch.index}, format: ${formatScanType(ch.format)})`;
  return `${line})`;
}

/** libiio 1.0 names the network backend `ip` and puts the server's address last. */
function backendName(ctx: Context): string {
  return ctx.name === 'network' ? 'ip' : ctx.name;
}

function description(ctx: Context): string {
  const addr = ctx.attrs['ip,ip-addr'];
  const d = ctx.description;
  if (ctx.name !== 'network' || addr === undefined) return d;
  return d.startsWith(`${addr} `) ? `${d.slice(addr.length + 1)} ${addr}` : d;
}

async function printDevice(
  ctx: Context,
  dev: Device,
  out: Out,
  err: Out,
  o: Libiio1InfoOptions,
): Promise<void> {
  let head = `\t${dev.id}:`;
  if (dev.name !== undefined) head += ` ${dev.name}`;
  if (dev.label !== undefined) head += ` (label: ${dev.label})`;
  if (dev.isBufferCapable) head += ' (buffer capable)';
  if (await dev.canOpenEvents()) head += ' (events supported)';
  out.line(head);
  out.line(`\t\t${dev.channels.length} channels found:`);
  const chans = await Promise.all(
    dev.channels.map(async (c) => [
      await attrLines(c.attrs, 4, o),
      await attrLines(c.eventAttrs, 4, o),
    ]),
  );
  dev.channels.forEach((ch, i) => {
    out.line(channelLine(ch));
    const [attrs, events] = chans[i];
    // iio_info prints a channel's event attributes only after its other attributes
    if (!attrs.length) return;
    out.line(`\t\t\t${attrs.length} channel-specific attributes found:`);
    for (const l of attrs) out.line(l);
    if (events.length) out.line(`\t\t\t${events.length} event-specific attributes found:`);
    for (const l of events) out.line(l);
  });
  if (dev.attrs.length) {
    out.line(`\t\t${dev.attrs.length} device-specific attributes found:`);
    for (const l of await attrLines(dev.attrs, 3, o)) out.line(l);
  }
  const buffers = await buffersOf(ctx, dev);
  out.line(`\t\t${buffers.length} buffer${buffers.length === 1 ? '' : 's'} found:`);
  for (const b of buffers) {
    out.line(`\t\t\tbuffer${b.index}: (${b.isOutput ? 'output' : 'input'})`);
    out.line(`\t\t\t${b.scans.length} scan elements found:`);
    b.scans.forEach((c, i) =>
      out.line(`\t\t\t\tScan element ${i}: ${c.id} (${c.isOutput ? 'output' : 'input'})`),
    );
    out.line(`\t\t\t${b.attrs.length} buffer attributes found:`);
    for (const l of await attrLines(b.attrs, 4, o)) out.line(l);
  }
  if (dev.eventAttrs.length) {
    out.line(`\t\t${dev.eventAttrs.length} event attributes found:`);
    for (const l of await attrLines(dev.eventAttrs, 3, o)) out.line(l);
  }
  if (dev.debugAttrs.length) {
    out.line(`\t\t${dev.debugAttrs.length} debug attributes found:`);
    for (const l of await attrLines(dev.debugAttrs, 3, o)) out.line(l);
  }
  try {
    const trig = await dev.getTrigger();
    if (!trig) out.line('\t\tNo trigger assigned to device');
    else out.line(`\t\tCurrent trigger: ${trig.id}(${trig.name ?? ''})`);
  } catch (e) {
    const ie = IioError.wrap(e);
    if (ie.code === 'ENODEV') out.line('\t\tNo trigger assigned to device');
    else if (ie.code === 'ENOENT') out.line('\t\tNo trigger on this device');
    else err.line(`ERROR: Unable to get trigger: ${strerror(ie.errno || errnoOf('EIO'))}`);
  }
}

/** Prints a context as libiio 1.0's iio_info does (after its two version lines). */
export async function printContextInfoLibiio1(
  ctx: Context,
  out: Out,
  err: Out,
  o: Libiio1InfoOptions,
): Promise<void> {
  out.line(`IIO context created with ${backendName(ctx)} backend.`);
  const v = ctx.version;
  out.line(`Backend version: ${v.major}.${v.minor} (git tag: ${v.tag ?? v.git})`);
  out.line(`Backend description string: ${description(ctx)}`);
  // libiio 1.0 keeps context attributes sorted by name
  const attrs = [...ctx.info.attrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (attrs.length) out.line(`IIO context has ${attrs.length} attributes:`);
  attrs.forEach(([k, val], i) => out.line(`\tattr ${String(i).padStart(2)}: ${k} value: ${val}`));
  out.line(`IIO context has ${ctx.devices.length} devices:`);
  for (const dev of ctx.devices) await printDevice(ctx, dev, out, err, o);
}

export const INFO_TOOL_LIBIIO1: ToolSpec = {
  name: 'iio_info',
  command: 'info --libiio 1.0',
  optstring: '+dn',
  longs: [
    { name: 'read-debug-attr', arg: 'none', val: 'd' },
    { name: 'no-read-attr', arg: 'none', val: 'n' },
  ],
  usage: [
    '[-u <uri>]',
    'Read and print the value of debug attributes.',
    'Do not read or print the value of regular attributes.',
  ],
};

/**
 * `--libiio 1.0` (or `--libiio=1.0`) anywhere before the operands selects libiio 1.0's
 * output; `0.24` (the default) libiio 0.24's. Returns the other arguments and the choice,
 * or an error message for a version we do not print.
 */
export function takeLibiioOption(
  argv: readonly string[],
): { argv: string[]; version: '0.24' | '1.0' } | { error: string } {
  const rest: string[] = [];
  let version: '0.24' | '1.0' = '0.24';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let v: string | undefined;
    if (a === '--libiio') v = argv[++i] ?? '';
    else if (a.startsWith('--libiio=')) v = a.slice('--libiio='.length);
    else {
      rest.push(a);
      continue;
    }
    if (v === '1' || v === '1.0') version = '1.0';
    else if (v === '0' || v === '0.24') version = '0.24';
    else return { error: `--libiio takes 0.24 or 1.0, not "${v}"` };
  }
  return { argv: rest, version };
}

/** `iiokit info --libiio 1.0`: libiio 1.0's iio_info, options -d and -n included. */
export async function infoLibiio1(argv: readonly string[], out: Out, err: Out): Promise<number> {
  const opts = parseCommon(argv, INFO_TOOL_LIBIIO1, err);
  if (opts.help) {
    printUsage(out, INFO_TOOL_LIBIIO1);
    return 0;
  }
  const o = { readAttrs: true, readDebugAttrs: false };
  for (const x of opts.own) {
    if (x.opt === 'd') o.readDebugAttrs = true;
    else if (x.opt === 'n') o.readAttrs = false;
    else if (x.opt === '?') {
      out.line(`Unknown argument '${x.arg ?? '?'}'`);
      return 1;
    }
  }
  if (opts.scan) {
    await printScan(out, err, opts.scan.arg);
    return 1;
  }
  if (opts.operands.length) {
    err.line('Incorrect number of arguments.\n');
    printUsage(out, INFO_TOOL_LIBIIO1);
    return 1;
  }
  const ctx = await openContext(opts, err);
  try {
    const v = LIBRARY_VERSION;
    out.line(`iio_info version: ${v.major}.${v.minor} (git tag:${v.git})`);
    out.line(
      `Libiio version: ${v.major}.${v.minor} (git tag: ${v.git}) backends: local ip serial usb emu xml`,
    );
    await printContextInfoLibiio1(ctx, out, err, o);
  } finally {
    await ctx.close();
  }
  return 0;
}
