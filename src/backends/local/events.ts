/**
 * Kernel events of `local:` devices: the event fd (IIO_GET_EVENT_FD_IOCTL) read by a
 * native stream, 16-byte records decoded into RawEvents.
 */
import { constants as fsc } from 'node:fs';
import { IioError } from '../../errors';
import type { BackendEventStream, RawEvent } from '../../model/backend';
import { loadNative, nativeError, type NativeAddon } from '../../native';
import { NativeStream } from '../../native/stream';
import { tracer } from '../../util/trace';
import { openDevNode, whereOf, type LocalDeviceHandle } from './device-node';

const trace = tracer('local');

/** Event records per read (the kernel queues at most 16). */
const EVENTS_PER_READ = 16;
const EVENT_BYTES = 16;

/** Kernel events of a local device, read from its event fd by a native stream. */
class LocalEventStream implements BackendEventStream {
  private pending: RawEvent[] = [];
  private closed = false;

  constructor(
    private readonly native: NativeAddon,
    private readonly stream: NativeStream,
    private readonly fd: number,
  ) {}

  async read(): Promise<RawEvent> {
    while (!this.pending.length) {
      const block = await this.stream.read();
      const d = block.data;
      for (let off = 0; off + EVENT_BYTES <= d.length; off += EVENT_BYTES)
        this.pending.push({ id: d.readBigUInt64LE(off), timestamp: d.readBigInt64LE(off + 8) });
      block.release();
    }
    return this.pending.shift()!;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stream.close();
    try {
      this.native.close(this.fd);
    } catch {
      // already gone
    }
  }
}

/** IIO_GET_EVENT_FD_IOCTL on the /dev fd, its failures said in words. */
function getEventFd(native: NativeAddon, h: LocalDeviceHandle, devFd: number): number {
  const where = { ...whereOf(h), op: 'open events' };
  try {
    return native.getEventFd(devFd);
  } catch (err) {
    const e = nativeError(err, where);
    if (e.code === 'ENODEV')
      throw new IioError('ENODEV', 'device has no events (its driver registers none)', where);
    if (e.code === 'EBUSY')
      throw new IioError(
        'EBUSY',
        'the events of this device are already being read (one reader at a time)',
        where,
      );
    if (e.code === 'ENOTTY' || e.code === 'EINVAL')
      throw new IioError(
        e.code,
        `device has no events (${h.devNode} does not support IIO_GET_EVENT_FD_IOCTL)`,
        where,
      );
    throw e;
  }
}

/** Opens the device's event fd (IIO_GET_EVENT_FD_IOCTL) and streams its records. */
export async function openLocalEvents(h: LocalDeviceHandle): Promise<BackendEventStream> {
  const native = loadNative();
  const devFd = openDevNode(native, h, fsc.O_RDONLY | fsc.O_NONBLOCK, 'open events');
  let evFd: number;
  try {
    evFd = getEventFd(native, h, devFd);
  } finally {
    // The event fd holds its own reference to the device.
    native.close(devFd);
  }
  try {
    const stream = new NativeStream(
      native,
      {
        fd: evFd,
        output: false,
        blockBytes: EVENTS_PER_READ * EVENT_BYTES,
        unitBytes: EVENT_BYTES,
        blocks: 4,
        timeoutMs: 0,
        partial: true,
      },
      whereOf(h),
    );
    stream.start();
    trace(`${h.device.id}: reading events`);
    return new LocalEventStream(native, stream, evFd);
  } catch (err) {
    native.close(evFd);
    throw err;
  }
}
