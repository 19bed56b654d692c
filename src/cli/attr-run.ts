/**
 * Runs an iio_attr query (attr-query.ts) on an open context: libiio 0.24's listings,
 * reads, writes, messages and exit status (tests/iio_attr.c), so the outputs diff clean.
 */
import { errnoOrEio, strerror } from '../errors';
import type { Attr } from '../model/attr';
import type { Channel } from '../model/channel';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import { Verbosity, type AttrQuery, type AttrTarget } from './attr-query';
import type { Out } from './io';

const MY_NAME = 'iio_attr';

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

export function labelOrNameOrId(dev: Device): string {
  return dev.label ?? dev.name ?? dev.id;
}

export function devKind(dev: Device): string {
  return dev.isTrigger ? 'trig' : 'dev';
}

/** libiio's read into a C buffer: the value, or a negative errno. */
async function readValue(attr: Attr): Promise<{ ret: number; value: string }> {
  try {
    const value = await attr.read();
    return { ret: Buffer.byteLength(value) + 1, value };
  } catch (e) {
    return { ret: -errnoOrEio(e), value: '' };
  }
}

/** A write as libiio reports it: bytes taken, or a negative errno. */
export async function writeValue(attr: Attr, value: string): Promise<number> {
  try {
    return await attr.write(value);
  } catch (e) {
    return -errnoOrEio(e);
  }
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

/**
 * What one run of a query has found and what failed so far (iio_attr's flags, 0.24's and
 * 1.0's alike): they decide its closing messages and exit status.
 */
export class AttrRunState {
  protected foundErr = false;
  protected readErr = false;
  protected writeErr = false;
  protected devFound = false;
  protected attrFound = false;
  protected channelFound = false;

  constructor(
    protected readonly q: AttrQuery,
    protected readonly out: Out,
    protected readonly err: Out,
  ) {}

  protected match(haystack: string | undefined, needle: string): boolean {
    return strMatch(haystack, needle, this.q.ignoreCase);
  }

  /**
   * The devices the query names (by id, label or name; every device without `-d`), as
   * iio_attr walks them: without a device, the context's count first and each device's
   * `\tid, label: ` prefix before `each` prints the rest of its line.
   */
  protected async eachDevice(ctx: Context, each: (dev: Device) => Promise<void>): Promise<void> {
    const { device } = this.q;
    if (device === undefined) this.out.line(`IIO context has ${ctx.devices.length} devices:`);
    for (const dev of ctx.devices) {
      if (
        device !== undefined &&
        !this.match(dev.id, device) &&
        !this.match(dev.label, device) &&
        !this.match(dev.name, device)
      )
        continue;
      this.devFound = true;
      if (device === undefined) {
        const labelOrName = dev.label ?? dev.name;
        this.out.write(`\t${dev.id}`);
        if (labelOrName !== undefined) this.out.write(`, ${labelOrName}`);
        this.out.write(': ');
      }
      await each(dev);
    }
  }

  /** A read or write of one matching attribute: its verbosity and how its status counts. */
  protected async dump(run: (quiet: Verbosity) => Promise<number>): Promise<void> {
    const { attr, value } = this.q;
    this.foundErr = false;
    this.attrFound = true;
    const ret = await run(attr !== undefined ? this.q.verbosity : Verbosity.Verbose);
    if (value !== undefined && ret < 0) this.writeErr = true;
    else if (ret < 0 && attr !== undefined) this.readErr = true;
  }
}

/** One run of a query: what was found and what failed decide the exit status. */
class AttrRun extends AttrRunState {
  private ctxFound = false;
  private debugFound = false;

  async run(ctx: Context): Promise<number> {
    const target = this.q.target;
    if (target === 'context') this.contextAttrs(ctx);
    else if (target === 'device-event' || target === 'channel-event')
      throw new Error('event attribute queries run in attr-events.ts');
    else await this.devices(ctx, target);
    return this.report();
  }

  private contextAttrs(ctx: Context): void {
    const { attr } = this.q;
    const attrs = ctx.info.attrs;
    if (attr === undefined && attrs.length > 0)
      this.out.line(`IIO context with ${attrs.length} attributes:`);
    if (attr === undefined && !attrs.length) {
      this.out.line(`${MY_NAME}: Found context, but it has ${attrs.length} context attributes`);
      this.foundErr = true;
    }
    this.ctxFound = true;
    for (const [key, value] of attrs) {
      if (attr === undefined || this.match(key, attr)) {
        this.foundErr = false;
        this.attrFound = true;
        this.out.line(`${key}: ${value}`);
      }
    }
  }

  private async devices(
    ctx: Context,
    target: Exclude<AttrTarget, 'context' | 'device-event' | 'channel-event'>,
  ): Promise<void> {
    await this.eachDevice(ctx, (dev) =>
      target === 'channel' ? this.channels(dev) : this.deviceAttrs(dev, target),
    );
  }

  /** "found N channels" for a listing of devices. */
  private countChannels(dev: Device): void {
    const { inputOnly, outputOnly, scanOnly } = this.q;
    const channels = dev.channels;
    if (!(scanOnly || inputOnly || outputOnly)) {
      this.out.line(`found ${channels.length} channels`);
      return;
    }
    const outs = channels.filter((c) => c.isOutput).length;
    const parts: string[] = [];
    if (scanOnly) parts.push(`${channels.filter((c) => c.isScanElement).length} scan`);
    if (outputOnly) parts.push(`${outs} output`);
    if (inputOnly) parts.push(`${channels.length - outs} input`);
    this.out.line(`found ${parts.join(', ')} channels`);
  }

  private async channels(dev: Device): Promise<void> {
    const { device, channel, attr, value, inputOnly, outputOnly, scanOnly } = this.q;
    if (device === undefined) return this.countChannels(dev);
    const out = this.out;
    if (channel === undefined && !dev.channels.length) {
      out.line(`${MY_NAME}: Found ${device} device, but it has ${dev.channels.length} channels`);
      this.foundErr = true;
    }
    for (const ch of dev.channels) {
      if (inputOnly && ch.isOutput) continue;
      if (outputOnly && !ch.isOutput) continue;
      if (scanOnly && !ch.isScanElement) continue;
      if (
        channel !== undefined &&
        !this.match(ch.id, channel) &&
        (ch.name === undefined || !this.match(ch.name, channel))
      )
        continue;
      this.channelFound = true;
      if ((!scanOnly && channel === undefined) || (scanOnly && ch.isScanElement)) {
        out.write(`${devKind(dev)} '${labelOrNameOrId(dev)}', channel '${ch.id}'`);
        if (ch.name !== undefined) out.write(`, id '${ch.name}'`);
        out.write(` (${ch.isOutput ? 'output' : 'input'}`);
        if (ch.isScanElement) {
          out.write(`, index: ${ch.index}, format: ${formatOf(ch)})`);
          out.write(scanOnly ? '\n' : ', ');
        } else out.write('), ');
      }
      const nbAttrs = ch.attrs.length;
      if (channel === undefined) out.line(`found ${nbAttrs} channel-specific attributes`);
      if (channel !== undefined && attr === undefined && !nbAttrs) {
        out.line(`${MY_NAME}: Found ${device} device, but it has ${nbAttrs} channel attributes`);
        this.foundErr = true;
      }
      if (!nbAttrs || channel === undefined) continue;
      for (const a of ch.attrs) {
        if (attr !== undefined && !this.match(a.name, attr)) continue;
        await this.dump((quiet) => dumpChannelAttr(out, dev, ch, a, value, quiet));
      }
    }
  }

  private async deviceAttrs(dev: Device, kind: DeviceAttrKind): Promise<void> {
    const { device, attr, value } = this.q;
    const list =
      kind === 'device' ? dev.attrs : kind === 'buffer' ? dev.bufferAttrs : dev.debugAttrs;
    if (device === undefined) {
      this.out.line(`found ${list.length} ${kind} attributes`);
      return;
    }
    if (kind !== 'debug' && attr === undefined && !list.length) {
      this.out.line(
        `${MY_NAME}: Found ${labelOrNameOrId(dev)} device, but it has ${list.length} ${kind} attributes`,
      );
      if (!this.attrFound) this.foundErr = true;
    }
    for (const a of list) {
      if (attr !== undefined && !this.match(a.name, attr)) continue;
      if (kind === 'debug') this.debugFound = true;
      await this.dump((quiet) => dumpDeviceAttr(this.out, dev, a, kind, value, quiet));
    }
  }

  /** iio_attr's "could not find" messages (the first that applies) and its exit status. */
  private report(): number {
    const { target, device, channel, attr, inputOnly, outputOnly, scanOnly } = this.q;
    const err = this.err;
    const noDevice = !this.devFound && device !== undefined;
    const noContext = !this.ctxFound && target === 'context';
    const noChannel = !this.channelFound && channel !== undefined;
    const noAttr = !this.attrFound && attr !== undefined;
    const noDebug = !this.debugFound && target === 'debug' && device !== undefined;
    if (noDevice) err.line(`${MY_NAME}: Error : could not find device (${device})`);
    else if (noContext) err.line(`${MY_NAME}: Error : could not find Context Attributes`);
    else if (noChannel) {
      if (inputOnly) err.line(`${MY_NAME}: Error : could not find Input channel (${channel})`);
      if (outputOnly) err.line(`${MY_NAME}: Error : could not find Output channel (${channel})`);
      if (scanOnly) err.line(`${MY_NAME}: Error : could not find Scan channel (${channel})`);
      if (!inputOnly && !outputOnly && !scanOnly)
        err.line(`${MY_NAME}: Error : could not find channel (${channel})`);
    } else if (noAttr) err.line(`${MY_NAME}: Error : could not find attribute (${attr})`);
    else if (noDebug) err.line(`${MY_NAME}: Error : device (${device}) had 0 debug attributes`);
    if (noDevice || noContext || noChannel || noAttr || noDebug) return 1;
    return this.writeErr || this.readErr || this.foundErr ? 1 : 0;
  }
}

/** Runs a query on an open context; resolves with iio_attr's exit status. */
export function runAttrQuery(ctx: Context, q: AttrQuery, out: Out, err: Out): Promise<number> {
  return new AttrRun(q, out, err).run(ctx);
}
