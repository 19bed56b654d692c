import type { AttrKind, AttrRef, Backend } from './backend';
import { IioError } from '../errors';
import type { AttrInfo, ChannelInfo, DeviceInfo } from './info';

/** A value accepted by attribute writes; numbers and booleans are written as libiio does. */
export type AttrValue = string | number | bigint | boolean;

/** A parsed `_available` attribute: a `[min step max]` range or a list of values. */
export type AvailableValues =
  | { readonly kind: 'range'; readonly min: number; readonly step: number; readonly max: number }
  | { readonly kind: 'list'; readonly values: readonly string[] };

/** Formats a value the way libiio's typed writers do (`%lld`, `%f`-like doubles, 0/1). */
export function formatAttrValue(value: AttrValue): string {
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new IioError('EINVAL', `cannot write ${value} to an attribute`);
    return value.toString();
  }
  return value;
}

/**
 * Whether an attribute name is an `_available` list (`scale_available`, the values
 * `scale` accepts). The buffer's `data_available` only shares the suffix: it counts the
 * scans waiting in the buffer.
 */
export function isAvailableList(name: string): boolean {
  return name.endsWith('_available') && name !== 'data_available';
}

/**
 * Parses an `_available` value: `[min step max]` (the kernel's IIO_AVAIL_RANGE form) or
 * a space-separated list.
 */
export function parseAvailable(text: string): AvailableValues {
  const t = text.trim();
  const range = /^\[\s*(\S+)\s+(\S+)\s+(\S+)\s*\]$/.exec(t);
  if (range) {
    const [min, step, max] = range.slice(1, 4).map(Number);
    if ([min, step, max].every(Number.isFinite)) return { kind: 'range', min, step, max };
  }
  return { kind: 'list', values: t.length ? t.split(/\s+/) : [] };
}

/** One attribute of a context, device, channel, buffer or debugfs. */
export class Attr {
  constructor(
    private readonly backend: Backend,
    readonly kind: AttrKind,
    private readonly info: AttrInfo,
    private readonly device?: DeviceInfo,
    private readonly channel?: ChannelInfo,
  ) {}

  /** The name libiio shows (`raw`, `sampling_frequency`). */
  get name(): string {
    return this.info.name;
  }

  /** The file it lives in, when known (sysfs name). */
  get filename(): string | undefined {
    return this.info.filename;
  }

  /** A value the description carries (XML with values), if any. */
  get staticValue(): string | undefined {
    return this.info.value;
  }

  /** @internal the reference a backend needs. */
  get ref(): AttrRef {
    return { kind: this.kind, device: this.device, channel: this.channel, attr: this.info };
  }

  /** Reads the value, trailing newline removed. */
  read(): Promise<string> {
    return this.backend.readAttr(this.ref);
  }

  /** Reads and parses a number; EINVAL if the value is not numeric. */
  async readNumber(): Promise<number> {
    const text = await this.read();
    const n = Number(text.trim());
    if (text.trim() === '' || Number.isNaN(n)) {
      throw new IioError('EINVAL', `value "${text}" is not a number`, {
        device: this.device?.id,
        channel: this.channel?.id,
        attr: this.name,
      });
    }
    return n;
  }

  /** Writes a value; resolves with the number of bytes the backend accepted. */
  write(value: AttrValue): Promise<number> {
    return this.backend.writeAttr(this.ref, formatAttrValue(value));
  }

  /**
   * Reads an `_available` attribute and parses it: `[min step max]` (a range) or a
   * space-separated list of values.
   */
  async readAvailable(): Promise<AvailableValues> {
    return parseAvailable(await this.read());
  }
}

/**
 * The `_available` companion of an attribute in a list: `scale` → `scale_available`
 * (a name that already ends in `_available` is taken as is).
 */
export function findAvailableAttr(
  attrs: readonly Attr[],
  name: string,
  where: { device?: string; channel?: string; kind: string; uri?: string },
): Attr {
  const wanted = isAvailableList(name) ? name : `${name}_available`;
  return findAttr(attrs, wanted, where);
}

/** Finds an attribute by name in a list; the error names what was looked for. */
export function findAttr(
  attrs: readonly Attr[],
  name: string,
  where: { device?: string; channel?: string; kind: string; uri?: string },
): Attr {
  const a = attrs.find((x) => x.name === name) ?? attrs.find((x) => x.filename === name);
  if (!a) {
    throw new IioError('ENOENT', `no ${where.kind} attribute "${name}"`, {
      device: where.device,
      channel: where.channel,
      attr: name,
      uri: where.uri,
    });
  }
  return a;
}
