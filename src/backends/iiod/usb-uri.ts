/**
 * `usb:` URIs and scan filters, parsed as libiio 0.24's usb.c does (no USB code here, so
 * the unit tests and error messages work where the `usb` package cannot load).
 */
import { IioError } from '../../errors';

/** What a `usb:bus.address[.interface]` URI names. */
export interface UsbAddress {
  readonly bus: number;
  readonly address: number;
  /** The interface's index in the active configuration (libiio's `intrfc`, default 0). */
  readonly intf: number;
}

function bad(uri: string, why: string): IioError {
  return new IioError(
    'EINVAL',
    `malformed usb: URI "${uri}": ${why} (use usb: for the only IIO device, or usb:bus.address[.interface], e.g. usb:1.5 or usb:3.32.5)`,
  );
}

/** One decimal field of 0-255, as libiio's strtol + range check. */
function field(text: string, what: string, uri: string): number {
  if (!/^[0-9]+$/.test(text)) throw bad(uri, `the ${what} "${text}" is not a decimal number`);
  const v = Number(text);
  if (v > 255) throw bad(uri, `the ${what} ${v} is out of range (0-255)`);
  return v;
}

/**
 * Parses what follows `usb:`: '' (undefined: take the only IIO device a scan finds),
 * `bus.address` or `bus.address.interface`.
 */
export function parseUsbAddress(rest: string, uri = `usb:${rest}`): UsbAddress | undefined {
  const text = rest.trim();
  if (!text) return undefined;
  const parts = text.split('.');
  if (parts.length < 2 || parts.length > 3) {
    throw bad(uri, 'expected bus.address or bus.address.interface');
  }
  return {
    bus: field(parts[0], 'bus number', uri),
    address: field(parts[1], 'device address', uri),
    intf: parts.length === 3 ? field(parts[2], 'interface', uri) : 0,
  };
}

/** `usb:bus.address.interface`, as libiio writes it (the `uri` attribute, scan results). */
export function formatUsbUri(a: UsbAddress): string {
  return `usb:${a.bus}.${a.address}.${a.intf}`;
}

/** A scan filter: libiio's `usb=vid:pid` or `usb=vid:*` argument (hexadecimal). */
export interface UsbIdFilter {
  readonly vid: number;
  /** Absent: any product of the vendor. */
  readonly pid?: number;
}

/** Parses `0456:b673`, `0x0456:*`; undefined for none. EINVAL as libiio's parse_vid_pid. */
export function parseUsbFilter(args: string | undefined): UsbIdFilter | undefined {
  if (args === undefined || args === '') return undefined;
  const m = /^\s*(?:0[xX])?([0-9a-fA-F]{1,4}):(?:(\*)|(?:0[xX])?([0-9a-fA-F]{1,4}))$/.exec(args);
  if (!m) {
    throw new IioError(
      'EINVAL',
      `bad usb scan filter "${args}": use vid:pid or vid:* in hexadecimal, e.g. usb=0456:b673`,
    );
  }
  return { vid: parseInt(m[1], 16), pid: m[2] ? undefined : parseInt(m[3], 16) };
}

/** libiio's libusb_to_errno, over the `usb` package's error numbers. */
export function libusbErrno(errno: number | undefined, isTransferStatus: boolean): string {
  if (isTransferStatus) {
    // enum libusb_transfer_status
    switch (errno) {
      case 2:
        return 'ETIMEDOUT';
      case 3:
        return 'ECANCELED';
      case 4:
        return 'EPIPE';
      case 5:
        return 'ENODEV';
      default:
        return 'EIO';
    }
  }
  switch (errno) {
    case -2:
      return 'EINVAL';
    case -3:
      return 'EACCES';
    case -4:
      return 'ENODEV';
    case -5:
      return 'ENXIO';
    case -6:
      return 'EBUSY';
    case -7:
      return 'ETIMEDOUT';
    case -9:
      return 'EPIPE';
    case -10:
      return 'EINTR';
    case -11:
      return 'ENOMEM';
    case -12:
      return 'ENOSYS';
    default:
      return 'EIO';
  }
}
