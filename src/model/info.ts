import type { DataFormat } from '../format/scan-type';

/**
 * Plain descriptions of a context, filled by a backend (sysfs scan, XML, iiod, emu)
 * and wrapped by the model classes. Nothing here does I/O.
 */

/** One attribute. */
export interface AttrInfo {
  /** The name libiio shows (`raw`, `sampling_frequency`). */
  readonly name: string;
  /** The file it lives in (sysfs name), when known; channel attributes always have one locally. */
  readonly filename?: string;
  /** A value carried by the description itself (XML written with values, emu). */
  value?: string;
}

/** A buffer of a multi-buffer device (libiio 1.0 XML dialect, `bufferN/` in sysfs). */
export interface BufferInfo {
  readonly index: number;
  readonly direction?: 'in' | 'out';
  readonly attrs: AttrInfo[];
  /** Its scan elements, where the description lists them (libiio 1.0 XML's `<channel>`). */
  readonly channels?: ReadonlyArray<{ readonly id: string; readonly isOutput: boolean }>;
}

export interface ChannelInfo {
  /** `voltage0`, `accel_x`, `voltage1-voltage2`, `timestamp`. */
  readonly id: string;
  /** The extended name (`V1` of `out_voltage0_V1_raw`), if any. */
  readonly name?: string;
  readonly label?: string;
  readonly isOutput: boolean;
  /** Scan index, -1 for channels that are not scan elements. */
  readonly index: number;
  readonly isScanElement: boolean;
  readonly format?: DataFormat;
  /** The `scale` carried by an XML `<scan-element>`, if any. */
  readonly scanScale?: number;
  readonly attrs: AttrInfo[];
  readonly eventAttrs?: AttrInfo[];
}

export interface DeviceInfo {
  /** `iio:device0`, `trigger0`, `hwmon0`. */
  readonly id: string;
  readonly name?: string;
  readonly label?: string;
  readonly channels: ChannelInfo[];
  readonly attrs: AttrInfo[];
  readonly bufferAttrs: AttrInfo[];
  readonly debugAttrs: AttrInfo[];
  readonly eventAttrs?: AttrInfo[];
  readonly buffers?: BufferInfo[];
}

export interface ContextVersion {
  readonly major: number;
  readonly minor: number;
  /** Up to 7 characters, as libiio 0.24 prints it (`v0.24`). */
  readonly git: string;
  /** The whole git tag where the description gives more than 7 characters (libiio 1.0 prints it all). */
  readonly tag?: string;
}

export interface ContextInfo {
  /** The backend's name as libiio prints it: `local`, `xml`, `network`, `usb`, `serial`, `emu`. */
  readonly name: string;
  readonly description: string;
  /** The backend's version (for remote contexts: the server's). */
  readonly version: ContextVersion;
  /** Context attributes, in order. */
  readonly attrs: Array<readonly [string, string]>;
  readonly devices: DeviceInfo[];
}
