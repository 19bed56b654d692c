import type { CliIo } from './io';

type Command = (argv: readonly string[], io: CliIo) => Promise<number>;

/**
 * Each command is loaded when it runs: `iiokit readdev` does not pay for loading the
 * server, DNS-SD or the info printer (start-up counts in a short capture, docs/native.md).
 */
const COMMANDS: Record<string, { load: () => Command; what: string }> = {
  info: {
    load: () => (require('./info') as typeof import('./info')).infoMain,
    what: 'describe a context (iio_info)',
  },
  attr: {
    load: () => (require('./attr') as typeof import('./attr')).attrMain,
    what: 'read and write attributes (iio_attr)',
  },
  readdev: {
    load: () => (require('./readdev') as typeof import('./readdev')).readdevMain,
    what: 'capture raw scans to stdout (iio_readdev)',
  },
  writedev: {
    load: () => (require('./writedev') as typeof import('./writedev')).writedevMain,
    what: 'play raw scans from stdin (iio_writedev)',
  },
  scan: {
    load: () => (require('./scan-cmd') as typeof import('./scan-cmd')).scanMain,
    what: 'list reachable contexts (DNS-SD, ...)',
  },
  serve: {
    load: () => (require('./serve') as typeof import('./serve')).serveMain,
    what: 'serve a context to libiio clients (iiod)',
  },
};

function help(io: CliIo): void {
  const lines = [
    'Usage: iiokit <command> [OPTION]...',
    '',
    "Linux IIO tools that print what libiio's tools print.",
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(9)} ${v.what}`),
    '',
    "Run 'iiokit <command> -h' for a command's options.",
  ];
  io.stdout.write(`${lines.join('\n')}\n`);
}

/** Entry point of the `iiokit` binary; resolves with the exit status. */
export async function main(
  argv: readonly string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin },
): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    help(io);
    return cmd ? 0 : 1;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    io.stderr.write(`iiokit: unknown command '${cmd}'\n`);
    help(io);
    return 1;
  }
  return c.load()(rest, io);
}
