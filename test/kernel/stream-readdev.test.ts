/**
 * `iiokit readdev` against libiio 0.24's iio_readdev on the VM's real iio_dummy, and the
 * buffer left disabled after SIGINT. (Both tools set the trigger to 100 Hz and libiio's
 * refill times out after 1 s, hence -b 50.)
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { iiokitBinary } from '../helpers/cli';
import { PEERS, requirePeer } from '../helpers/peers';

const DUMMY0 = '/sys/bus/iio/devices/iio:device0';
const sysfs = (p: string): string => readFileSync(p, 'utf8').trim();

function libiioReaddev(args: string[]): { stdout: Buffer; stderr: string; status: number | null } {
  const r = spawnSync('iio_readdev', args, { maxBuffer: 64 * 1024 * 1024, timeout: 120000 });
  return { stdout: r.stdout, stderr: r.stderr.toString(), status: r.status };
}

describe('kernel: iiokit readdev vs iio_readdev (iio_dummy)', function () {
  before(async function () {
    requirePeer(this, PEERS.vm);
    requirePeer(this, PEERS.iioInfo);
  });

  it('writes byte for byte what iio_readdev writes: -t hrtimer0 -s 1000 dummy0 voltage0 accel_x', async () => {
    const args = ['-t', 'hrtimer0', '-b', '50', '-s', '1000', 'dummy0', 'voltage0', 'accel_x'];
    const ours = await iiokitBinary(['readdev', ...args]);
    const theirs = libiioReaddev(args);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(theirs.status, 0, theirs.stderr);
    assert.equal(ours.stdout.length, 1000 * 4);
    assert.ok(ours.stdout.equals(theirs.stdout), 'identical bytes');
    // iio_dummy pushes the same scan every time: whole 4-byte scans, all alike
    const first = ours.stdout.subarray(0, 4);
    for (let o = 4; o < ours.stdout.length; o += 4)
      assert.ok(ours.stdout.subarray(o, o + 4).equals(first));
  });

  it('matches with the timestamp enabled once timestamps are masked', async () => {
    const args = [
      '-t',
      'hrtimer0',
      '-b',
      '50',
      '-s',
      '200',
      'dummy0',
      'voltage0',
      'accel_x',
      'timestamp',
    ];
    const ours = await iiokitBinary(['readdev', ...args]);
    const theirs = libiioReaddev(args);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(theirs.status, 0, theirs.stderr);
    assert.equal(ours.stdout.length, 200 * 16);
    const mask = (b: Buffer): Buffer => {
      const c = Buffer.from(b);
      for (let o = 8; o < c.length; o += 16) c.fill(0, o, o + 8);
      return c;
    };
    assert.ok(mask(ours.stdout).equals(mask(theirs.stdout)));
    let last = 0n;
    const ts: bigint[] = [];
    for (let o = 8; o < ours.stdout.length; o += 16) ts.push(ours.stdout.readBigInt64LE(o));
    ts.forEach((t, i) => {
      assert.ok(
        t > last,
        `timestamps increase: #${i}: ${ts.slice(Math.max(0, i - 3), i + 3).join(' ')}`,
      );
      last = t;
    });
  });

  it('stops on SIGINT with the buffer disabled and every file restored', async () => {
    const files = [
      'buffer0/enable',
      'buffer0/length',
      'buffer0/watermark',
      'buffer0/in_voltage0_en',
    ];
    const before = files.map((f) => sysfs(`${DUMMY0}/${f}`));
    const p = spawn(process.execPath, [
      join(__dirname, '../../../bin/iiokit.js'),
      'readdev',
      '-t',
      'hrtimer0',
      '-b',
      '10',
      'dummy0',
      'voltage0',
    ]);
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c));
    let bytes = 0;
    await new Promise<void>((resolve) =>
      p.stdout.on('data', (c: Buffer) => {
        bytes += c.length;
        if (bytes >= 40) resolve();
      }),
    );
    assert.equal(sysfs(`${DUMMY0}/buffer0/enable`), '1');
    const code = await new Promise<number | null>((resolve) => {
      p.on('close', (c) => resolve(c));
      p.kill('SIGINT');
    });
    assert.equal(code, 0, stderr);
    assert.deepEqual(
      files.map((f) => sysfs(`${DUMMY0}/${f}`)),
      before,
    );
  });
});
