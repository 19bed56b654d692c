/**
 * Device identity in flows. `iio:deviceN` follows probe order, which changes across
 * reboots, overlays and module loads; a flow names a device by what the user picked in
 * the dialog — its label (unique per board by design), else its name — and keeps the id
 * it had only as a hint for messages. The name is resolved each time the context opens
 * (deploy, reconnect); a name that matches several devices, or none, is an error that
 * says which devices there are.
 */
import { IioError } from '../errors';
import type { Context } from '../model/context';
import type { Device } from '../model/device';

/** `iio:device3`, `trigger0`, `iio_sysfs_trigger`...: an id as the kernel numbers it. */
const ID = /^(iio:device\d+|trigger\d+)$/;

/** What a flow stores for a device. */
export interface DeviceRef {
  /** Label, name or (older flows, or picked on purpose) id. */
  readonly ref: string;
  /** The id the device had when the flow was saved (only used to explain a missing device). */
  readonly hint?: string;
}

function describe(d: Device): string {
  const names = [d.label, d.name].filter(Boolean);
  return names.length ? `${d.id} (${names.join(', ')})` : d.id;
}

/** The device a flow names, or an IioError (ENODEV gone, ENOTUNIQ ambiguous) that says why. */
export function resolveDevice(ctx: Context, r: DeviceRef): Device {
  const { ref, hint } = r;
  const where = { device: ref, uri: ctx.uri };
  if (!ref) throw new IioError('EINVAL', 'no device selected', { uri: ctx.uri });
  const byId = ctx.devices.find((d) => d.id === ref);
  if (byId && ID.test(ref)) return byId;
  const byLabel = ctx.devices.filter((d) => d.label === ref);
  const matches = byLabel.length ? byLabel : ctx.devices.filter((d) => d.name === ref);
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw new IioError(
      'ENOTUNIQ',
      `${matches.length} devices are called "${ref}": ${matches.map(describe).join(', ')}; give them distinct labels (device tree "label") or pick one by id`,
      where,
    );
  }
  // Ids that do not look like the kernel's (XML contexts, emulators) still name a device.
  if (byId) return byId;
  const was = hint && hint !== ref ? ` (it was ${hint} when the flow was saved)` : '';
  const list = ctx.devices.map(describe).join(', ') || 'none';
  throw new IioError('ENODEV', `no device "${ref}"${was}; the context has: ${list}`, where);
}

/**
 * The name topics use for a device: its driver name when no other device has it, else its
 * label, else its id — the same on every node and across reboots.
 */
export function topicName(ctx: Context, d: Device): string {
  if (d.name && ctx.devices.filter((x) => x.name === d.name).length === 1) return d.name;
  if (d.label && ctx.devices.filter((x) => x.label === d.label).length === 1) return d.label;
  return d.id;
}

/**
 * What the editor saves for a device: its label, else its name, if that names this device
 * and no other (resolveDevice gives it back); else its id.
 */
export function stableRef(ctx: Context, d: Device): string {
  for (const ref of [d.label, d.name]) {
    if (!ref) continue;
    try {
      if (resolveDevice(ctx, { ref }) === d) return ref;
    } catch {
      // ambiguous: try the next
    }
  }
  return d.id;
}
