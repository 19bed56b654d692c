import { attrMain } from './attr';
import { infoMain } from './info';
import { scanMain } from './scan-cmd';
import { serveMain } from './serve';
import type { CliIo } from './io';
import { readdevMain } from './readdev';
import { writedevMain } from './writedev';

type Command = (argv: readonly string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, { run: Command; what: string }> = {
  info: { run: infoMain, what: 'describe a context (iio_info)' },
  attr: { run: attrMain, what: 'read and write attributes (iio_attr)' },
  readdev: { run: readdevMain, what: 'capture raw scans to stdout (iio_readdev)' },
  writedev: { run: writedevMain, what: 'play raw scans from stdin (iio_writedev)' },
  scan: { run: scanMain, what: 'list reachable contexts (DNS-SD, ...)' },
  serve: { run: serveMain, what: 'serve a context to libiio clients (iiod)' },
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
  return c.run(rest, io);
}
