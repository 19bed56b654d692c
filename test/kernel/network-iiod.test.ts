import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createContext, type Context } from '../../src';
import { iiokit, iiokitBinary } from '../helpers/cli';
import { compareInfo } from '../helpers/info-compare';
import { PEERS, requirePeer, run } from '../helpers/peers';
import { freePort, waitForPort } from '../network/helpers/iiod';
import { spawn, type ChildProcess } from 'node:child_process';

/**
 * The ip: client against libiio's iiod serving the VM's real kernel (local: backend).
 * iio_dummy's buffered channels carry constant data (voltage0 = 7, accel_x = 344), so
 * captures compare byte for byte.
 */
/** Waits (up to 30 s) until the kernel reports the device's buffer disabled. */
async function bufferDisabled(id: string): Promise<void> {
  const file = `/sys/bus/iio/devices/${id}/buffer/enable`;
  for (let i = 0; i < 300; i++) {
    if (readFileSync(file, 'utf8').trim() === '0') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${file} still reads 1 after 30 s`);
}

describe('kernel: ip: client against iiod serving the real kernel', function () {
  this.timeout(600000);
  let iiod: ChildProcess | undefined;
  let uri = '';
  let ctx: Context;
  let savedRate = '';

  before(async function () {
    requirePeer(this, PEERS.vm);
    requirePeer(this, PEERS.iiod);
    const port = await freePort();
    iiod = spawn('iiod', ['-p', String(port)], { stdio: 'ignore' });
    await waitForPort(port);
    uri = `ip:127.0.0.1:${port}`;
    ctx = await createContext(uri, { timeoutMs: 20000 });
    savedRate = run('cat', ['/sys/bus/iio/devices/trigger0/sampling_frequency']).stdout.trim();
    run('sh', ['-c', 'echo 1000 > /sys/bus/iio/devices/trigger0/sampling_frequency']);
  });
  after(async () => {
    // leave the VM as the other suites expect it: no trigger on dummy0, the rate as found
    await ctx
      ?.device('dummy0')
      .setTrigger(null)
      .catch(() => undefined);
    if (savedRate) {
      run('sh', ['-c', `echo ${savedRate} > /sys/bus/iio/devices/trigger0/sampling_frequency`]);
    }
    await ctx?.close();
    iiod?.kill('SIGKILL');
  });

  it('iiokit info -u ip: prints what iio_info -u ip: prints', async () => {
    const theirs = run('iio_info', ['-u', uri]);
    const ours = await iiokit(['info', '-u', uri]);
    assert.equal(theirs.status, 0, theirs.stderr);
    const r = compareInfo(theirs.stdout, ours.stdout, { skipBackendVersion: false });
    assert.ok(r.ok, r.firstDifference);
  });

  it('attribute writes through our client are read back by iio_attr', async () => {
    const dummy = ctx.device('dummy0');
    const accel = dummy.channel('accel_x');
    await accel.writeAttr('calibbias', 5);
    assert.equal(
      run('iio_attr', ['-u', uri, '-c', 'dummy0', 'accel_x', 'calibbias']).stdout.trim(),
      '5',
    );
    await accel.writeAttr('calibbias', 0);
    assert.equal(run('iio_attr', ['-c', 'dummy0', 'accel_x', 'calibbias']).stdout.trim(), '0');
  });

  it('captures byte for byte what iio_readdev captures (hrtimer0)', async () => {
    const theirs = spawnSync(
      'sh',
      [
        '-c',
        `iio_readdev -u ${uri} -t hrtimer0 -b 16 -s 64 dummy0 voltage0 accel_x | od -An -v -tx1`,
      ],
      { encoding: 'utf8' },
    );
    // iiod tears down the previous client's buffer after that client has gone: until it
    // has, the trigger cannot change (EBUSY).
    await bufferDisabled('iio:device0');
    const dev = ctx.device('dummy0');
    const buf = await dev.createBuffer(16, {
      channels: ['voltage0', 'accel_x'],
      trigger: 'hrtimer0',
    });
    const parts: Buffer[] = [];
    for (let i = 0; i < 4; i++) parts.push(Buffer.from(await buf.refill()));
    await buf.close();
    const ours = Buffer.concat(parts);
    const theirBytes = Buffer.from(theirs.stdout.replace(/\s+/g, ''), 'hex');
    assert.equal(theirBytes.length, 64 * 4, theirs.stderr);
    assert.ok(
      ours.equals(theirBytes),
      `${ours.subarray(0, 16).toString('hex')} vs ${theirBytes.subarray(0, 16).toString('hex')}`,
    );
  });

  it('iiokit readdev -u ip: writes byte for byte what iio_readdev -u ip: writes', async () => {
    const args = [
      '-u',
      uri,
      '-t',
      'hrtimer0',
      '-b',
      '16',
      '-s',
      '64',
      'dummy0',
      'voltage0',
      'accel_x',
    ];
    const theirs = spawnSync('iio_readdev', args, { maxBuffer: 1 << 20, timeout: 120000 });
    await bufferDisabled('iio:device0');
    const ours = await iiokitBinary(['readdev', ...args]);
    assert.equal(theirs.status, 0, String(theirs.stderr));
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(theirs.stdout.length, 64 * 4);
    assert.ok(ours.stdout.equals(theirs.stdout), 'same bytes');
    // and all channels, timestamp excluded (it differs by nature)
    const all = [
      '-u',
      uri,
      '-t',
      'hrtimer0',
      '-b',
      '8',
      '-s',
      '32',
      'dummy0',
      'voltage0',
      'voltage1-voltage2',
      'voltage3-voltage4',
      'accel_x',
    ];
    const t2 = spawnSync('iio_readdev', all, { maxBuffer: 1 << 20, timeout: 120000 });
    const o2 = await iiokitBinary(['readdev', ...all]);
    assert.equal(t2.status, 0, String(t2.stderr));
    assert.ok(o2.stdout.equals(t2.stdout), `${o2.stdout.length} vs ${t2.stdout.length} bytes`);
    await ctx.device('dummy0').setTrigger(null);
  });

  it('two clients reading different channels of one device at once both get correct data', async () => {
    await bufferDisabled('iio:device0');
    const ctx2 = await createContext(uri, { timeoutMs: 20000 });
    try {
      await ctx.device('dummy0').setTrigger('hrtimer0');
      const a = await ctx.device('dummy0').createBuffer(16, { channels: ['voltage0'] });
      const b = await ctx2.device('dummy0').createBuffer(16, { channels: ['accel_x'] });
      const check = async (buf: typeof a, value: number): Promise<void> => {
        for (let i = 0; i < 8; i++) {
          const d = await buf.refill();
          assert.equal(d.length, 32);
          for (let k = 0; k < 16; k++) assert.equal(d.readInt16LE(k * 2), value);
        }
      };
      await Promise.all([check(a, 7), check(b, 344)]);
      await a.close();
      await b.close();
    } finally {
      await ctx2.close();
    }
  });
});
