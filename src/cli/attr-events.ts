/**
 * `iiokit attr -E` and `-e`: device and channel event attributes, as libiio 1.0's iio_attr
 * reads, writes, lists and reports them (utils/iio_attr.c: its listings, its
 * dump_device_attributes / dump_channel_attributes, its "Could not find" messages and
 * exit status). libiio 0.24's iio_attr has no such options, so nothing here has to
 * agree with it.
 */
import { strerror } from '../errors';
import type { Attr } from '../model/attr';
import type { Channel } from '../model/channel';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import { cG } from '../util/cformat';
import { Verbosity, type AttrQuery } from './attr-query';
import { AttrRunState, devKind, labelOrNameOrId, writeValue } from './attr-run';
import type { Out } from './io';
import { readLibiio1Value } from './libiio1-value';

const MY_NAME = 'iio_attr';

/** libiio 1.0's IIO_PERROR: `ERROR: iio_attr: <what>: <strerror> (<errno>)` on stderr. */
function perror(err: Out, errno: number, what: string): void {
  err.line(`ERROR: ${MY_NAME}: ${what}: ${strerror(errno)}`);
}

const plural = (n: number): string => (n !== 1 ? 's' : '');

/** print_attribute_value: the value, its options or its range; read errors on stderr. */
async function printValue(out: Out, err: Out, attr: Attr, quiet: Verbosity): Promise<void> {
  const v = await readLibiio1Value(attr);
  if (v.kind === 'error') {
    out.line('');
    perror(err, v.errno, 'Unable to read attribute');
    return;
  }
  if (quiet === Verbosity.Normal) {
    if (v.kind === 'options') out.line(v.list.map((o) => `${o} `).join(''));
    else if (v.kind === 'range') out.line(`${cG(v.min)} ${cG(v.step)} ${cG(v.max)}`);
    else out.line(v.text);
  } else if (quiet === Verbosity.Verbose) {
    if (v.kind === 'options') out.line(`options${v.list.map((o) => ` '${o}'`).join('')}`);
    else if (v.kind === 'range')
      out.line(`range '[min: ${cG(v.min)} step: ${cG(v.step)} max: ${cG(v.max)}]'`);
    else out.line(`value '${v.text}'`);
  }
}

/** One run of an -E or -e query. */
class EventAttrRun extends AttrRunState {
  /** dump_device_attributes (type "event"). */
  private async dumpDevice(
    dev: Device,
    a: Attr,
    wbuf: string | undefined,
    quiet: Verbosity,
  ): Promise<number> {
    let ret = 0;
    if (wbuf === undefined || quiet === Verbosity.Verbose) {
      if (quiet === Verbosity.Verbose)
        this.out.write(`${devKind(dev)} '${labelOrNameOrId(dev)}', event attr '${a.name}', `);
      await printValue(this.out, this.err, a, quiet);
    }
    if (wbuf !== undefined) {
      ret = await writeValue(a, wbuf);
      if (ret > 0) {
        if (quiet === Verbosity.Verbose) this.out.line(`wrote ${ret} bytes to ${a.name}`);
        await this.dumpDevice(dev, a, undefined, quiet);
      } else perror(this.err, -ret, 'Unable to write attribute');
    }
    return ret;
  }

  /** dump_channel_attributes. */
  private async dumpChannel(
    dev: Device,
    ch: Channel,
    a: Attr,
    wbuf: string | undefined,
    quiet: Verbosity,
  ): Promise<number> {
    let ret = 0;
    const out = this.out;
    if (wbuf === undefined || quiet === Verbosity.Verbose) {
      if (quiet === Verbosity.Verbose) {
        out.write(`${devKind(dev)} '${labelOrNameOrId(dev)}', `);
        out.write(`channel '${ch.id}' (${ch.isOutput ? 'output' : 'input'}), `);
        if (ch.name !== undefined) out.write(`id '${ch.name}', `);
        if (ch.label !== undefined) out.write(`label '${ch.label}', `);
        out.write(`attr '${a.name}', `);
      }
      await printValue(out, this.err, a, quiet);
    }
    if (wbuf !== undefined) {
      ret = await writeValue(a, wbuf);
      if (ret > 0) {
        if (quiet === Verbosity.Verbose) out.line(`wrote ${ret} bytes to ${a.name}`);
        await this.dumpChannel(dev, ch, a, undefined, quiet);
      } else perror(this.err, -ret, 'Unable to write channel attribute');
    }
    return ret;
  }

  async run(ctx: Context): Promise<number> {
    const { device, target } = this.q;
    await this.eachDevice(ctx, async (dev) => {
      if (device === undefined) {
        const n =
          target === 'device-event'
            ? dev.eventAttrs.length
            : dev.channels.reduce((sum, c) => sum + c.eventAttrs.length, 0);
        const what = target === 'device-event' ? 'device' : 'channel';
        this.out.line(`found ${n} ${what} event attribute${plural(n)}`);
        return;
      }
      if (target === 'channel-event') await this.channels(dev);
      else {
        for (const a of dev.eventAttrs) {
          if (this.q.attr !== undefined && !this.match(a.name, this.q.attr)) continue;
          await this.dump((quiet) => this.dumpDevice(dev, a, this.q.value, quiet));
        }
      }
    });
    return this.report();
  }

  private async channels(dev: Device): Promise<void> {
    const { channel, attr, value, inputOnly, outputOnly, scanOnly } = this.q;
    for (const ch of dev.channels) {
      if (inputOnly && ch.isOutput) continue;
      if (outputOnly && !ch.isOutput) continue;
      if (scanOnly && !ch.isScanElement) continue;
      // libiio 1.0's test, precedence included: without a label, only the id is matched
      if (
        channel !== undefined &&
        !this.match(ch.id, channel) &&
        (ch.label === undefined ||
          (!this.match(ch.label, channel) &&
            (ch.name === undefined || !this.match(ch.name, channel))))
      )
        continue;
      this.channelFound = true;
      const n = ch.eventAttrs.length;
      if (channel === undefined) {
        this.out.line(
          `${devKind(dev)} '${labelOrNameOrId(dev)}', channel '${ch.id}' (${ch.isOutput ? 'output' : 'input'}), found ${n} channel event attribute${plural(n)}`,
        );
      }
      if (!n || channel === undefined) continue;
      for (const a of ch.eventAttrs) {
        if (attr !== undefined && !this.match(a.name, attr)) continue;
        await this.dump((quiet) => this.dumpChannel(dev, ch, a, value, quiet));
      }
    }
  }

  /** libiio 1.0's closing messages (the first that applies) and exit status. */
  private report(): number {
    const { device, channel, attr, inputOnly, outputOnly, scanOnly } = this.q;
    const err = (m: string): void => this.err.line(`ERROR: ${MY_NAME}: ${m}`);
    const noDevice = !this.devFound && device !== undefined;
    const noChannel = !this.channelFound && channel !== undefined;
    const noAttr = !this.attrFound && attr !== undefined;
    if (noDevice) err(`Could not find device (${device})`);
    else if (noChannel) {
      if (inputOnly) err(`Could not find Input channel (${channel})`);
      if (outputOnly) err(`Could not find Output channel (${channel})`);
      if (scanOnly) err(`Could not find Scan channel (${channel})`);
      if (!inputOnly && !outputOnly && !scanOnly) err(`Could not find channel (${channel})`);
    } else if (noAttr) err(`Could not find attribute (${attr})`);
    if (noDevice || noChannel || noAttr) return 1;
    return this.writeErr || this.readErr || this.foundErr ? 1 : 0;
  }
}

/** Runs an -E or -e query on an open context; resolves with iio_attr 1.0's exit status. */
export function runEventAttrQuery(ctx: Context, q: AttrQuery, out: Out, err: Out): Promise<number> {
  return new EventAttrRun(q, out, err).run(ctx);
}
