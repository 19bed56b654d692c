import { ERRNO, errnoOrEio, IioError, strerror } from '../errors';
import { formatScanType } from '../format/scan-type';
import type { Attr } from '../model/attr';
import type { Context } from '../model/context';
import { CHANNEL_TYPES, LIBIIO_0X_TYPE_COUNT } from '../names/tables';
import { LIBRARY_VERSION } from '../version';
import { openContext, parseCommon, printUsage, runTool, type ToolSpec } from './common';
import type { CliIo, Out } from './io';
import { printScan } from './scan';

export const INFO_TOOL: ToolSpec = {
  name: 'iio_info',
  command: 'info',
  optstring: '+s',
  longs: [],
  usage: ['[-x <xml_file>]\n\t\t\t\t[-u <uri>]'],
};

export const BACKENDS_LINE = 'Compiled with backends: local xml ip usb serial emu';

/** True where libiio 0.2x's type table has no entry (see LIBIIO_0X_TYPE_COUNT). */
function unknownToLibiio(type: string, deviceId: string): boolean {
  if (type === 'unknown') return true;
  if (deviceId.startsWith('hwmon')) return false;
  return CHANNEL_TYPES.indexOf(type) >= LIBIIO_0X_TYPE_COUNT;
}

/** What libiio prints for an attribute read: `value: X` or `ERROR: <strerror>`. */
async function valueText(attr: Attr): Promise<string> {
  try {
    const v = await attr.read();
    return `value: ${v}`;
  } catch (e) {
    return `ERROR: ${strerror(errnoOrEio(e))}`;
  }
}

/**
 * libiio 0.24's local backend reads an empty `trigger/current_trigger` (no trigger set: the
 * kernel shows zero bytes) as EIO, so iio_info prints this where a device simply has no
 * trigger. The library answers null; the CLI prints what iio_info prints.
 */
const LOCAL_NO_TRIGGER = `ERROR: checking for trigger : ${strerror(ERRNO.EIO)}`;

/** Prints a context exactly as libiio 0.24's iio_info does (after its two version lines). */
export async function printContextInfo(ctx: Context, out: Out): Promise<void> {
  out.line(`IIO context created with ${ctx.name} backend.`);
  const v = ctx.version;
  out.line(`Backend version: ${v.major}.${v.minor} (git tag: ${v.git})`);
  out.line(`Backend description string: ${ctx.description}`);
  const attrs = ctx.info.attrs;
  if (attrs.length > 0) out.line(`IIO context has ${attrs.length} attributes:`);
  for (const [k, val] of attrs) out.line(`\t${k}: ${val}`);
  out.line(`IIO context has ${ctx.devices.length} devices:`);
  for (const dev of ctx.devices) {
    let head = `\t${dev.id}:`;
    if (dev.name !== undefined) head += ` ${dev.name}`;
    if (dev.label !== undefined) head += ` (label: ${dev.label})`;
    if (dev.isBufferCapable) head += ' (buffer capable)';
    out.line(head);
    out.line(`\t\t${dev.channels.length} channels found:`);
    // Reads of one device run concurrently: remote contexts answer them in one round trip each.
    const chanValues = await Promise.all(
      dev.channels.map((c) => Promise.all(c.attrs.map(valueText))),
    );
    dev.channels.forEach((ch, ci) => {
      let line = `\t\t\t${ch.id}: ${ch.name ?? ''} (${ch.isOutput ? 'output' : 'input'}`;
      if (unknownToLibiio(ch.type, dev.id)) line += ', WARN:iio_channel_get_type()=UNKNOWN';
      if (ch.isScanElement && ch.format)
        line += `, index: ${ch.index}, format: ${formatScanType(ch.format)})`;
      else line += ')';
      out.line(line);
      if (!ch.attrs.length) return;
      out.line(`\t\t\t${ch.attrs.length} channel-specific attributes found:`);
      ch.attrs.forEach((a, k) =>
        out.line(`\t\t\t\tattr ${String(k).padStart(2)}: ${a.name} ${chanValues[ci][k]}`),
      );
    });
    const groups: Array<[readonly Attr[], string, string]> = [
      [dev.attrs, 'device-specific attributes found:', 'attr'],
      [dev.bufferAttrs, 'buffer-specific attributes found:', 'attr'],
      [dev.debugAttrs, 'debug attributes found:', 'debug attr'],
    ];
    for (const [list, title, prefix] of groups) {
      if (!list.length) continue;
      const values = await Promise.all(list.map(valueText));
      out.line(`\t\t${list.length} ${title}`);
      list.forEach((a, j) =>
        out.line(`\t\t\t\t${prefix} ${String(j).padStart(2)}: ${a.name} ${values[j]}`),
      );
    }
    try {
      const trig = await dev.getTrigger();
      if (!trig)
        out.line(ctx.name === 'local' ? LOCAL_NO_TRIGGER : '\t\tNo trigger assigned to device');
      else out.line(`\t\tCurrent trigger: ${trig.id}(${trig.name ?? ''})`);
    } catch (e) {
      const ie = IioError.wrap(e);
      if (ie.code === 'ENOENT') out.line('\t\tNo trigger on this device');
      else out.line(`ERROR: checking for trigger : ${strerror(ie.errno || ERRNO.EIO)}`);
    }
  }
}

/** `iiokit info`: libiio's iio_info. */
export function infoMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runTool(io, async (out, err) => {
    out.line(
      `Library version: ${LIBRARY_VERSION.major}.${LIBRARY_VERSION.minor} (git tag: ${LIBRARY_VERSION.git})`,
    );
    out.line(BACKENDS_LINE);
    const opts = parseCommon(argv, INFO_TOOL, err);
    if (opts.help) {
      printUsage(out, INFO_TOOL);
      return 0;
    }
    for (const o of opts.own) {
      if (o.opt === 's') {
        await printScan(out, err, undefined);
        return 0;
      }
      if (o.opt === '?') {
        out.line(`Unknown argument '${o.arg ?? '?'}'`);
        return 1;
      }
    }
    if (opts.scan) {
      // libiio: the scan runs inside handle_common_opts, which then yields no context,
      // so iio_info ends with EXIT_FAILURE after listing (unlike -s).
      await printScan(out, err, opts.scan.arg);
      return 1;
    }
    if (opts.operands.length) {
      err.line('Incorrect number of arguments.\n');
      printUsage(out, INFO_TOOL);
      return 1;
    }
    const ctx = await openContext(opts, err);
    try {
      await printContextInfo(ctx, out);
    } finally {
      await ctx.close();
    }
    return 0;
  });
}
