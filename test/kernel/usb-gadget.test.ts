import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createContext, IioError, scanContexts, type Context } from '../../src';
import { iiokit, iiokitBinary } from '../helpers/cli';
import { compareInfo } from '../helpers/info-compare';
import { PEERS, requirePeer, run } from '../helpers/peers';

/**
 * `usb:` against libiio 0.24's iiod serving the VM's real kernel over a real USB
 * FunctionFS gadget (../shared/iio-vm/usb-gadget: a dummy UDC joined to a dummy host
 * controller). libiio's own client leaves the gadget unusable for the next connection,
 * so every comparison restarts the gadget first; its USB address then changes, which
 * the `uri` lines are checked against (sysfs) instead of compared.
 */
const GADGET = [
  process.env.IIO_VM_USB_GADGET,
  resolve('../shared/iio-vm/usb-gadget'),
  '/work/shared/iio-vm/usb-gadget',
].find((p): p is string => !!p && existsSync(p));
const UDC = '/sys/kernel/config/usb_gadget/iio/UDC';
const DEV = '/sys/bus/usb/devices/1-1';

function sysfs(name: string): string {
  try {
    return readFileSync(`${DEV}/${name}`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** `usb:bus.devnum.0` of the gadget as the host sees it now. */
function gadgetUri(): string {
  return `usb:${sysfs('busnum')}.${sysfs('devnum')}.0`;
}

async function waitFor(what: string, ok: () => boolean, ms = 20000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The iiod the gadget script started, if it still runs. */
function gadgetIiod(): number | undefined {
  try {
    const pid = Number(readFileSync('/tmp/iiod-usb.pid', 'utf8').trim());
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * Starts (or restarts) iiod on the gadget; resolves once the host enumerated it anew.
 * An iiod whose gadget was unbound under an open pipe may not end on SIGTERM (libiio
 * 0.24's FunctionFS shutdown waits for its pipe threads): it gets SIGKILL. FunctionFS
 * unbinds the gadget when a killed iiod's ep0 is finally released, which can undo the
 * next start's binding: then the start is tried again.
 */
async function restartGadget(): Promise<void> {
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const before = sysfs('devnum');
    const old = gadgetIiod();
    run('sh', [GADGET!, 'stop']);
    if (old !== undefined && gadgetIiod() === old) {
      process.kill(old, 'SIGKILL');
      await waitFor('iiod to end', () => gadgetIiod() !== old);
      await new Promise((r) => setTimeout(r, 1000));
    }
    // Starting iiod under emulation on a busy host has taken over a minute.
    const r = run('sh', [GADGET!, 'start'], { timeoutMs: 240000 });
    assert.equal(r.status, 0, r.stderr);
    try {
      await waitFor(
        'the gadget to enumerate',
        () => !!sysfs('devnum') && sysfs('devnum') !== before && existsSync(`${DEV}:1.0`),
        10000,
      );
      return;
    } catch (err) {
      last = `${(err as Error).message} (devnum was ${before})\n${r.stdout}${r.stderr}\n${
        run('sh', ['-c', 'tail -5 /tmp/iiod-usb.log; ls /sys/bus/usb/devices; dmesg | tail -8'])
          .stdout
      }`;
    }
  }
  throw new Error(last);
}

/** Drops the lines that name the library, the gadget's changing address and libusb's version. */
function comparable(text: string): { rest: string; uri?: string; libusb?: string } {
  let uri: string | undefined;
  let libusb: string | undefined;
  const rest = text
    .split('\n')
    .filter((l) => {
      const m = /^\turi: (.*)$/.exec(l);
      if (m) uri = m[1];
      const v = /^\tusb,libusb: (.*)$/.exec(l);
      if (v) libusb = v[1];
      return !m && !v;
    })
    .join('\n');
  return { rest, uri, libusb };
}

describe('kernel: usb: client against iiod on a USB FunctionFS gadget', function () {
  this.timeout(600000);

  before(async function () {
    requirePeer(this, PEERS.vm);
    requirePeer(this, PEERS.iiod);
    requirePeer(this, PEERS.iioInfo);
    if (!GADGET) throw new Error('../shared/iio-vm/usb-gadget not found (set IIO_VM_USB_GADGET)');
    await restartGadget();
  });
  after(() => {
    if (!GADGET) return;
    const pid = gadgetIiod();
    run('sh', [GADGET, 'stop']);
    if (pid !== undefined && gadgetIiod() === pid) process.kill(pid, 'SIGKILL');
  });

  it('iiokit info -u usb: prints what iio_info -u usb: prints', async () => {
    await restartGadget();
    const theirs = run('iio_info', ['-u', 'usb:']);
    assert.equal(theirs.status, 0, theirs.stderr);
    const theirUri = gadgetUri();
    await restartGadget();
    const ours = await iiokit(['info', '-u', 'usb:']);
    assert.equal(ours.status, 0, ours.stderr);
    const a = comparable(theirs.stdout);
    const b = comparable(ours.stdout);
    assert.equal(a.uri, theirUri);
    assert.equal(b.uri, gadgetUri());
    assert.match(b.libusb ?? '', /^\d+\.\d+\.\d+\.\d+/);
    assert.match(ours.stdout, /IIO context created with usb backend\./);
    const r = compareInfo(a.rest, b.rest, { skipBackendVersion: false });
    assert.ok(r.ok, r.firstDifference);
  });

  it('iiokit scan lists the gadget as iio_info -S usb does', async () => {
    const theirs = run('iio_info', ['-S', 'usb']);
    const ours = await iiokit(['scan', 'usb']);
    const line = `0456:b673 (Analog Devices Inc. IIO test gadget), serial=iio-vm-0001 [${gadgetUri()}]`;
    assert.ok(theirs.stdout.includes(line), theirs.stdout);
    assert.ok(ours.stdout.includes(line), ours.stdout);
    const all = await iiokit(['scan']);
    assert.ok(all.stdout.includes(line), all.stdout);
    const filtered = await scanContexts('usb=0456:b673');
    assert.deepEqual(
      filtered.map((c) => c.uri),
      [gadgetUri()],
    );
    assert.deepEqual(await scanContexts('usb=0456:0001'), []);
  });

  it('iiokit readdev -u usb: writes byte for byte what iio_readdev writes', async () => {
    const args = ['-u', 'usb:', '-t', 'hrtimer0', '-b', '50', '-s', '500', 'dummy0', 'voltage0'];
    await restartGadget();
    const theirs = spawnSync('iio_readdev', args, { maxBuffer: 1 << 20, timeout: 120000 });
    assert.equal(theirs.status, 0, String(theirs.stderr));
    await restartGadget();
    const ours = await iiokitBinary(['readdev', ...args]);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(theirs.stdout.length, 500 * 2);
    assert.ok(ours.stdout.equals(theirs.stdout), `${ours.stdout.length} bytes`);
  });

  it('serves one connection after another, and libiio still works after ours', async () => {
    await restartGadget();
    for (let i = 0; i < 2; i++) {
      const ctx = await createContext('usb:');
      const ch = ctx.device('dummy0').channel('voltage0');
      assert.equal(
        await ch.readAttr('raw'),
        run('cat', ['/sys/bus/iio/devices/iio:device0/in_voltage0_raw']).stdout.trim(),
      );
      await ctx.close();
    }
    // iio_attr prints the input's value, then the output voltage0's
    const theirs = run('iio_attr', ['-u', 'usb:', '-c', 'dummy0', 'voltage0', 'raw']);
    assert.equal(theirs.status, 0, theirs.stderr);
    assert.equal(
      theirs.stdout.split('\n')[0],
      run('cat', ['/sys/bus/iio/devices/iio:device0/in_voltage0_raw']).stdout.trim(),
    );
  });

  it('says clearly when this user may not open the device (EACCES, then ENXIO for usb:)', async () => {
    await restartGadget();
    // nobody may read /dev/bus/usb/BBB/DDD (root's 0664 nodes, as without a udev rule)
    const asNobody = (uri: string): { status: number | null; stderr: string } =>
      run('setpriv', [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        resolve('bin/iiokit.js'),
        'info',
        '-u',
        uri,
      ]);
    const byAddress = asNobody(gadgetUri());
    assert.equal(byAddress.status, 1, byAddress.stderr);
    assert.match(
      byAddress.stderr,
      /Permission denied \(13\)[\s\S]*no permission to open USB device .*\/dev\/bus\/usb\/\d+\/\d+.*add a udev rule/,
    );
    const any = asNobody('usb:');
    assert.equal(any.status, 1, any.stderr);
    assert.match(
      any.stderr,
      /no USB device with an IIO interface found .*permissions on \/dev\/bus\/usb/,
    );
  });

  describe('the gadget unbound mid-stream', () => {
    let ctx: Context | undefined;
    const udcName = (): string => readdirSync('/sys/class/udc')[0];
    afterEach(async () => {
      await ctx?.close();
      ctx = undefined;
      try {
        if (!readFileSync(UDC, 'utf8').trim()) writeFileSync(UDC, udcName());
      } catch {
        // iiod is gone: the next test restarts the gadget
      }
    });

    it('gives a clear error (without reconnection)', async () => {
      await restartGadget();
      ctx = await createContext('usb:', { reconnect: false });
      const buf = await ctx
        .device('dummy0')
        .createBuffer(20, { channels: ['voltage0'], trigger: 'hrtimer0' });
      assert.equal((await buf.refill()).length, 40);
      writeFileSync(UDC, '\n');
      const err = await (async () => {
        for (let i = 0; i < 50; i++) await buf.refill();
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof IioError, String(err));
      assert.equal(err.code, 'ENODEV', err.message);
      assert.match(
        err.message,
        /USB device 0456:b673 .*is gone \(unplugged, reset or its gadget unbound/,
      );
      // closing puts the trigger back, which cannot reach the device now
      await buf.close().catch(() => undefined);
    });

    it('resumes the capture once it is bound again', async () => {
      await restartGadget();
      ctx = await createContext('usb:');
      const events: string[] = [];
      let gone = '';
      ctx.on('disconnected', (e: Error) => {
        events.push('disconnected');
        gone = e.message;
      });
      ctx.on('reconnected', () => events.push('reconnected'));
      const buf = await ctx
        .device('dummy0')
        .createBuffer(20, { channels: ['voltage0'], trigger: 'hrtimer0' });
      assert.equal((await buf.refill()).length, 40);
      writeFileSync(UDC, '\n');
      setTimeout(() => writeFileSync(UDC, udcName()), 2000);
      // the refills wait through the outage, then go on
      for (let i = 0; i < 30; i++) {
        const b = await buf.refill();
        assert.equal(b.length, 40);
        assert.deepEqual([...new Set(b)], [7, 0], 'voltage0 of iio_dummy reads 7');
      }
      assert.deepEqual(events, ['disconnected', 'reconnected']);
      assert.match(gone, /is gone \(unplugged, reset or its gadget unbound/);
      await buf.close();
      // closed for good: iiod's pipe threads have let go of the device
      assert.equal(
        readFileSync('/sys/bus/iio/devices/iio:device0/buffer/enable', 'utf8').trim(),
        '0',
      );
    });
  });
});
