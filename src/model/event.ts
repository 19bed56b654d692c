import type { RawEvent } from './backend';
import { CHANNEL_TYPES, EVENT_DIRECTIONS, EVENT_TYPES, MODIFIERS } from '../names/tables';
import type { Channel } from './channel';
import type { Device } from './device';

/** A kernel event, decoded from its 64-bit code (include/uapi/linux/iio/events.h). */
export interface IioEvent {
  /** The raw 64-bit event code. */
  readonly id: bigint;
  /** Nanoseconds, in the device's current_timestamp_clock. */
  readonly timestamp: bigint;
  /** `thresh`, `mag`, `roc`, `change`, ... (`unknown(N)` for values we do not know). */
  readonly type: string;
  /** `either`, `rising`, `falling`, `none`, ... */
  readonly direction: string;
  /** Channel type (`voltage`, `accel`, `steps`). */
  readonly channelType: string;
  /** Modifier (`x`, ...) or `''`. */
  readonly modifier: string;
  /** Channel number (-1 when not indexed). */
  readonly channel: number;
  /** Second channel of a differential pair. */
  readonly channel2: number;
  readonly differential: boolean;
  /** The device channel the event names, when it can be matched. */
  readonly channelObject?: Channel;
}

const name = (table: readonly string[], v: number): string => table[v] ?? `unknown(${v})`;

/** Decodes an event code and finds the channel it refers to on `device`. */
export function decodeEvent(raw: RawEvent, device?: Device): IioEvent {
  const id = BigInt.asUintN(64, raw.id);
  const field = (shift: bigint, mask: bigint): number => Number((id >> shift) & mask);
  const s16 = (v: number): number => (v >= 0x8000 ? v - 0x10000 : v);
  const typeV = field(56n, 0xffn);
  const differential = field(55n, 1n) === 1;
  const dirV = field(48n, 0x7fn);
  const modV = field(40n, 0xffn);
  const chanTypeV = field(32n, 0xffn);
  const channel2 = s16(field(16n, 0xffffn));
  const channel = s16(field(0n, 0xffffn));
  const ev = {
    id,
    timestamp: raw.timestamp,
    type: name(EVENT_TYPES, typeV),
    direction: name(EVENT_DIRECTIONS, dirV),
    channelType: name(CHANNEL_TYPES, chanTypeV),
    modifier: modV === 0 ? '' : name(MODIFIERS, modV),
    channel,
    channel2,
    differential,
  };
  let channelObject: Channel | undefined;
  if (device) {
    let wanted = ev.channelType;
    if (differential) wanted += `${channel}-${ev.channelType}${channel2}`;
    else if (ev.modifier) wanted += `_${ev.modifier}`;
    else if (channel >= 0) wanted += `${channel}`;
    channelObject = device.channels.find((c) => !c.isOutput && c.id === wanted);
  }
  return { ...ev, channelObject };
}
