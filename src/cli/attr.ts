/**
 * `iiokit attr`: libiio 0.24's iio_attr — read and write context, device, channel, buffer
 * and debug attributes, with its options, wildcards, messages and exit statuses
 * (tests/iio_attr.c), so the two outputs diff clean.
 */
import { errnoOrEio, strerror } from '../errors';
import type { Attr } from '../model/attr';
import type { Channel } from '../model/channel';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import { openContext, parseCommon, printUsage, runTool, type ToolSpec } from './common';
import { CliExit, type CliIo, type Out } from './io';
import { printScan } from './scan';

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

const MY_NAME = 'iio_attr';
/** libiio truncates every argument to NAME_MAX bytes (dup_argv). */
const NAME_MAX = 255;

enum Verbosity {
  Quiet,
  Normal,
  Verbose,
}

/**
 * iio_attr's str_match: `.` or `*` match anything, `key*` a prefix, `*key*` a substring,
 * `*key` a suffix (of the first occurrence only, as libiio's strstr does), else equality;
 * optionally case-insensitive. Empty strings never match.
 */
export function strMatch(
  haystack: string | undefined,
  needle: string,
  ignoreCase: boolean,
): boolean {
  if (haystack === undefined || !haystack.length || !needle.length) return false;
  if (needle === '.' || needle === '*') return true;
  const h = ignoreCase ? haystack.toLowerCase() : haystack;
  const n = ignoreCase ? needle.toLowerCase() : needle;
  const first = n[0];
  const last = n[n.length - 1];
  if (first !== '*' && last === '*') return h.startsWith(n.slice(0, -1));
  if (first === '*' && last === '*') return h.includes(n.slice(1, -1));
  if (first === '*') {
    const key = n.slice(1);
    const at = h.indexOf(key);
    return at >= 0 && at + key.length === h.length;
  }
  return h === n;
}

const isWildcard = (s: string | undefined): boolean =>
  s !== undefined && (s === '.' || s.includes('*'));

function labelOrNameOrId(dev: Device): string {
  return dev.label ?? dev.name ?? dev.id;
}

function devKind(dev: Device): string {
  return dev.isTrigger ? 'trig' : 'dev';
}

/** A negative errno for an error, as libiio's calls return it. */
function errnoOfError(e: unknown): number {
  return -errnoOrEio(e);
}

/** libiio's read into a C buffer: the value, or a negative errno. */
async function readValue(attr: Attr): Promise<{ ret: number; value: string }> {
  try {
    const value = await attr.read();
    return { ret: Buffer.byteLength(value) + 1, value };
  } catch (e) {
    return { ret: errnoOfError(e), value: '' };
  }
}

async function writeValue(attr: Attr, value: string): Promise<number> {
  try {
    return await attr.write(value);
  } catch (e) {
    return errnoOfError(e);
  }
}

type DeviceAttrKind = 'device' | 'buffer' | 'debug';

/** dump_device_attributes / dump_buffer_attributes / dump_debug_attributes. */
async function dumpDeviceAttr(
  out: Out,
  dev: Device,
  attr: Attr,
  kind: DeviceAttrKind,
  wbuf: string | undefined,
  quiet: Verbosity,
): Promise<number> {
  let ret = 0;
  if (wbuf === undefined || quiet === Verbosity.Verbose) {
    if (quiet === Verbosity.Verbose) {
      const what = kind === 'device' ? 'attr' : kind === 'buffer' ? 'buffer attr' : 'debug attr';
      out.write(`${devKind(dev)} '${labelOrNameOrId(dev)}', ${what} '${attr.name}', value :`);
    }
    const r = await readValue(attr);
    ret = r.ret;
    if (ret > 0) {
      if (quiet === Verbosity.Normal) out.line(r.value);
      else if (quiet === Verbosity.Verbose) out.line(`'${r.value}'`);
    } else out.line(`ERROR: ${strerror(-ret)}`);
  }
  if (wbuf !== undefined) {
    ret = await writeValue(attr, wbuf);
    if (ret > 0) {
      if (quiet === Verbosity.Verbose) out.line(`wrote ${ret} bytes to ${attr.name}`);
      await dumpDeviceAttr(out, dev, attr, kind, undefined, quiet);
    } else {
      out.line(`ERROR: ${strerror(-ret)} while writing '${attr.name}' with '${wbuf}'`);
    }
  }
  return ret;
}

/** dump_channel_attributes. */
async function dumpChannelAttr(
  out: Out,
  dev: Device,
  ch: Channel,
  attr: Attr,
  wbuf: string | undefined,
  quiet: Verbosity,
): Promise<number> {
  let ret = 0;
  if (wbuf === undefined || quiet === Verbosity.Verbose) {
    const r = await readValue(attr);
    ret = r.ret;
    if (quiet === Verbosity.Verbose) {
      out.write(
        `${devKind(dev)} '${labelOrNameOrId(dev)}', channel '${ch.id}' (${ch.isOutput ? 'output' : 'input'}), `,
      );
      if (ch.name !== undefined) out.write(`id '${ch.name}', `);
      out.write(`attr '${attr.name}', `);
    }
    if (ret > 0) {
      if (quiet === Verbosity.Normal) out.line(r.value);
      else if (quiet === Verbosity.Verbose) out.line(`value '${r.value}'`);
    } else out.line(`ERROR: ${strerror(-ret)}`);
  }
  if (wbuf !== undefined) {
    ret = await writeValue(attr, wbuf);
    if (ret > 0) {
      if (quiet === Verbosity.Verbose) out.line(`wrote ${ret} bytes to ${attr.name}`);
      await dumpChannelAttr(out, dev, ch, attr, undefined, quiet);
    } else {
      out.line(`error ${strerror(-ret)} while writing '${attr.name}' with '${wbuf}'`);
    }
  }
  return ret;
}

/** The format part of iio_attr's channel line (`le:S16/16>>0`, `X<n>` when repeated). */
function formatOf(ch: Channel): string {
  const f = ch.format;
  if (!f) return 'le:u0/0>>0';
  let sign = f.isSigned ? 's' : 'u';
  if (f.isFullyDefined) sign = sign.toUpperCase();
  const repeat = f.repeat > 1 ? `X${f.repeat}` : '';
  return `${f.isBigEndian ? 'b' : 'l'}e:${sign}${f.bits}/${f.length}${repeat}>>${f.shift}`;
}

interface Search {
  device: boolean;
  channel: boolean;
  buffer: boolean;
  debug: boolean;
  context: boolean;
}

/** `iiokit attr`: libiio's iio_attr. */
export function attrMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runTool(io, async (out, err) => {
    // getopt would read a negative number as an option: iio_attr keeps a last argument
    // like `-5` out of option parsing (it can only be a value to write).
    const args = argv.map((a) => a.slice(0, NAME_MAX));
    const last = args[args.length - 1];
    const negativeLast = last !== undefined && /^-[0-9]/.test(last);
    const opts = parseCommon(negativeLast ? args.slice(0, -1) : args, ATTR_TOOL, err);
    if (opts.help) {
      printUsage(out, ATTR_TOOL);
      return 0;
    }
    if (opts.scan) {
      await printScan(out, err, opts.scan.arg);
      return 0;
    }
    const operands = negativeLast ? [...opts.operands, last] : opts.operands;

    // libiio creates the context while reading the common options, before its own checks.
    let ctx: Context | undefined;
    let ctxError: number | undefined;
    try {
      ctx = await openContext(opts, err);
    } catch (e) {
      ctxError = 1;
      if (!(e instanceof CliExit)) throw e;
    }
    try {
      const search: Search = {
        device: false,
        channel: false,
        buffer: false,
        debug: false,
        context: false,
      };
      let inputOnly = false;
      let outputOnly = false;
      let scanOnly = false;
      let ignoreCase = false;
      let quiet = Verbosity.Normal;
      for (const o of opts.own) {
        switch (o.opt) {
          case 'd':
            search.device = true;
            break;
          case 'c':
            search.channel = true;
            break;
          case 'B':
            search.buffer = true;
            break;
          case 'D':
            search.debug = true;
            break;
          case 'C':
            search.context = true;
            break;
          case 'i':
            inputOnly = true;
            break;
          case 'o':
            outputOnly = true;
            break;
          case 's':
            scanOnly = true;
            break;
          case 'I':
            ignoreCase = true;
            break;
          case 'q':
            quiet = Verbosity.Quiet;
            break;
          case 'v':
            quiet = Verbosity.Verbose;
            break;
          case 'g':
            if (!o.arg || o.arg.startsWith('-')) {
              err.line('Code generation requires an option');
              return 1;
            }
            err.line('iiokit attr: code generation (-g) is not supported');
            return 1;
          case '?':
            for (const m of opts.errors) err.line(`iiokit attr: ${m}`);
            out.line("Unknown argument '?'");
            return 1;
        }
      }
      if (ctxError !== undefined || !ctx) return 1;

      const n = [search.device, search.channel, search.context, search.debug, search.buffer].filter(
        Boolean,
      ).length;
      if (n >= 2) {
        err.line('The options -d, -c, -C, -B, and -D are exclusive (can use only one).');
        return 1;
      }
      if (n === 0) {
        if (argv.length === 0) {
          printUsage(out, ATTR_TOOL);
          return 0;
        }
        err.line('must specify one of -d, -c, -C, -B or -D.');
        return 1;
      }

      let deviceArg: string | undefined;
      let channelArg: string | undefined;
      let attrArg: string | undefined;
      let wbuf: string | undefined;
      const tooMany = (what: string): number => {
        err.line(`Too many options for searching for ${what}`);
        return 1;
      };
      if (search.context) {
        attrArg = operands[0];
        if (operands.length >= 2) return tooMany('context attributes');
      } else if (search.channel) {
        [deviceArg, channelArg, attrArg, wbuf] = operands;
        if (operands.length >= 5) return tooMany('channel attributes');
      } else {
        [deviceArg, attrArg, wbuf] = operands;
        if (operands.length >= 4)
          return tooMany(search.buffer ? 'buffer attributes' : 'device attributes');
      }

      if (isWildcard(deviceArg) || isWildcard(channelArg) || isWildcard(attrArg)) {
        if (wbuf !== undefined) {
          out.line("can't write value with wildcard match");
          return 1;
        }
        quiet = Verbosity.Verbose;
      }

      let foundErr = false;
      let readErr = false;
      let writeErr = false;
      let devFound = false;
      let attrFound = false;
      let ctxFound = false;
      let debugFound = false;
      let channelFound = false;

      if (search.context) {
        const attrs = ctx.info.attrs;
        if (attrArg === undefined && attrs.length > 0)
          out.line(`IIO context with ${attrs.length} attributes:`);
        if (attrArg === undefined && !attrs.length) {
          out.line(`${MY_NAME}: Found context, but it has ${attrs.length} context attributes`);
          foundErr = true;
        }
        ctxFound = true;
        for (const [key, value] of attrs) {
          if (attrArg === undefined || strMatch(key, attrArg, ignoreCase)) {
            foundErr = false;
            attrFound = true;
            out.line(`${key}: ${value}`);
          }
        }
      }

      if (search.device || search.channel || search.buffer || search.debug) {
        if (deviceArg === undefined) out.line(`IIO context has ${ctx.devices.length} devices:`);
        for (const dev of ctx.devices) {
          const labelOrName = dev.label ?? dev.name;
          if (
            deviceArg !== undefined &&
            !strMatch(dev.id, deviceArg, ignoreCase) &&
            !strMatch(dev.label, deviceArg, ignoreCase) &&
            !strMatch(dev.name, deviceArg, ignoreCase)
          )
            continue;
          devFound = true;
          if (deviceArg === undefined) {
            out.write(`\t${dev.id}`);
            if (labelOrName !== undefined) out.write(`, ${labelOrName}`);
            out.write(': ');
          }
          const channels = dev.channels;
          if (search.channel && deviceArg === undefined) {
            if (scanOnly || inputOnly || outputOnly) {
              const scan = channels.filter((c) => c.isScanElement).length;
              const outs = channels.filter((c) => c.isOutput).length;
              const ins = channels.length - outs;
              const parts: string[] = [];
              if (scanOnly) parts.push(`${scan} scan`);
              if (outputOnly) parts.push(`${outs} output`);
              if (inputOnly) parts.push(`${ins} input`);
              out.line(`found ${parts.join(', ')} channels`);
            } else out.line(`found ${channels.length} channels`);
          }
          if (
            search.channel &&
            deviceArg !== undefined &&
            channelArg === undefined &&
            !channels.length
          ) {
            out.line(
              `${MY_NAME}: Found ${deviceArg} device, but it has ${channels.length} channels`,
            );
            foundErr = true;
          }
          if (search.channel && deviceArg !== undefined) {
            for (const ch of channels) {
              if (inputOnly && ch.isOutput) continue;
              if (outputOnly && !ch.isOutput) continue;
              if (scanOnly && !ch.isScanElement) continue;
              if (
                channelArg !== undefined &&
                !strMatch(ch.id, channelArg, ignoreCase) &&
                (ch.name === undefined || !strMatch(ch.name, channelArg, ignoreCase))
              )
                continue;
              channelFound = true;
              if ((!scanOnly && channelArg === undefined) || (scanOnly && ch.isScanElement)) {
                out.write(`${devKind(dev)} '${labelOrNameOrId(dev)}', channel '${ch.id}'`);
                if (ch.name !== undefined) out.write(`, id '${ch.name}'`);
                out.write(` (${ch.isOutput ? 'output' : 'input'}`);
                if (ch.isScanElement) {
                  out.write(`, index: ${ch.index}, format: ${formatOf(ch)})`);
                  out.write(scanOnly ? '\n' : ', ');
                } else out.write('), ');
              }
              const nbAttrs = ch.attrs.length;
              if (channelArg === undefined)
                out.line(`found ${nbAttrs} channel-specific attributes`);
              if (channelArg !== undefined && attrArg === undefined && !nbAttrs) {
                out.line(
                  `${MY_NAME}: Found ${deviceArg} device, but it has ${nbAttrs} channel attributes`,
                );
                foundErr = true;
              }
              if (!nbAttrs || channelArg === undefined) continue;
              for (const a of ch.attrs) {
                if (attrArg !== undefined && !strMatch(a.name, attrArg, ignoreCase)) continue;
                foundErr = false;
                attrFound = true;
                const ret = await dumpChannelAttr(
                  out,
                  dev,
                  ch,
                  a,
                  wbuf,
                  attrArg !== undefined ? quiet : Verbosity.Verbose,
                );
                if (wbuf !== undefined && ret < 0) writeErr = true;
                else if (ret < 0 && attrArg !== undefined) readErr = true;
              }
            }
          }

          const groups: Array<[boolean, readonly Attr[], DeviceAttrKind]> = [
            [search.device, dev.attrs, 'device'],
            [search.buffer, dev.bufferAttrs, 'buffer'],
            [search.debug, dev.debugAttrs, 'debug'],
          ];
          for (const [active, list, kind] of groups) {
            if (!active) continue;
            if (deviceArg === undefined) {
              out.line(`found ${list.length} ${kind} attributes`);
              continue;
            }
            if (kind !== 'debug' && attrArg === undefined && !list.length) {
              out.line(
                `${MY_NAME}: Found ${labelOrNameOrId(dev)} device, but it has ${list.length} ${kind} attributes`,
              );
              if (!attrFound) foundErr = true;
            }
            for (const a of list) {
              if (attrArg !== undefined && !strMatch(a.name, attrArg, ignoreCase)) continue;
              foundErr = false;
              attrFound = true;
              if (kind === 'debug') debugFound = true;
              const ret = await dumpDeviceAttr(
                out,
                dev,
                a,
                kind,
                wbuf,
                attrArg !== undefined ? quiet : Verbosity.Verbose,
              );
              if (wbuf !== undefined && ret < 0) writeErr = true;
              else if (ret < 0 && attrArg !== undefined) readErr = true;
            }
          }
        }
      }

      if (!devFound && deviceArg !== undefined)
        err.line(`${MY_NAME}: Error : could not find device (${deviceArg})`);
      else if (!ctxFound && search.context)
        err.line(`${MY_NAME}: Error : could not find Context Attributes`);
      else if (!channelFound && channelArg !== undefined) {
        if (inputOnly) err.line(`${MY_NAME}: Error : could not find Input channel (${channelArg})`);
        if (outputOnly)
          err.line(`${MY_NAME}: Error : could not find Output channel (${channelArg})`);
        if (scanOnly) err.line(`${MY_NAME}: Error : could not find Scan channel (${channelArg})`);
        if (!inputOnly && !outputOnly && !scanOnly)
          err.line(`${MY_NAME}: Error : could not find channel (${channelArg})`);
      } else if (!attrFound && attrArg !== undefined)
        err.line(`${MY_NAME}: Error : could not find attribute (${attrArg})`);
      else if (!debugFound && search.debug && deviceArg !== undefined)
        err.line(`${MY_NAME}: Error : device (${deviceArg}) had 0 debug attributes`);

      if (
        (!devFound && deviceArg !== undefined) ||
        (!ctxFound && search.context) ||
        (!channelFound && channelArg !== undefined) ||
        (!attrFound && attrArg !== undefined) ||
        (!debugFound && search.debug && deviceArg !== undefined)
      )
        return 1;
      if (writeErr || readErr || foundErr) return 1;
      return 0;
    } finally {
      await ctx?.close();
    }
  });
}
