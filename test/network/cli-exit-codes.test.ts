/**
 * `iiokit` and libiio 0.24's tools side by side, case by case: the same command line
 * against the same server (ours, serving emu:) must end with the same exit status and
 * say the same things. Each row runs both tools; nothing expected is computed by the
 * code under test. `serve` is compared with iiod, `scan` with `iio_info -S`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createContext, serveContext, type Context, type ServerHandle } from '../../src';
import { PEERS, requirePeer } from '../helpers/peers';
import { runAsync, type ToolResult } from './server-helpers';

const BIN = join(__dirname, '../../../bin/iiokit.js');
const XML = join(__dirname, '../../../test/fixtures/xml/adxl345.xml');

/** What of the two runs must agree, besides the exit status. */
type Compare = 'status' | 'stderr' | 'stdout' | 'both';

interface Row {
  /** Our command line (`info -u URI`); libiio's is `iio_info -u URI`, unless `theirs`. */
  readonly ours: string[];
  readonly theirs?: { cmd: string; args: string[] };
  readonly compare: Compare;
  /** The status both must end with (so a row also says what libiio does). */
  readonly status: number;
  readonly stdin?: Buffer;
  /** A line our stderr must have (said once both statuses are known to agree). */
  readonly oursSays?: RegExp;
}

/** Lines as libiio prints them, with its tool names written as ours. */
function normalise(text: string): string[] {
  return text
    .replace(/\biio_(info|attr|readdev|writedev)\b/g, 'iiokit $1')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter(
      (l) =>
        l !== '' &&
        // libiio's network client prints its read errors on stderr as it goes
        !/^ERROR: (READ LINE|READ INTEGER|Unable to send command)/.test(l) &&
        // ours adds one detail line, in parentheses, after libiio's message
        !/^ {2}\(E[A-Z0-9]+: /.test(l) &&
        // the two version lines name the library
        !/^(Library version|Compiled with backends):/.test(l),
    );
}

function libiioArgs(row: Row): { cmd: string; args: string[] } {
  if (row.theirs) return row.theirs;
  const [sub, ...rest] = row.ours;
  return { cmd: `iio_${sub}`, args: rest };
}

async function runBoth(row: Row): Promise<{ ours: ToolResult; theirs: ToolResult }> {
  const t = libiioArgs(row);
  const [ours, theirs] = await Promise.all([
    runAsync(process.execPath, [BIN, ...row.ours], { input: row.stdin, timeoutMs: 30000 }),
    runAsync(t.cmd, t.args, { input: row.stdin, timeoutMs: 30000 }),
  ]);
  return { ours, theirs };
}

function check(row: Row, r: { ours: ToolResult; theirs: ToolResult }): void {
  const show = `\nours: ${r.ours.status}\n${r.ours.stderr}\ntheirs: ${r.theirs.status}\n${r.theirs.stderr}`;
  assert.equal(r.theirs.status, row.status, `libiio's status is the one stated${show}`);
  assert.equal(r.ours.status, r.theirs.status, `same exit status${show}`);
  if (row.compare === 'stderr' || row.compare === 'both')
    assert.deepEqual(normalise(r.ours.stderr), normalise(r.theirs.stderr));
  if (row.compare === 'stdout' || row.compare === 'both')
    assert.deepEqual(
      normalise(r.ours.stdout.toString('latin1')),
      normalise(r.theirs.stdout.toString('latin1')),
    );
  if (row.oursSays) assert.match(r.ours.stderr, row.oursSays);
}

describe("iiokit's exit statuses and messages are libiio 0.24's (side by side)", function () {
  this.timeout(120000);
  let served: Context;
  let server: ServerHandle;
  let U = '';

  before(async function () {
    requirePeer(this, PEERS.iioInfo);
    requirePeer(this, PEERS.iiod);
    served = await createContext('emu:');
    server = await serveContext(served, { port: 0 });
    U = server.uri;
  });
  after(async () => {
    await server?.close();
    await served?.close();
  });

  /** The rows need the server's URI: built when they run. */
  const rows: Array<[string, () => Row]> = [
    // iio_info
    // (attribute values are live: stderr only)
    ['info: a context', () => ({ ours: ['info', '-u', U], compare: 'stderr', status: 0 })],
    [
      'info: an extra argument (libiio prints its usage, which exits 0)',
      () => ({ ours: ['info', '-u', U, 'extra'], compare: 'stderr', status: 0 }),
    ],
    [
      'info: -T applies after the context is created',
      () => ({ ours: ['info', '-u', U, '-T', '1'], compare: 'stderr', status: 0 }),
    ],
    [
      'info: an unknown option',
      () => ({ ours: ['info', '-u', U, '-Z'], compare: 'both', status: 1 }),
    ],
    [
      'info: an option without its argument',
      () => ({ ours: ['info', '-u', U, '-T'], compare: 'both', status: 1 }),
    ],
    [
      'info: a refused connection',
      () => ({ ours: ['info', '-u', 'ip:127.0.0.1:1'], compare: 'status', status: 1 }),
    ],
    [
      'info: -S with an unknown backend',
      () => ({ ours: ['info', '-S', 'bogus'], compare: 'both', status: 1 }),
    ],
    // iio_readdev
    [
      'readdev: no device (examples, then the usage, which exits 0)',
      () => ({ ours: ['readdev', '-u', U], compare: 'status', status: 0 }),
    ],
    [
      'readdev: an unknown option',
      () => ({ ours: ['readdev', '-u', U, '-Z', 'ad7606-emu'], compare: 'both', status: 1 }),
    ],
    [
      'readdev: an option without its argument',
      () => ({ ours: ['readdev', '-u', U, '-b'], compare: 'both', status: 1 }),
    ],
    [
      'readdev: a device that is not there',
      () => ({ ours: ['readdev', '-u', U, 'nodev'], compare: 'both', status: 1 }),
    ],
    [
      'readdev: a channel that is not there',
      () => ({ ours: ['readdev', '-u', U, 'ad7606-emu', 'nosuch'], compare: 'both', status: 1 }),
    ],
    [
      'readdev: ten scans',
      () => ({
        ours: ['readdev', '-u', U, '-s', '10', 'ad7606-emu', 'voltage0'],
        compare: 'stderr',
        status: 0,
      }),
    ],
    [
      // -T 100: an OPEN takes far less even on a loaded machine (-T 1 let it time out
      // there first), a 256-scan block at 1 kHz takes 256 ms: the refill is what fails
      'readdev: a refill that fails (-T 100 against 256-scan blocks at 1 kHz) stops, status 0',
      () => ({
        ours: ['readdev', '-u', U, '-T', '100', '-s', '10', 'ad7606-emu'],
        compare: 'status',
        status: 0,
        oursSays: /^Unable to refill buffer: /m,
      }),
    ],
    [
      'readdev: stdout closed early (| head -c 100)',
      () => ({
        ours: [
          'bash',
          '-c',
          `node ${BIN} readdev -u ${U} -b 16 ad7606-emu voltage0 | head -c 100 >/dev/null; exit \${PIPESTATUS[0]}`,
        ],
        theirs: {
          cmd: 'bash',
          args: [
            '-c',
            `iio_readdev -u ${U} -b 16 ad7606-emu voltage0 | head -c 100 >/dev/null; exit \${PIPESTATUS[0]}`,
          ],
        },
        compare: 'stderr',
        status: 0,
      }),
    ],
    // iio_writedev
    [
      'writedev: no device (examples, then the usage, which exits 0)',
      () => ({ ours: ['writedev', '-u', U], compare: 'status', status: 0 }),
    ],
    [
      'writedev: an unknown option',
      () => ({ ours: ['writedev', '-u', U, '-Z', 'ad5689-emu'], compare: 'both', status: 1 }),
    ],
    // iiod
    ...['99999', 'abc', '-1', '0x10', '65536', ''].map((p): [string, () => Row] => [
      `serve -p '${p}' (iiod refuses it)`,
      () => ({
        ours: ['serve', '-u', 'emu:', '-p', p],
        theirs: { cmd: 'iiod', args: ['-u', `xml:${XML}`, '-p', p] },
        compare: 'status',
        status: 1,
        oursSays: /iiokit serve: invalid port number/,
      }),
    ]),
    // iio_info -S
    [
      'scan: an unknown backend',
      () => ({
        ours: ['scan', 'bogus'],
        theirs: { cmd: 'iio_info', args: ['-S', 'bogus'] },
        compare: 'stderr',
        status: 1,
      }),
    ],
  ];

  for (const [title, make] of rows) {
    it(title, async () => {
      const row = make();
      // the pipe rows run bash for both: our command line is the bash one
      const r =
        row.ours[0] === 'bash'
          ? await (async () => {
              const [ours, theirs] = await Promise.all([
                runAsync('bash', row.ours.slice(1), { timeoutMs: 30000 }),
                runAsync(row.theirs!.cmd, row.theirs!.args, { timeoutMs: 30000 }),
              ]);
              return { ours, theirs };
            })()
          : await runBoth(row);
      check(row, r);
    });
  }

  it('readdev: SIGINT mid-stream ends both with the same status', async () => {
    const { spawn } = await import('node:child_process');
    const stopAfterData = (cmd: string, args: string[]): Promise<number | null> =>
      new Promise((resolve) => {
        const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
        let sent = false;
        c.stdout.on('data', () => {
          if (!sent) {
            sent = true;
            c.kill('SIGINT');
          }
        });
        c.on('close', (status) => resolve(status));
      });
    const args = ['-u', U, '-b', '16', 'ad7606-emu', 'voltage0'];
    const [ours, theirs] = await Promise.all([
      stopAfterData(process.execPath, [BIN, 'readdev', ...args]),
      stopAfterData('iio_readdev', args),
    ]);
    assert.equal(theirs, 0);
    assert.equal(ours, theirs);
  });
});
