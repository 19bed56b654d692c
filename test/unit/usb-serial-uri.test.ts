import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createContext, IioError } from '../../src';
import { formatSerialUri, parseSerialUri } from '../../src/backends/iiod/serial-uri';
import {
  formatUsbUri,
  libusbErrno,
  parseUsbAddress,
  parseUsbFilter,
} from '../../src/backends/iiod/usb-uri';

function rejects(f: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof IioError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('serial: URIs (libiio serial_parse_params)', () => {
  const cases: Array<[string, string]> = [
    // what follows "serial:", then the uri libiio writes back (flow letter always there)
    ['/dev/ttyUSB0', 'serial:/dev/ttyUSB0,115200,8n1n'],
    ['/dev/ttyUSB0,', 'serial:/dev/ttyUSB0,115200,8n1n'],
    ['/dev/ttyUSB0,9600', 'serial:/dev/ttyUSB0,9600,8n1n'],
    ['/dev/ttyACM0,57600,7', 'serial:/dev/ttyACM0,57600,7n1n'],
    ['/dev/ttyACM0,57600,7e', 'serial:/dev/ttyACM0,57600,7e1n'],
    ['/dev/ttyS1,230400,8o2', 'serial:/dev/ttyS1,230400,8o2n'],
    ['/dev/ttyS1,230400,8n1x', 'serial:/dev/ttyS1,230400,8n1x'],
    ['/dev/ttyS1,230400,8N1R', 'serial:/dev/ttyS1,230400,8n1r'],
    ['/dev/ttyS1,115200,8,n,1', 'serial:/dev/ttyS1,115200,8n1n'],
  ];
  for (const [rest, uri] of cases) {
    it(`serial:${rest} → ${uri}`, () => {
      assert.equal(formatSerialUri(parseSerialUri(rest)), uri);
    });
  }

  it('keeps every field it parsed', () => {
    assert.deepEqual(parseSerialUri('/dev/ttyS1,19200,7e2x'), {
      port: '/dev/ttyS1',
      baudRate: 19200,
      dataBits: 7,
      parity: 'even',
      stopBits: 2,
      flow: 'xonxoff',
    });
  });

  const bad: Array<[string, RegExp]> = [
    ['', /the port is empty/],
    [',115200', /the port is empty/],
    ['/dev/ttyS1,fast', /expected the baud rate at "fast"/],
    ['/dev/ttyS1,50', /baud rate 50 is out of range/],
    ['/dev/ttyS1,115200,4n1', /4 data bits/],
    ['/dev/ttyS1,115200,8q1', /"q" is not a parity/],
    ['/dev/ttyS1,115200,8n3', /3 stop bits/],
    ['/dev/ttyS1,115200,8n1z', /"z" is not a flow control/],
    ['/dev/ttyS1,115200,8n1xx', /unexpected "x" after the flow control/],
  ];
  for (const [rest, why] of bad) {
    it(`refuses serial:${rest} (EINVAL, says how to write it)`, () => {
      rejects(() => parseSerialUri(rest), 'EINVAL', why);
      rejects(() => parseSerialUri(rest), 'EINVAL', /use serial:PORT\[,BAUD/);
    });
  }

  it('createContext rejects a malformed serial: URI before touching any port', async () => {
    const e = await createContext('serial:/dev/ttyS1,115200,8q1').then(
      () => undefined,
      (x: unknown) => x,
    );
    assert.ok(e instanceof IioError);
    assert.equal(e.code, 'EINVAL');
  });
});

describe('usb: URIs and scan filters (libiio usb.c)', () => {
  it('usb: alone means the only IIO device a scan finds', () => {
    assert.equal(parseUsbAddress(''), undefined);
    assert.equal(parseUsbAddress('  '), undefined);
  });

  it('bus.address and bus.address.interface, written back with the interface', () => {
    assert.deepEqual(parseUsbAddress('1.5'), { bus: 1, address: 5, intf: 0 });
    assert.deepEqual(parseUsbAddress('3.32.5'), { bus: 3, address: 32, intf: 5 });
    assert.equal(formatUsbUri(parseUsbAddress('1.5')!), 'usb:1.5.0');
    assert.equal(formatUsbUri(parseUsbAddress('3.32.5')!), 'usb:3.32.5');
  });

  for (const [rest, why] of [
    ['1', /expected bus.address/],
    ['1.2.3.4', /expected bus.address/],
    ['a.2', /bus number "a" is not a decimal number/],
    ['1.-2', /device address "-2" is not a decimal number/],
    ['1.256', /device address 256 is out of range/],
  ] as const) {
    it(`refuses usb:${rest}`, () => {
      rejects(() => parseUsbAddress(rest), 'EINVAL', why);
      rejects(() => parseUsbAddress(rest), 'EINVAL', /malformed usb: URI/);
    });
  }

  it('scan filters: vid:pid and vid:* in hexadecimal', () => {
    assert.equal(parseUsbFilter(undefined), undefined);
    assert.equal(parseUsbFilter(''), undefined);
    assert.deepEqual(parseUsbFilter('0456:b673'), { vid: 0x456, pid: 0xb673 });
    assert.deepEqual(parseUsbFilter('0x0456:*'), { vid: 0x456, pid: undefined });
    for (const f of ['0456', '0456:', 'xyz:1', '12345:1']) {
      rejects(() => parseUsbFilter(f), 'EINVAL', /bad usb scan filter/);
    }
  });

  it('libusb errors become the errno libiio would give', () => {
    assert.equal(libusbErrno(-3, false), 'EACCES');
    assert.equal(libusbErrno(-4, false), 'ENODEV');
    assert.equal(libusbErrno(-6, false), 'EBUSY');
    assert.equal(libusbErrno(-99, false), 'EIO');
    assert.equal(libusbErrno(2, true), 'ETIMEDOUT');
    assert.equal(libusbErrno(5, true), 'ENODEV');
  });
});

describe('usb: and serial: without their optional packages', function () {
  this.timeout(30000);
  const root = join(__dirname, '../../..');
  const preload = join(root, 'test/fixtures/preload/no-optional-deps.js');

  it('reject with ENOSYS saying what to install, while the other backends work', () => {
    const script = `
      const { createContext } = require(${JSON.stringify(root)});
      const codeOf = (uri) => createContext(uri).then(
        (c) => c.close().then(() => ({ uri, ok: true })),
        (e) => ({ uri, code: e.code, message: e.message }));
      Promise.all(['usb:', 'serial:/dev/ttyS0', 'xml:${join(root, 'test/fixtures/xml/adxl345.xml')}', 'emu:'].map(codeOf))
        .then((r) => console.log(JSON.stringify(r)));`;
    const r = spawnSync(process.execPath, ['-r', preload, '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [usb, serial, xml, emu] = JSON.parse(r.stdout) as Array<{
      code?: string;
      message?: string;
      ok?: boolean;
    }>;
    assert.equal(usb.code, 'ENOSYS', usb.message);
    assert.match(usb.message!, /need the "usb" npm package .*hidden by the test.*npm install usb/);
    assert.equal(serial.code, 'ENOSYS', serial.message);
    assert.match(
      serial.message!,
      /need the "@serialport\/bindings-cpp" npm package .*hidden by the test/,
    );
    assert.ok(xml.ok && emu.ok, JSON.stringify({ xml, emu }));
  });
});
