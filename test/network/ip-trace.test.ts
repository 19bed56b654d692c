/**
 * Tracing of the iiod client (NODE_DEBUG=iiokit:iiod, iiokit:ip): `iiokit` run as a child
 * process against our server prints its sections' lines on stderr in Node's debuglog
 * format, and nothing without NODE_DEBUG.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createContext, serveContext, type Context } from '../../src';

const BIN = join(__dirname, '..', '..', '..', 'bin', 'iiokit.js');

/** Runs iiokit in a child (debuglog reads NODE_DEBUG once per process). */
function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ stderr: string; status: number | null }> {
  const base = { ...process.env };
  delete base.NODE_DEBUG;
  delete base.IIOKIT_DEBUG;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...base, ...env } });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (status) => resolve({ stderr, status }));
  });
}

describe('ip: tracing sections of the iiod client', function () {
  this.timeout(60000);
  let ctx: Context;
  let server: Awaited<ReturnType<typeof serveContext>>;

  before(async () => {
    ctx = await createContext('emu:');
    server = await serveContext(ctx, { port: 0 });
  });
  after(async () => {
    await server?.close();
    await ctx?.close();
  });

  const args = (): string[] => ['attr', '-u', server.uri, '-c', 'emu-adc', 'voltage0', 'raw'];

  it('iiokit:iiod and iiokit:ip say what was connected and which protocol it speaks', async () => {
    const { stderr, status } = await run(args(), { NODE_DEBUG: 'iiokit:iiod,iiokit:ip' });
    assert.equal(status, 0, stderr);
    const where = server.uri.slice('ip:'.length);
    assert.match(stderr, new RegExp(`^IIOKIT:IP \\d+: control connection to ${where}$`, 'm'));
    // our server speaks libiio 0.24's protocol: no BINARY is tried
    assert.match(
      stderr,
      new RegExp(
        `^IIOKIT:IIOD \\d+: ${where}: iiod 0\\.24 \\(iiokit\\), \\d+ devices, ascii protocol$`,
        'm',
      ),
    );
    assert.doesNotMatch(stderr, /IIOKIT:(USB|SERIAL)/);
  });

  it('prints nothing without NODE_DEBUG', async () => {
    const { stderr, status } = await run(args(), {});
    assert.equal(status, 0, stderr);
    assert.doesNotMatch(stderr, /IIOKIT:/);
  });
});
