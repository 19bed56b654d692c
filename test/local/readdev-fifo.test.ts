/**
 * `iiokit readdev` / `iiokit writedev` side by side with libiio 0.24's iio_readdev /
 * iio_writedev on the same FIFO-backed device, in a private mount namespace where the
 * device sits at /sys/bus/iio and /dev/iio:deviceN (see helpers/fifo-namespace.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { namespaceAvailable, runInNamespace } from '../helpers/fifo-namespace';
import { PEERS, requirePeer, type Peer } from '../helpers/peers';

const IIOKIT = `${process.execPath} ${join(__dirname, '../../../bin/iiokit.js')}`;
/** Prints sysfs-like files one per line (libiio writes a NUL, we write no newline). */
const SHOW = `show() { for f; do printf '%s\\n' "$(tr -d '\\000\\n' < "$f")"; done; }\n`;
const namespace: Peer = {
  name: 'root and unshare (a private mount namespace for the FIFO device)',
  install: 'run the tests as root on Linux (util-linux unshare)',
  available: namespaceAvailable,
};

describe('iiokit readdev/writedev vs libiio on a FIFO-backed device', function () {
  let dir: string;

  before(function () {
    requirePeer(this, namespace);
    requirePeer(this, PEERS.iioInfo);
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'iiokit-ns-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('readdev writes exactly the bytes iio_readdev writes (the device’s bytes)', () => {
    const pat = join(dir, 'pattern');
    writeFileSync(pat, randomBytes(8 * 8192));
    const r = runInNamespace(`${SHOW}
      (cat ${pat} > /dev/iio:device0 &)
      ${IIOKIT} readdev -b 64 -s 8192 fakeadc > ${dir}/ours; echo "ours=$?"
      (cat ${pat} > /dev/iio:device0 &)
      iio_readdev -b 64 -s 8192 fakeadc > ${dir}/libiio; echo "libiio=$?"
      (cat ${pat} > /dev/iio:device0 &)
      ${IIOKIT} readdev -b 128 -s 8192 fakeadc voltage0 voltage1 voltage2 voltage3 > ${dir}/named; echo "named=$?"
      show /sys/bus/iio/devices/iio:device0/buffer/enable
    `);
    assert.equal(r.stdout, 'ours=0\nlibiio=0\nnamed=0\n0\n', r.stderr);
    const want = readFileSync(pat);
    assert.ok(readFileSync(join(dir, 'libiio')).equals(want), 'iio_readdev reads the pattern');
    assert.ok(readFileSync(join(dir, 'ours')).equals(readFileSync(join(dir, 'libiio'))));
    assert.ok(readFileSync(join(dir, 'named')).equals(want));
  });

  it('readdev into a slow pipe: every byte once, in order (writes wait for the reader)', () => {
    // 4 MiB through a pipe whose reader takes 4 KiB at a time with pauses: stdout's writes
    // are partial and asynchronous, blocks go back to the pool only once written.
    const pat = join(dir, 'pattern');
    writeFileSync(pat, randomBytes(4 * 1024 * 1024));
    const slowCat = `python3 -c "
import os, sys, time
n = 0
while True:
    b = os.read(0, 4096)
    if not b: break
    os.write(1, b); n += 1
    if n % 64 == 0: time.sleep(0.01)
"`;
    const r = runInNamespace(`${SHOW}
      (cat ${pat} > /dev/iio:device0 &)
      ${IIOKIT} readdev -b 2048 -s $((4 * 1024 * 1024 / 8)) fakeadc | ${slowCat} > ${dir}/ours
      echo "ours=\${PIPESTATUS[0]}"
      show /sys/bus/iio/devices/iio:device0/buffer/enable
    `);
    assert.equal(r.stdout, 'ours=0\n0\n', r.stderr);
    assert.ok(readFileSync(join(dir, 'ours')).equals(readFileSync(pat)), 'the same bytes');
  });

  it('readdev into a pipe whose reader leaves (| head -c): exit 0, quiet, device restored', () => {
    const r = runInNamespace(`${SHOW}
      cat /dev/zero > /dev/iio:device0 2>/dev/null & gen=$!
      ${IIOKIT} readdev -b 8192 fakeadc 2>${dir}/err | head -c 1000000 | wc -c
      echo "ours=\${PIPESTATUS[0]}"
      wait $gen
      D=/sys/bus/iio/devices/iio:device0
      show $D/buffer/enable $D/scan_elements/in_voltage0_en
    `);
    assert.equal(r.stdout, '1000000\nours=0\n0\n0\n', r.stderr);
    assert.equal(readFileSync(join(dir, 'err'), 'utf8'), '', 'nothing on stderr');
  });

  it('readdev times out like iio_readdev when the device sends nothing', () => {
    const r = runInNamespace(`${SHOW}
      ${IIOKIT} readdev -T 300 -b 64 -s 100 fakeadc 2>&1 >/dev/null; echo "ours=$?"
      iio_readdev -T 300 -b 64 -s 100 fakeadc 2>&1 >/dev/null | grep -v High-speed; echo "libiio"
    `);
    const lines = r.stdout.split('\n');
    assert.equal(
      lines[0],
      'Unable to refill buffer: Connection timed out (110)',
      r.stdout + r.stderr,
    );
    assert.equal(lines[1], 'ours=1');
    assert.equal(lines[2], lines[0], 'the same message as libiio');
  });

  it('writedev writes exactly stdin to the device, like iio_writedev', () => {
    const pat = join(dir, 'pattern');
    writeFileSync(pat, randomBytes(4 * 64 * 50));
    const n = 4 * 64 * 50;
    const r = runInNamespace(`${SHOW}
      head -c ${n} /dev/iio:device1 > ${dir}/ours & h=$!
      ${IIOKIT} writedev -b 64 fakedac < ${pat}; echo "ours=$?"; wait $h
      head -c ${n} /dev/iio:device1 > ${dir}/libiio & h=$!
      iio_writedev -b 64 fakedac < ${pat} 2>/dev/null; echo "libiio=$?"; wait $h
      show /sys/bus/iio/devices/iio:device1/buffer/enable /sys/bus/iio/devices/iio:device1/scan_elements/out_voltage0_en
    `);
    assert.equal(r.stdout, 'ours=0\nlibiio=0\n0\n0\n', r.stderr);
    const want = readFileSync(pat);
    assert.ok(readFileSync(join(dir, 'libiio')).equals(want), 'iio_writedev writes the pattern');
    assert.ok(readFileSync(join(dir, 'ours')).equals(want));
  });

  it('writedev -c repeats the first buffer until SIGINT (libiio 0.24 cannot without high-speed mode)', () => {
    const pat = join(dir, 'pattern');
    const block = randomBytes(4 * 64);
    writeFileSync(pat, block);
    const r = runInNamespace(`${SHOW}
      ${IIOKIT} writedev -c -b 64 fakedac < ${pat} & w=$!
      head -c ${block.length * 20} /dev/iio:device1 > ${dir}/ours
      kill -INT $w; wait $w; echo "ours=$?"
      show /sys/bus/iio/devices/iio:device1/buffer/enable
      iio_writedev -c -b 64 fakedac < ${pat}; echo "libiio=$?"
    `);
    assert.match(r.stdout, /^ours=0\n0\n/, r.stderr);
    assert.ok(readFileSync(join(dir, 'ours')).equals(Buffer.concat(Array(20).fill(block))));
    assert.match(r.stderr, /Unable to allocate buffer: Operation not permitted \(1\)/);
  });

  it('readdev stops cleanly on SIGINT and leaves the buffer disabled and restored', () => {
    const r = runInNamespace(`${SHOW}
      cat /dev/zero > /dev/iio:device0 2>/dev/null & gen=$!
      ${IIOKIT} readdev -b 256 fakeadc voltage1 > ${dir}/ours & p=$!
      while [ ! -s ${dir}/ours ]; do sleep 0.05; done
      show /sys/bus/iio/devices/iio:device0/buffer/enable
      kill -INT $p; wait $p; echo "ours=$?"
      wait $gen # the device's writer ends when its reader is gone (EPIPE)
      D=/sys/bus/iio/devices/iio:device0
      show $D/buffer/enable $D/buffer/length $D/buffer/watermark $D/scan_elements/in_voltage1_en
    `);
    assert.equal(r.stdout, '1\nours=0\n0\n4096\n1\n0\n', r.stderr);
  });
});
