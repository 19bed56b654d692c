/**
 * What `scanContexts()` (and `iiokit info -S`) reports for this machine, as libiio 0.24's
 * local_context_scan does: one `local:` entry when /sys/bus/iio exists, described by the
 * IIO device names and the machine (device tree model or DMI board vendor).
 */
import type { ContextInfoEntry } from '../../scan';
import { readBytes, listDir } from './files';

/** libiio's fixed buffers: names and machine are cut to 128 bytes, the description to 256. */
const BUF_SIZE = 128;

/** libiio's cat_file: up to 127 bytes, last byte dropped; undefined when unreadable or empty. */
async function catFile(path: string): Promise<string | undefined> {
  try {
    const bytes = (await readBytes(path)).subarray(0, BUF_SIZE - 1);
    if (!bytes.length) return undefined;
    const text = bytes.subarray(0, bytes.length - 1);
    const nul = text.indexOf(0);
    return text.toString('utf8', 0, nul >= 0 ? nul : text.length);
  } catch {
    return undefined;
  }
}

/** Lists the local context, if this machine has IIO; `sysfsRoot` defaults to /sys. */
export async function scanLocalContexts(sysfsRoot = '/sys'): Promise<ContextInfoEntry[]> {
  let entries;
  try {
    entries = await listDir(`${sysfsRoot}/bus/iio`);
  } catch {
    return [];
  }
  if (!entries.some((e) => e.kind === 'dir')) return [];
  let names = '';
  try {
    for (const e of await listDir(`${sysfsRoot}/bus/iio/devices`)) {
      if (e.kind !== 'dir' || !e.name.includes('iio:device')) continue;
      const n = await catFile(`${sysfsRoot}/bus/iio/devices/${e.name}/name`);
      if (n === undefined) continue;
      // snprintf(&names[len], BUF_SIZE - len - 1, "%s, ", n)
      const room = BUF_SIZE - names.length - 2;
      if (room > 0) names += `${n}, `.slice(0, room);
    }
  } catch {
    return [];
  }
  const machine =
    (await catFile(`${sysfsRoot}/firmware/devicetree/base/model`)) ??
    (await catFile(`${sysfsRoot}/class/dmi/id/board_vendor`));
  let description = '(Local IIO devices)';
  if (machine !== undefined) {
    description = names
      ? `(${names.slice(0, -2)} on ${machine})`
      : `(Local IIO devices on ${machine})`;
    description = description.slice(0, 2 * BUF_SIZE - 1);
  }
  return [{ uri: 'local:', description }];
}
