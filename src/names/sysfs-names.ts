/**
 * libiio 0.24's rules for turning the files of a sysfs device directory into channels
 * and attributes (local.c: is_channel, get_channel_id, get_short_attr_name,
 * set_channel_name, is_global_attr, handle_scan_elements, create_device), and libiio 1.0's
 * for the event attributes of `events/` (add_event; 0.24 has none), as a pure
 * function: file names in, a description out. No I/O here, so every rule is unit-tested
 * on plain lists; the local backend reads the values (index, type, name) afterwards.
 *
 * One deliberate difference (docs/naming.md): modifiers come from the kernel's full table
 * (src/names/tables.ts) and the longest one wins, where libiio 0.24 knows fewer modifiers
 * and takes the first in enum order (so it reads `in_rot_from_north_magnetic_tilt_comp_raw`
 * as channel `rot_from_north_magnetic` with attribute `tilt_comp_raw`).
 */
import { HWMON_TYPES, MODIFIERS } from './tables';

/** A channel attribute: the name libiio shows and the file (relative to the device directory). */
export interface SysfsAttrName {
  readonly name: string;
  readonly filename: string;
}

/** One channel as the naming rules see it. */
export interface SysfsChannelNames {
  /** `voltage0`, `accel_x`, `voltage1-voltage2`, `timestamp`, `sampling`. */
  readonly id: string;
  readonly isOutput: boolean;
  /** The extended name (`V1` of `out_voltage0_V1_raw`), when libiio's prefix rule finds one. */
  readonly name?: string;
  /** True when a scan_elements file belongs to the channel. */
  readonly isScanElement: boolean;
  /** Attributes, sorted by name (strcmp) as libiio sorts them. */
  readonly attrs: SysfsAttrName[];
  /** The scan element's files (relative to the device directory), where present. */
  readonly scanFiles: { en?: string; index?: string; type?: string };
  /** Event attributes (files of `events/`, file names without the folder), sorted by name. */
  readonly eventAttrs: SysfsAttrName[];
}

/** What a device directory holds, named. */
export interface SysfsDeviceNames {
  /** Channels in creation order (libiio then reorders them by scan index). */
  readonly channels: SysfsChannelNames[];
  /** Device attributes, sorted by name (strcmp). */
  readonly attrs: string[];
  /** A `name` file is present (its value is the device name). */
  readonly hasName: boolean;
  /** A `label` file is present. */
  readonly hasLabel: boolean;
  /** Device event attributes: `events/` files of no channel, by their file name, sorted. */
  readonly eventAttrs: string[];
  /** Files the rules could not place (libiio fails the whole context on them; we skip them). */
  readonly ignored: string[];
}

export interface SysfsNamingInput {
  /** Regular files of the device directory, in directory (readdir) order. */
  readonly files: readonly string[];
  /** Regular files of its scan-elements directory, in directory order. */
  readonly scanFiles?: readonly string[];
  /** Prefix of scan element paths relative to the device directory (`scan_elements/`). */
  readonly scanDir?: string;
  /** hwmon devices (`/sys/class/hwmon/hwmonN`) follow hwmon's naming. */
  readonly hwmon?: boolean;
  /** Regular files of its `events/` directory, in directory order. */
  readonly eventFiles?: readonly string[];
}

/** Files that are never attributes (libiio's device_attrs_blacklist). */
const DEVICE_FILES_IGNORED = new Set(['dev', 'uevent']);

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** strcmp order: by UTF-16 code unit, which is byte order for the ASCII names of sysfs. */
export function strcmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The modifier that starts `s` and is followed by `_` or the end; its length, 0 if none.
 * The longest one wins (see the file comment).
 */
export function modifierLengthAt(s: string): number {
  let best = 0;
  for (let i = 1; i < MODIFIERS.length; i++) {
    const m = MODIFIERS[i];
    if (m.length <= best || !s.startsWith(m)) continue;
    const next = s[m.length];
    if (next === undefined || next === '_') best = m.length;
  }
  return best;
}

/** libiio's iio_channel_find_type over hwmon's prefixes: prefix + end, `_` or digit. */
function isHwmonChannelFile(name: string): boolean {
  return HWMON_TYPES.some((t) => {
    if (!name.startsWith(t)) return false;
    const next = name[t.length];
    return next === undefined || next === '_' || isDigit(next);
  });
}

/**
 * libiio's is_channel: is this device file a channel attribute? Strict: the part before
 * the second `_` ends in a digit (`in_voltage0_raw`) or a modifier follows it
 * (`in_accel_x_raw`); any `in_timestamp_` file. Not strict: any `in_X_Y`/`out_X_Y`.
 */
export function isChannelFile(name: string, strict: boolean, hwmon = false): boolean {
  if (hwmon) return isHwmonChannelFile(name);
  if (name.startsWith('in_timestamp_')) return true;
  let us = -1;
  if (name.startsWith('in_')) us = name.indexOf('_', 3);
  else if (name.startsWith('out_')) us = name.indexOf('_', 4);
  if (us < 0) return false;
  if (!strict) return true;
  if (isDigit(name[us - 1])) return true;
  return modifierLengthAt(name.slice(us + 1)) > 0;
}

/**
 * libiio's get_channel_id: `in_voltage0_raw` → `voltage0`, `in_accel_x_raw` → `accel_x`,
 * `in_voltage1-voltage2_raw` → `voltage1-voltage2`; hwmon: `temp1_input` → `temp1`,
 * `pwm1` → `pwm1`. Undefined when the name has no `_` after the type.
 */
export function channelIdOf(name: string, hwmon = false): string | undefined {
  const first = name.indexOf('_');
  if (hwmon) return first < 0 ? name : name.slice(0, first);
  if (first < 0) return undefined;
  const rest = name.slice(first + 1);
  let end = rest.indexOf('_');
  if (end < 0) return undefined;
  const mod = modifierLengthAt(rest.slice(end + 1));
  if (mod) end += mod + 1;
  return rest.slice(0, end);
}

/**
 * libiio's get_short_attr_name: the file name without direction, channel id, modifier
 * and (once known) the channel's extended name: `in_voltage0_raw` → `raw`,
 * `in_voltage_V1_scale` (extended name V1) → `scale`.
 */
export function shortAttrName(name: string, extendedName?: string, hwmon = false): string {
  const first = name.indexOf('_');
  if (hwmon) return first < 0 ? name : name.slice(first + 1);
  const second = name.indexOf('_', first + 1);
  let rest = name.slice(second + 1);
  const mod = modifierLengthAt(rest);
  if (mod) rest = rest.slice(mod + 1);
  if (
    extendedName !== undefined &&
    rest.startsWith(extendedName) &&
    rest[extendedName.length] === '_'
  )
    rest = rest.slice(extendedName.length + 1);
  return rest;
}

/** A channel while the rules run (names are rewritten by set_channel_name). */
interface WorkChannel {
  id: string;
  isOutput: boolean;
  name?: string;
  isScanElement: boolean;
  attrs: Array<{ name: string; filename: string }>;
  /** libiio's "protected" attributes: the scan element files. */
  scan: Array<{ name: string; filename: string }>;
}

/**
 * libiio's set_channel_name: when a channel has at least two files, the longest
 * `_`-terminated prefix common to all of their short names is its extended name, and is
 * cut from every one (`V1_raw`, `V1_scale` → name `V1`, attributes `raw`, `scale`).
 * With a single file nothing is cut: `out_voltage0_V1_raw` alone stays attribute `V1_raw`.
 */
export function extendedNameOf(shortNames: readonly string[]): string | undefined {
  if (shortNames.length < 2) return undefined;
  const first = shortNames[0];
  let prefixLen = 0;
  for (let us = first.indexOf('_'); us >= 0; us = first.indexOf('_', us + 1)) {
    const p = first.slice(0, us + 1);
    if (!shortNames.every((n) => n.startsWith(p))) break;
    prefixLen = us + 1;
  }
  return prefixLen ? first.slice(0, prefixLen - 1) : undefined;
}

/**
 * libiio's is_global_attr: 0 when a device file does not belong to the channel, 1 when
 * it is shared by the channel's type (`in_voltage_scale`, `in_voltage-voltage_scale`,
 * `in_accel_scale`), 2 when it is the channel's own through its extended name
 * (`in_voltage_V1_scale` for channel voltage0 named V1).
 */
export function sharedAttrLevel(
  ch: { id: string; isOutput: boolean; name?: string },
  file: string,
): 0 | 1 | 2 {
  let attr: string;
  if (!ch.isOutput && file.startsWith('in_')) attr = file.slice(3);
  else if (ch.isOutput && file.startsWith('out_')) attr = file.slice(4);
  else return 0;
  const us = attr.indexOf('_');
  if (us < 0) return 0;
  const id = ch.id;
  // Differential: `voltage-voltage_scale` for channel `voltage1-voltage2`.
  const dash = attr.indexOf('-');
  if (dash > 0 && dash < us) {
    const len1 = dash;
    const len2 = us - dash - 1;
    const idDash = id.indexOf('-');
    if (
      idDash >= 0 &&
      id.length - idDash - 1 > len2 &&
      idDash > len1 &&
      isDigit(id[len1]) &&
      id.slice(0, len1) === attr.slice(0, len1) &&
      isDigit(id[idDash + 1 + len2]) &&
      id.slice(idDash + 1, idDash + 1 + len2) === attr.slice(dash + 1, dash + 1 + len2)
    )
      return 1;
  }
  if (id.slice(0, us) !== attr.slice(0, us)) return 0;
  if (isDigit(id[us])) {
    const n = ch.name;
    if (n !== undefined && attr.startsWith(n, us + 1) && attr[us + 1 + n.length] === '_') return 2;
    return 1;
  }
  if (id[us] !== '_') return 0;
  return modifierLengthAt(id.slice(us + 1)) > 0 ? 1 : 0;
}

/**
 * libiio 1.0's add_event (libiio 0.24 has no event attributes): a file of `events/` is a
 * channel's when it starts with `in_`/`out_` and the first occurrence of some channel's id
 * is right after that prefix (at offset 3 or 4, whatever the direction, as its strstr
 * test does); the channel is then the one get_channel_id names, of the file's direction,
 * and the attribute's name is get_short_attr_name's without an extended name (libiio looks
 * events up before it names channels). Anything else is a device event attribute, named by
 * its file. Only the channels known at that point count: not the index-less ones made of
 * leftover device files later (iio_dummy's `in_steps_change_en` is the device's).
 */
export function placeEventFile(
  file: string,
  channels: ReadonlyArray<{ readonly id: string; readonly isOutput: boolean }>,
): { kind: 'device' } | { kind: 'channel'; channel: number; name: string } | { kind: 'ignored' } {
  const directed = file.startsWith('in_') || file.startsWith('out_');
  const ofChannel =
    directed &&
    channels.some((c) => {
      const at = file.indexOf(c.id);
      return at === 3 || at === 4;
    });
  if (!ofChannel) return { kind: 'device' };
  const id = channelIdOf(file);
  const isOutput = file.startsWith('out_');
  const channel = channels.findIndex((c) => c.id === id && c.isOutput === isOutput);
  // libiio 1.0 fails the whole context here (ENODEV; a crash when no second `_` follows).
  if (id === undefined || channel < 0) return { kind: 'ignored' };
  return { kind: 'channel', channel, name: shortAttrName(file) };
}

/**
 * Names the contents of one device directory as libiio 0.24's create_device does:
 * channel files, scan elements, extended names, shared attributes moved into channels,
 * leftover `in_*`/`out_*` files made into index-less channels.
 */
export function nameSysfsDevice(input: SysfsNamingInput): SysfsDeviceNames {
  const hwmon = !!input.hwmon;
  const scanDir = input.scanDir ?? 'scan_elements/';
  const channels: WorkChannel[] = [];
  const devAttrs: string[] = [];
  const ignored: string[] = [];
  let hasName = false;
  let hasLabel = false;

  const addChannel = (file: string, path: string, isScan: boolean): void => {
    const id = channelIdOf(file, hwmon);
    // libiio 0.24 crashes or fails the context on these; we leave the file out.
    if (id === undefined || (!hwmon && !file.startsWith('in_') && !file.startsWith('out_'))) {
      ignored.push(path);
      return;
    }
    const isOutput = !hwmon && file.startsWith('out_');
    let ch = channels.find((c) => c.id === id && c.isOutput === isOutput);
    if (!ch) {
      ch = { id, isOutput, isScanElement: false, attrs: [], scan: [] };
      channels.push(ch);
    }
    const entry = { name: shortAttrName(file, ch.name, hwmon), filename: path };
    if (isScan) {
      ch.scan.push(entry);
      ch.isScanElement = true;
    } else ch.attrs.push(entry);
  };

  for (const f of input.files) {
    if (!isChannelFile(f, true, hwmon)) {
      if (DEVICE_FILES_IGNORED.has(f)) continue;
      if (f === 'name') hasName = true;
      else if (f === 'label') hasLabel = true;
      else devAttrs.push(f);
      continue;
    }
    addChannel(f, f, false);
  }
  for (const f of input.scanFiles ?? []) addChannel(f, scanDir + f, true);

  // Event attributes are placed before channels get their extended names (libiio 1.0).
  const channelEvents = new Map<WorkChannel, SysfsAttrName[]>();
  const deviceEvents: string[] = [];
  if (!hwmon) {
    for (const f of input.eventFiles ?? []) {
      const place = placeEventFile(f, channels);
      if (place.kind === 'device') deviceEvents.push(f);
      else if (place.kind === 'ignored') ignored.push(`events/${f}`);
      else {
        const ch = channels[place.channel];
        const list = channelEvents.get(ch) ?? [];
        list.push({ name: place.name, filename: f });
        channelEvents.set(ch, list);
      }
    }
  }

  // set_channel_name runs only on the channels known so far (not on those made below).
  for (const ch of channels) {
    const all = [...ch.attrs, ...ch.scan];
    const name = extendedNameOf(all.map((a) => a.name));
    if (name === undefined) continue;
    ch.name = name;
    for (const a of all) a.name = a.name.slice(name.length + 1);
  }

  // Shared attributes move into every channel they belong to; private (level 2) first.
  const leftover: string[] = [];
  for (const f of devAttrs) {
    let matched = channels.filter((c) => sharedAttrLevel(c, f) === 2);
    if (!matched.length) matched = channels.filter((c) => sharedAttrLevel(c, f) === 1);
    for (const c of matched) c.attrs.push({ name: shortAttrName(f, c.name, hwmon), filename: f });
    if (!matched.length) leftover.push(f);
  }
  // What is left and looks like `in_X_Y` makes an index-less channel (`in_sampling_frequency`
  // → channel `sampling`, attribute `frequency`, as libiio does).
  const attrs: string[] = [];
  for (const f of leftover) {
    if (isChannelFile(f, false, hwmon)) addChannel(f, f, false);
    else attrs.push(f);
  }

  const byName = (a: { name: string }, b: { name: string }): number => strcmp(a.name, b.name);
  return {
    channels: channels.map((c) => {
      const scanFiles: { en?: string; index?: string; type?: string } = {};
      for (const s of c.scan) {
        if (s.name === 'en' || s.name === 'index' || s.name === 'type')
          scanFiles[s.name] = s.filename;
        else ignored.push(s.filename);
      }
      return {
        id: c.id,
        isOutput: c.isOutput,
        ...(c.name !== undefined ? { name: c.name } : {}),
        isScanElement: c.isScanElement,
        attrs: [...c.attrs].sort(byName),
        scanFiles,
        eventAttrs: [...(channelEvents.get(c) ?? [])].sort(byName),
      };
    }),
    attrs: attrs.sort(strcmp),
    eventAttrs: deviceEvents.sort(strcmp),
    hasName,
    hasLabel,
    ignored,
  };
}
