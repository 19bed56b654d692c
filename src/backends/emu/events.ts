import { IioError } from '../../errors';
import { channelKindOf } from '../../names/channel-type';
import { CHANNEL_TYPES, EVENT_DIRECTIONS, EVENT_TYPES } from '../../names/tables';
import type { BackendEventStream, RawEvent } from '../../model/backend';
import type { EmuChannel, EmuDevice } from './device';

/**
 * The kernel's event code (include/uapi/linux/iio/events.h, IIO_EVENT_CODE): type in
 * bits 56-63, differential 55, direction 48-54, modifier 40-47, channel type 32-39,
 * second channel 16-31, channel 0-15.
 */
export function eventCode(fields: {
  type: string;
  direction: string;
  channelType: number;
  modifier: number;
  channel: number;
  channel2?: number;
  differential?: boolean;
}): bigint {
  const type = EVENT_TYPES.indexOf(fields.type);
  const dir = EVENT_DIRECTIONS.indexOf(fields.direction);
  if (type < 0 || dir < 0)
    throw new IioError('EINVAL', `unknown event ${fields.type} ${fields.direction}`);
  return (
    (BigInt(type) << 56n) |
    (BigInt(fields.differential ? 1 : 0) << 55n) |
    (BigInt(dir & 0x7f) << 48n) |
    (BigInt(fields.modifier & 0xff) << 40n) |
    (BigInt(fields.channelType & 0xff) << 32n) |
    (BigInt((fields.channel2 ?? 0) & 0xffff) << 16n) |
    BigInt(fields.channel & 0xffff)
  );
}

/** The event code of a threshold event on a channel, as its driver would report it. */
export function channelEventCode(channelId: string, direction: 'rising' | 'falling'): bigint {
  const kind = channelKindOf(channelId);
  const diff = /^[a-z]+(\d+)-[a-z]+(\d+)$/.exec(channelId);
  const num = /^[a-z]+(\d+)/.exec(channelId);
  return eventCode({
    type: 'thresh',
    direction,
    channelType: Math.max(0, CHANNEL_TYPES.indexOf(kind.type)),
    modifier: kind.modifierValue,
    channel: diff ? Number(diff[1]) : num && !kind.modifierValue ? Number(num[1]) : 0,
    channel2: diff ? Number(diff[2]) : 0,
    differential: !!diff,
  });
}

/** A threshold detector's settings, read live from the channel's event attributes. */
export interface ThresholdSettings {
  rising?: { enabled: () => boolean; value: () => number };
  falling?: { enabled: () => boolean; value: () => number };
}

export interface Detector {
  readonly channel: EmuChannel;
  readonly settings: ThresholdSettings;
  readonly risingCode: bigint;
  readonly fallingCode: bigint;
}

/** Events kept for a slow reader; older ones are dropped, as the kernel's event FIFO does. */
const QUEUE_LIMIT = 1024;
/** Samples examined per poll at most; a longer stall skips ahead. */
const MAX_SCAN = 200000;

/**
 * Threshold events of an emulated device: while open, the channels' signals are
 * examined sample by sample as time passes, and a crossing of an enabled threshold
 * queues the event its driver would send, stamped with that sample's timestamp.
 */
export class EmuEventStream implements BackendEventStream {
  private queue: RawEvent[] = [];
  private waiter: { resolve: (e: RawEvent) => void; reject: (e: Error) => void } | null = null;
  private timer: NodeJS.Timeout;
  private last: number;
  private closed = false;

  constructor(
    private readonly dev: EmuDevice,
    private readonly detectors: readonly Detector[],
    private readonly uri: string,
    pollMs = 20,
  ) {
    this.last = dev.nowIndex();
    this.timer = setInterval(() => this.poll(), pollMs);
  }

  private poll(): void {
    const end = this.dev.nowIndex();
    let n = Math.max(this.last, end - MAX_SCAN);
    if (n >= end) return;
    for (; n < end; n++) {
      for (const d of this.detectors) {
        const prev = d.channel.valueAt(n - 1);
        const cur = d.channel.valueAt(n);
        const r = d.settings.rising;
        if (r && r.enabled()) {
          const t = r.value();
          if (prev <= t && cur > t) this.push(d.risingCode, n);
        }
        const f = d.settings.falling;
        if (f && f.enabled()) {
          const t = f.value();
          if (prev >= t && cur < t) this.push(d.fallingCode, n);
        }
      }
    }
    this.last = end;
  }

  private push(id: bigint, n: number): void {
    const ev = { id, timestamp: this.dev.clock.timestampOf(n) };
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(ev);
      return;
    }
    this.queue.push(ev);
    if (this.queue.length > QUEUE_LIMIT) this.queue.shift();
  }

  read(): Promise<RawEvent> {
    if (this.closed) {
      return Promise.reject(
        new IioError('ECANCELED', 'the event stream is closed', {
          device: this.dev.info.id,
          uri: this.uri,
        }),
      );
    }
    const ev = this.queue.shift();
    if (ev) return Promise.resolve(ev);
    if (this.waiter) {
      return Promise.reject(
        new IioError('EBUSY', 'an event read is already pending', {
          device: this.dev.info.id,
          uri: this.uri,
        }),
      );
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const w = this.waiter;
    this.waiter = null;
    w?.reject(
      new IioError('ECANCELED', 'the event stream was closed', {
        device: this.dev.info.id,
        uri: this.uri,
      }),
    );
    if (this.dev.events === this) this.dev.events = null;
  }
}
