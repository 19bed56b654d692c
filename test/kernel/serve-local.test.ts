/**
 * `serveContext(local:)` on the VM's real kernel against libiio 0.24's iiod serving the
 * same kernel: libiio's own clients must not tell them apart. One difference is
 * accepted, documented in docs/decisions.md: where no trigger is set, iiod answers
 * GETTRIG with -EIO (libiio 0.24 reads the empty current_trigger as an error) while we
 * answer "no trigger".
 */
import assert from 'node:assert/strict';
import { createContext, type Context, type ServerHandle } from '../../src';
import { serveContext } from '../../src/server';
import { PEERS, requirePeer } from '../helpers/peers';
import { dropVersionLines } from '../helpers/sysfs-snapshot';
import { runAsync, startIiod } from '../network/server-helpers';

const KERNEL = process.env.IIO_VM_KERNEL ?? '?';
/** iio_dummy's buffered channels without the timestamp (its values are constant). */
const READDEV = ['-t', 'hrtimer0', '-b', '50', '-s', '100', 'dummy0'];
const CHANNELS = ['voltage0', 'voltage1-voltage2', 'voltage3-voltage4', 'accel_x'];

describe(`serve local: on Linux ${KERNEL}: libiio through our server = through iiod`, function () {
  this.timeout(600000);
  let ctx: Context;
  let server: ServerHandle;
  let iiod: { port: number; stop(): Promise<void> };
  let ours: string;
  let theirs: string;
  /** What iio_readdev wrote through iiod (4 channels, 2 bytes each per scan). */
  let reference: Buffer | undefined;

  before(async function () {
    requirePeer(this, PEERS.vm);
    requirePeer(this, PEERS.iiod);
    requirePeer(this, PEERS.iioInfo);
    ctx = await createContext('local:');
    server = await serveContext(ctx, { port: 0 });
    iiod = await startIiod('local:');
    ours = `ip:127.0.0.1:${server.port}`;
    theirs = `ip:127.0.0.1:${iiod.port}`;
  });
  after(async () => {
    await server?.close();
    await ctx?.close();
    await iiod?.stop();
  });

  it('iio_info prints the same context through both', async () => {
    const a = await runAsync('iio_info', ['-u', theirs]);
    const b = await runAsync('iio_info', ['-u', ours]);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    const theirsText = a.stdout.toString();
    assert.match(theirsText, /^\tiio_sysfs_trigger:$/m, 'both list iio_sysfs_trigger');
    const EIO = /^ERROR: checking for trigger : Input\/output error \(5\)$/gm;
    const eio = theirsText.match(EIO)?.length ?? 0;
    // iiod 0.24 answers -EIO where it finds no trigger set (how many devices depends on the
    // kernel: fewer on 6.12); ours says "No trigger assigned", as libiio on local: does
    assert.ok(eio > 0, 'iiod answers -EIO for devices without a trigger set');
    const theirsFixed = theirsText.replace(EIO, '\t\tNo trigger assigned to device');
    assert.equal(dropVersionLines(b.stdout.toString()), dropVersionLines(theirsFixed));
  });

  it('iio_attr writes through our server are what iiod reads back', async () => {
    const set = await runAsync('iio_attr', [
      '-u',
      ours,
      '-d',
      'hrtimer0',
      'sampling_frequency',
      '123',
    ]);
    assert.equal(set.status, 0, set.stderr);
    const got = await runAsync('iio_attr', ['-u', theirs, '-d', 'hrtimer0', 'sampling_frequency']);
    assert.match(got.stdout.toString().trim(), /^123(\.0+)?$/);
    await runAsync('iio_attr', ['-u', ours, '-d', 'hrtimer0', 'sampling_frequency', '100']);
  });

  it('iio_readdev through our server writes byte-for-byte what it writes through iiod', async function () {
    const a = await runAsync('iio_readdev', ['-u', theirs, ...READDEV, ...CHANNELS]);
    assert.equal(a.status, 0, a.stderr);
    // Both servers read the same device in turn: let iiod release it first.
    await iiod.stop();
    const b = await runAsync('iio_readdev', ['-u', ours, ...READDEV, ...CHANNELS]);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(a.stdout.length, 100 * 8, '2 + 2 + 2 + 2 bytes per scan');
    assert.deepEqual(b.stdout, a.stdout);
    reference = a.stdout;
  });

  it('two iio_readdev on different channels at once both get their channel', async function () {
    if (!reference) this.skip();
    const column = (k: number): Buffer =>
      Buffer.concat(
        Array.from({ length: 100 }, (_, i) =>
          reference!.subarray(i * 8 + k * 2, i * 8 + k * 2 + 2),
        ),
      );
    const [x, y] = await Promise.all([
      runAsync('iio_readdev', ['-u', ours, ...READDEV, 'voltage0']),
      runAsync('iio_readdev', ['-u', ours, ...READDEV, 'accel_x']),
    ]);
    assert.equal(x.status, 0, x.stderr);
    assert.equal(y.status, 0, y.stderr);
    assert.deepEqual(x.stdout, column(0));
    assert.deepEqual(y.stdout, column(3));
  });
});
