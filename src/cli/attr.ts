/**
 * `iiokit attr`: libiio 0.24's iio_attr — read and write context, device, channel, buffer
 * and debug attributes, with its options, wildcards, messages and exit statuses
 * (tests/iio_attr.c), so the two outputs diff clean. The command line is parsed into a
 * query (attr-query.ts), which runs on the context (attr-run.ts).
 */
import type { Context } from '../model/context';
import { ATTR_TOOL, parseAttrArgs } from './attr-query';
import { runAttrQuery } from './attr-run';
import { openContext, printUsage, runTool } from './common';
import { CliExit, type CliIo } from './io';
import { printScan } from './scan';

export { ATTR_TOOL } from './attr-query';
export { strMatch } from './attr-run';

/** `iiokit attr`: libiio's iio_attr. */
export function attrMain(argv: readonly string[], io: CliIo): Promise<number> {
  return runTool(io, async (out, err) => {
    const cmd = parseAttrArgs(argv, err);
    if (cmd.kind === 'help') {
      printUsage(out, ATTR_TOOL);
      return 0;
    }
    if (cmd.kind === 'scan') {
      await printScan(out, err, cmd.arg);
      return 0;
    }
    // libiio creates the context while reading the common options, before its own checks.
    let ctx: Context | undefined;
    try {
      ctx = await openContext(cmd.common, err);
    } catch (e) {
      if (!(e instanceof CliExit)) throw e;
    }
    try {
      const plan = cmd.plan;
      if (plan.kind === 'refuse') {
        if (ctx || plan.refusal.early) {
          for (const l of plan.refusal.stderr) err.line(l);
          for (const l of plan.refusal.stdout) out.line(l);
        }
        return 1;
      }
      if (!ctx) return 1;
      if (plan.kind === 'usage') {
        printUsage(out, ATTR_TOOL);
        return 0;
      }
      return await runAttrQuery(ctx, plan.query, out, err);
    } finally {
      await ctx?.close();
    }
  });
}
