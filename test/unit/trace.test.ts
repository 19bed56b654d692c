/**
 * Tracing sections (src/util/trace.ts, docs/architecture.md "Tracing"): `iiokit` run as
 * a child process with NODE_DEBUG set prints its section's lines on stderr in Node's
 * debuglog format, other sections stay quiet, and nothing is printed without it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';

const BIN = join(__dirname, '..', '..', '..', 'bin', 'iiokit.js');
const WRITE = ['attr', '-u', 'emu:', '-c', 'emu-adc', 'voltage0', 'waveform_frequency', '50'];

function run(args: string[], env: Record<string, string>): { stdout: string; stderr: string } {
  const base = { ...process.env };
  delete base.NODE_DEBUG;
  delete base.IIOKIT_DEBUG;
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { ...base, ...env },
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr };
}

describe('tracing sections (NODE_DEBUG=iiokit:<section>)', function () {
  this.timeout(60000);

  it('iiokit:emu traces the emu backend only, in debuglog format', function () {
    const { stdout, stderr } = run(WRITE, { NODE_DEBUG: 'iiokit:emu' });
    assert.equal(stdout, '50\n');
    assert.match(stderr, /^IIOKIT:EMU \d+: opened emu: with 4 devices /m);
    assert.match(
      stderr,
      /^IIOKIT:EMU \d+: write iio:device0\/voltage0\/waveform_frequency = "50"$/m,
    );
    assert.doesNotMatch(stderr, /IIOKIT:(LOCAL|XML|SERVER)/);
  });

  it('is silent without NODE_DEBUG, and another section does not wake this one', function () {
    assert.equal(run(WRITE, {}).stderr, '');
    assert.equal(run(WRITE, { NODE_DEBUG: 'iiokit:xml' }).stderr, '');
  });

  it('NODE_DEBUG=iiokit and IIOKIT_DEBUG=1 switch every section on', function () {
    assert.match(run(WRITE, { NODE_DEBUG: 'iiokit' }).stderr, /^IIOKIT \d+: emu: write /m);
    assert.match(run(WRITE, { IIOKIT_DEBUG: '1' }).stderr, /^iiokit:emu: write /m);
  });

  it('iiokit:server traces connections, commands and negative answers', async function () {
    const base = { ...process.env };
    delete base.IIOKIT_DEBUG;
    const child = spawn(process.execPath, [BIN, 'serve', '-u', 'emu:', '-p', '0'], {
      env: { ...base, NODE_DEBUG: 'iiokit:server' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.stderr.on('data', (d: string) => {
          stderr += d;
          const m = /serving emu: at ip:127\.0\.0\.1:(\d+)/.exec(stderr);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', () => reject(new Error(`serve exited: ${stderr}`)));
      });
      const replies = await new Promise<string>((resolve, reject) => {
        const s = connect(port, '127.0.0.1');
        let got = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => {
          got += d;
          if (got.includes('\n0.24')) s.end('EXIT\n');
        });
        s.on('close', () => resolve(got));
        s.on('error', reject);
        s.write('NOSUCH command\nVERSION\n');
      });
      assert.equal(replies, '-22\n0.24.iiokit \n');
      // The server may log its last line just after the socket closed: wait for it.
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (/: closed$/m.test(stderr)) {
            child.stderr.off('data', check);
            resolve();
          }
        };
        child.stderr.on('data', check);
        check();
      });
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    assert.match(stderr, /^IIOKIT:SERVER \d+: 127\.0\.0\.1:\d+: connected$/m);
    assert.match(stderr, /^IIOKIT:SERVER \d+: 127\.0\.0\.1:\d+: NOSUCH command \(syntax error\)$/m);
    assert.match(stderr, /^IIOKIT:SERVER \d+: 127\.0\.0\.1:\d+: answered -22 \(EINVAL\)$/m);
    assert.match(stderr, /^IIOKIT:SERVER \d+: 127\.0\.0\.1:\d+: VERSION$/m);
    assert.match(stderr, /^IIOKIT:SERVER \d+: 127\.0\.0\.1:\d+: closed$/m);
  });
});
