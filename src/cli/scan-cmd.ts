import { errnoOrEio, strerror } from '../errors';
import { scanContexts } from '../scan';
import { runTool } from './common';
import { getopt } from './getopt';
import type { CliIo } from './io';

const USAGE = `Usage:
\tiiokit scan [-j] [BACKENDS]
Lists the IIO contexts that can be reached: DNS-SD (_iio._tcp) for ip,
and every other backend that can look for contexts.
BACKENDS filters them, as libiio's -S: ip, usb, ip:usb, local,ip
Options:
\t-j, --json
\t\t\tPrint a JSON array of { uri, description }.
\t-h, --help
\t\t\tShow this help and quit.`;

/** \`iiokit scan\`: what scanContexts() finds, in iio_info -S's format (or JSON). */
export function scanMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runTool(io, async (out, err) => {
    const res = getopt(argv, 'hj', [
      { name: 'help', arg: 'none', val: 'h' },
      { name: 'json', arg: 'none', val: 'j' },
    ]);
    let json = false;
    for (const o of res.options) {
      if (o.opt === 'h') {
        out.line(USAGE);
        return 0;
      }
      if (o.opt === 'j') json = true;
      if (o.opt === '?') {
        err.line(`Unknown argument '${o.arg ?? '?'}'`);
        out.line(USAGE);
        return 1;
      }
    }
    if (res.operands.length > 1) {
      err.line('Too many arguments.');
      out.line(USAGE);
      return 1;
    }
    let found;
    try {
      found = await scanContexts(res.operands[0]);
    } catch (e) {
      // as iio_info -S: an unknown backend is a failed scan, status 1
      err.line(`Scanning for IIO contexts failed: ${strerror(errnoOrEio(e))}`);
      if (process.env.IIOKIT_DEBUG) err.line(String(e));
      return 1;
    }
    if (json) {
      out.line(JSON.stringify(found, null, 2));
      return 0;
    }
    if (!found.length) {
      err.line('No IIO context found.');
      return 0;
    }
    out.line('Available contexts:');
    found.forEach((c, i) => out.line(`\t${i}: ${c.description} [${c.uri}]`));
    return 0;
  });
}
