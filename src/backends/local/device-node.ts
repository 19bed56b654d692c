/**
 * A local device as the buffer and event code sees it (LocalDeviceHandle), and its
 * character device: opened exclusively, with one clear EBUSY for "someone else streams".
 */
import { ERRNO, IioError } from '../../errors';
import type { DeviceInfo } from '../../model/info';
import { errnoOfNative, nativeError, type NativeAddon } from '../../native';

/** What the buffer layer needs to know about one local device. */
export interface LocalDeviceHandle {
  readonly uri: string;
  readonly device: DeviceInfo;
  /** `<sysfsRoot>/bus/iio/devices/iio:deviceN` */
  readonly sysfsDir: string;
  /** `<devDir>/iio:deviceN` */
  readonly devNode: string;
  /** Directory of buffer 0's control files (`buffer0/` on 5.11+, else `buffer/`). */
  readonly bufferDir: string;
  /** Directory of buffer 0's scan elements (`buffer0/` on 5.11+, else `scan_elements/`). */
  readonly scanElementsDir: string;
  /** Per channel number: the scan element's file stem (`in_voltage0`), '' when not a scan element. */
  readonly scanElementStems: readonly string[];
  /** Context timeout in ms (0 = forever). */
  readonly timeoutMs: number;
}

/** Where errors about this device happened: its id and context URI. */
export function whereOf(h: LocalDeviceHandle): { uri: string; device: string } {
  return { uri: h.uri, device: h.device.id };
}

/** The EBUSY of a device (or one of its buffers) that another process or buffer holds. */
export function busyError(h: LocalDeviceHandle, what: string): IioError {
  return new IioError(
    'EBUSY',
    `${what} is busy: another process (or another buffer of this one) is using ${h.devNode}; ` +
      'only one reader or writer can stream from a device at a time',
    { ...whereOf(h), file: h.devNode, op: 'open buffer' },
  );
}

/**
 * Opens `/dev/iio:deviceN` (non-blocking). The node is exclusive: EBUSY means another
 * process (or a buffer of ours) has it, and says so.
 */
export function openDevNode(
  native: NativeAddon,
  h: LocalDeviceHandle,
  flags: number,
  op: string,
): number {
  try {
    return native.open(h.devNode, flags);
  } catch (err) {
    if (errnoOfNative(err) === ERRNO.EBUSY) throw busyError(h, h.device.id);
    throw nativeError(err, { ...whereOf(h), file: h.devNode, op });
  }
}
