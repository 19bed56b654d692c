import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext } from '../../src';
import { iiokitBinary } from '../helpers/cli';
import { PEERS, requirePeer } from '../helpers/peers';

/**
 * `serial:` buffers, against libiio 0.24's iiod serving the VM's real kernel over a
 * pseudo-terminal pair (socat). A UART carries one connection, so the capture takes turns
 * with the context's requests on it (shared-stream.ts). iio_dummy's voltage0 reads 7 in
 * every scan, so the capture compares byte for byte with iio_readdev on local:.
 */
async function waitFor(what: string, ok: () => boolean, ms = 10000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('kernel: serial: client against iiod serving the real kernel on a pty', function () {
  this.timeout(600000);
  let dir = '';
  let socat: ChildProcess | undefined;
  let iiod: ChildProcess | undefined;
  let uri = '';

  before(async function () {
    requirePeer(this, PEERS.vm);
    requirePeer(this, PEERS.iiod);
    requirePeer(this, PEERS.socat);
    dir = mkdtempSync(join(tmpdir(), 'iiokit-serial-'));
    const a = join(dir, 'ttyA');
    const b = join(dir, 'ttyB');
    socat = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
      stdio: 'ignore',
    });
    await waitFor('the pty pair', () => existsSync(a) && existsSync(b));
    iiod = spawn('iiod', ['-u', 'local:', '-s', a], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    uri = `serial:${b},115200,8n1`;
  });
  after(() => {
    iiod?.kill('SIGKILL');
    socat?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('iiokit readdev -u serial: writes byte for byte what iio_readdev -u local: writes', async () => {
    const args = ['-t', 'hrtimer0', '-b', '50', '-s', '300', 'dummy0', 'voltage0'];
    const theirs = spawnSync('iio_readdev', ['-u', 'local:', ...args], {
      maxBuffer: 1 << 20,
      timeout: 120000,
    });
    assert.equal(theirs.status, 0, String(theirs.stderr));
    const ours = await iiokitBinary(['readdev', '-u', uri, ...args]);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(theirs.stdout.length, 300 * 2);
    assert.ok(ours.stdout.equals(theirs.stdout), `${ours.stdout.length} bytes`);
  });

  it('attribute requests go on between refills of an open buffer', async () => {
    const ctx = await createContext(uri, { timeoutMs: 20000 });
    try {
      const dummy = ctx.device('dummy0');
      const buf = await dummy.createBuffer(20, { channels: ['voltage0'], trigger: 'hrtimer0' });
      const accel = dummy.channel('accel_x');
      for (let i = 0; i < 3; i++) {
        const block = Buffer.from(await buf.refill());
        assert.equal(block.length, 40);
        assert.deepEqual([...new Set(block)], [7, 0], 'voltage0 of iio_dummy reads 7');
        await accel.writeAttr('calibbias', i + 1);
        assert.equal(
          readFileSync('/sys/bus/iio/devices/iio:device0/in_accel_x_calibbias', 'utf8').trim(),
          String(i + 1),
        );
      }
      await buf.close();
      await accel.writeAttr('calibbias', 0);
      await waitFor(
        'iiod to disable the buffer',
        () => readFileSync('/sys/bus/iio/devices/iio:device0/buffer/enable', 'utf8').trim() === '0',
      );
      await dummy.setTrigger(null);
    } finally {
      await ctx.close();
    }
  });
});
