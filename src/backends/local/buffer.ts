/**
 * Buffers and events of `local:` devices: the seam between the sysfs backend (which
 * knows the files) and the native module (which streams). Replaced by the native
 * streaming work; until then it answers ENOSYS.
 */
import { IioError } from '../../errors';
import type { DeviceInfo } from '../../model/info';
import type { BackendBuffer, BackendEventStream, BufferOpenOptions } from '../backend';

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

export async function openLocalBuffer(
  h: LocalDeviceHandle,
  _options: BufferOpenOptions,
): Promise<BackendBuffer> {
  throw new IioError('ENOSYS', 'buffers of local: devices need the native module, not built yet', {
    uri: h.uri,
    device: h.device.id,
  });
}

export async function openLocalEvents(h: LocalDeviceHandle): Promise<BackendEventStream> {
  throw new IioError('ENOSYS', 'events of local: devices need the native module, not built yet', {
    uri: h.uri,
    device: h.device.id,
  });
}
