/**
 * The scan layout against a real kernel: every subset of iio_dummy's scan elements is
 * enabled through sysfs, /dev/iio:device0 is read with plain fs calls, and
 * - the kfifo's datum size (read() of fewer bytes fails with EINVAL, of exactly that many
 *   succeeds) equals our computed scanBytes;
 * - every scan decodes to the dummy's constants 7, -33, -2, 344 and a timestamp that
 *   increases and is close to the wall clock.
 */
import assert from 'node:assert/strict';
import {
  closeSync,
  constants,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { demuxChannel } from '../../src/format/demux';
import { computeScanLayout } from '../../src/format/layout';
import { parseScanType } from '../../src/format/scan-type';
import { PEERS, requirePeer } from '../helpers/peers';

const SYS = '/sys/bus/iio/devices';
const DEV = join(SYS, 'iio:device0');
const CHARDEV = '/dev/iio:device0';
/** What iio_simple_dummy_buffer.c pushes for each channel (fakedata[]). */
const FAKEDATA: Record<string, number> = {
  voltage0: 7,
  'voltage1-voltage2': -33,
  'voltage3-voltage4': -2,
  accel_x: 344,
};

interface Element {
  id: string;
  index: number;
  type: string;
}

const read = (p: string): string => readFileSync(p, 'utf8').trim();
const write = (p: string, v: string): void => writeFileSync(p, v);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
}

/** Reads exactly `bytes` bytes of whole scans from a non-blocking fd, waiting for data. */
async function readBytes(fd: number, bytes: number): Promise<Buffer> {
  const out = Buffer.alloc(bytes);
  let got = 0;
  const deadline = Date.now() + 30_000;
  while (got < bytes) {
    try {
      const n = readSync(fd, out, got, bytes - got, null);
      assert.ok(n > 0, 'read() returned 0 on an enabled buffer');
      got += n;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      if (Date.now() > deadline) throw new Error(`no data after 30 s (${got}/${bytes} bytes)`);
      await sleep(5);
    }
  }
  return out;
}

describe('kernel: scan layout of every iio_dummy channel subset', function () {
  /** Where the *_en/_index/_type files are, and where enable/length are. */
  let buffer = '';
  let control = '';
  let trigger = '';
  let savedFrequency = '';
  let elements: Element[] = [];

  before(function () {
    requirePeer(this, PEERS.vm);
    assert.equal(read(join(DEV, 'name')), 'dummy0');
    const multi = existsSync(join(DEV, 'buffer0'));
    buffer = multi ? join(DEV, 'buffer0') : join(DEV, 'scan_elements');
    control = multi ? join(DEV, 'buffer0') : join(DEV, 'buffer');
    const trig = readdirSync(SYS).find(
      (d) => d.startsWith('trigger') && read(join(SYS, d, 'name')) === 'hrtimer0',
    );
    assert.ok(trig, 'trigger hrtimer0 exists');
    trigger = join(SYS, trig);
    savedFrequency = read(join(trigger, 'sampling_frequency'));
    write(join(trigger, 'sampling_frequency'), '1000');
    write(join(DEV, 'trigger/current_trigger'), 'hrtimer0');
    write(join(control, 'enable'), '0');
    elements = readdirSync(buffer)
      .filter((f) => /^in_.*_en$/.test(f))
      .map((f) => {
        const id = f.slice(3, -3);
        return {
          id,
          index: Number(read(join(buffer, `in_${id}_index`))),
          type: read(join(buffer, `in_${id}_type`)),
        };
      })
      .sort((a, b) => a.index - b.index);
    assert.deepEqual(
      elements.map((e) => e.id),
      ['voltage0', 'voltage1-voltage2', 'voltage3-voltage4', 'accel_x', 'timestamp'],
    );
  });

  after(function () {
    if (!trigger) return;
    write(join(control, 'enable'), '0');
    for (const e of elements) write(join(buffer, `in_${e.id}_en`), '0');
    write(join(DEV, 'trigger/current_trigger'), '');
    write(join(trigger, 'sampling_frequency'), savedFrequency);
  });

  it('delivers scanBytes per scan and the dummy constants for all 31 subsets', async function () {
    const checked: string[] = [];
    for (let mask = 1; mask < 1 << elements.length; mask++) {
      const on = elements.filter((_, i) => mask & (1 << i));
      for (const e of elements) write(join(buffer, `in_${e.id}_en`), on.includes(e) ? '1' : '0');
      write(join(control, 'length'), '64');
      const name = on.map((e) => e.id).join('+');
      if (on.every((e) => e.id === 'timestamp')) {
        // The timestamp is not in the scan mask: nothing to capture.
        assert.equal(
          errnoOf(() => write(join(control, 'enable'), '1')),
          'EINVAL',
          name,
        );
        continue;
      }
      const layout = computeScanLayout(
        on.map((e, key) => ({
          key,
          index: e.index,
          format: parseScanType(e.type),
          isTimestamp: e.id === 'timestamp',
        })),
      );
      write(join(control, 'enable'), '1');
      const fd = openSync(CHARDEV, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        // The kfifo's element is the kernel's bytes per scan: one byte less is refused.
        assert.equal(
          errnoOf(() => readSync(fd, Buffer.alloc(64), 0, layout.scanBytes - 1, null)),
          'EINVAL',
          `${name}: read(${layout.scanBytes - 1})`,
        );
        const scans = 5;
        const data = await readBytes(fd, scans * layout.scanBytes);
        layout.slots.forEach((slot, k) => {
          const id = on[k].id;
          const values = demuxChannel(data, layout, slot);
          if (id === 'timestamp') {
            const ts = values as bigint[];
            for (let i = 1; i < scans; i++) assert.ok(ts[i] > ts[i - 1], `${name}: ts increase`);
            const ms = Number(ts[0] / 1_000_000n);
            assert.ok(Math.abs(ms - Date.now()) < 86_400_000, `${name}: timestamp ${ts[0]}`);
          } else {
            assert.deepEqual(values, new Array(scans).fill(FAKEDATA[id]), `${name}: ${id}`);
          }
        });
        checked.push(`${name}=${layout.scanBytes}`);
      } finally {
        closeSync(fd);
        write(join(control, 'enable'), '0');
      }
    }
    assert.equal(checked.length, 30);
  });
});
