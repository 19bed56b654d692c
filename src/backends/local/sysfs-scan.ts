/**
 * Builds the description of the local context from sysfs, as libiio 0.24's
 * local_create_context does: IIO devices and triggers, their channels (named by
 * src/names/sysfs-names.ts), device, buffer and debug attributes, context attributes.
 */
import os from 'node:os';
import { readFile } from 'node:fs/promises';
import { IioError } from '../../errors';
import { parseScanType, type DataFormat } from '../../format/scan-type';
import type { AttrInfo, BufferInfo, ChannelInfo, ContextInfo, DeviceInfo } from '../../model/info';
import { reorderChannels } from '../../model/reorder';
import { nameSysfsDevice, strcmp, type SysfsChannelNames } from '../../names/sysfs-names';
import { strtoll } from '../../util/cnumber';
import { LIBRARY_VERSION } from '../../version';
import { attrText, isDir, listDir, readBytes, type ReaddirOrder } from './files';

/** What uname(2) says; it makes the context description and `local,kernel`. */
export interface UnameInfo {
  readonly sysname: string;
  readonly nodename: string;
  readonly release: string;
  readonly version: string;
  readonly machine: string;
}

export interface SysfsScanOptions {
  /** Where sysfs is mounted (`/sys`). */
  readonly sysfsRoot: string;
  /** Also list `/sys/class/hwmon` devices (libiio built WITH_HWMON). */
  readonly hwmon: boolean;
  /** Directory order of a copied sysfs tree (see ReaddirOrder). */
  readonly readdirOrder?: ReaddirOrder;
  readonly uname: UnameInfo;
  /** libiio's /etc/libiio.ini: `[Context Attributes]` become context attributes. */
  readonly iniFile?: string;
}

/** Where the files of one device are. */
export interface LocalDevicePaths {
  readonly id: string;
  /** The device directory (`<root>/bus/iio/devices/iio:device0`, or `<root>/class/hwmon/hwmon0`). */
  readonly dir: string;
  /** `<root>/kernel/debug/iio/iio:device0` */
  readonly debugDir: string;
  readonly hwmon: boolean;
  /** Buffer 0's control files: `buffer/` (what libiio 0.24 reads), else `buffer0/`. */
  readonly bufferDir?: string;
  /** Buffer 0 as the streaming layer wants it: `buffer0/` on 5.11+, else `buffer/`. */
  readonly streamBufferDir?: string;
  /** Buffer 0's scan elements for streaming: `buffer0/` on 5.11+, else `scan_elements/`. */
  readonly streamScanDir?: string;
  /** Per channel number: the scan element's file stem (`in_voltage0`), '' for others. */
  readonly scanStems: readonly string[];
}

export interface LocalScan {
  readonly info: ContextInfo;
  readonly paths: ReadonlyMap<string, LocalDevicePaths>;
}

/** libiio's list of IIO devices: `iio:deviceN` and `triggerN` only (not iio_sysfs_trigger, iio_evgen). */
export const IIO_DEVICE_DIR = /^(iio:device|trigger)\d+$/;

/** The buffer files libiio manages itself and does not list (length, enable, watermark). */
const BUFFER_RESERVED = new Set(['length', 'enable', 'watermark']);
const SCAN_ELEMENT_FILE = /_(en|index|type)$/;

/** libiio's local_get_description: `sysname nodename release version machine`. */
export function describeUname(u: UnameInfo): string {
  return `${u.sysname} ${u.nodename} ${u.release} ${u.version} ${u.machine}`;
}

/** uname(2) of this machine, through Node's os module. */
export function hostUname(): UnameInfo {
  return {
    sysname: os.type(),
    nodename: os.hostname(),
    release: os.release(),
    version: os.version(),
    // os.machine() is Node 18.9+; before it, map the build's architecture to uname's name.
    machine:
      typeof os.machine === 'function'
        ? os.machine()
        : ((
            { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ia32: 'i686' } as Record<
              string,
              string
            >
          )[process.arch] ?? process.arch),
  };
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return attrText(await readBytes(path));
  } catch {
    return undefined;
  }
}

/**
 * A scan element's index as libiio's local backend reads it: strtoll(s, &end, 0), and
 * no index (undefined) when nothing parses, it is negative or it overflows.
 */
function parseScanIndex(s: string): number | undefined {
  const r = strtoll(s, 0);
  return r.end === 0 || r.erange || r.value < 0n ? undefined : Number(r.value);
}

/** strtof on the leading part of a string, as a float; undefined when nothing parses. */
function parseCFloat(s: string): number | undefined {
  const v = parseFloat(s);
  return Number.isNaN(v) ? undefined : Math.fround(v);
}

/** The stem of a scan element from one of its files: `scan_elements/in_voltage0_en` → `in_voltage0`. */
function scanStem(c: SysfsChannelNames): string {
  const f = c.scanFiles.en ?? c.scanFiles.index ?? c.scanFiles.type;
  if (!f) return '';
  const base = f.slice(f.lastIndexOf('/') + 1);
  return base.replace(SCAN_ELEMENT_FILE, '');
}

interface ScannedChannel {
  readonly info: ChannelInfo;
  readonly stem: string;
}

async function scanChannel(
  dir: string,
  c: SysfsChannelNames,
  deviceHasScale: boolean,
): Promise<ScannedChannel> {
  let index = -1;
  let format: DataFormat | undefined;
  let isScanElement = c.isScanElement;
  if (isScanElement) {
    const idxText = c.scanFiles.index ? await readText(`${dir}/${c.scanFiles.index}`) : undefined;
    const typeText = c.scanFiles.type ? await readText(`${dir}/${c.scanFiles.type}`) : undefined;
    const idx = idxText === undefined ? undefined : parseScanIndex(idxText);
    try {
      format = typeText === undefined ? undefined : parseScanType(typeText);
    } catch {
      format = undefined;
    }
    // libiio fails the whole context on a bad index; we keep the channel, unbuffered.
    if (idx === undefined || !format) {
      isScanElement = false;
      format = undefined;
    } else index = idx;
  }
  // libiio's init_data_scale: the channel's `scale`, or a file named `scale` in the
  // device directory when the channel has none (iio_channel_attr_read falls back to it).
  const scaleAttr = c.attrs.find((a) => a.name === 'scale');
  let scanScale: number | undefined;
  if (isScanElement && (scaleAttr || deviceHasScale)) {
    const t = await readText(`${dir}/${scaleAttr ? scaleAttr.filename : 'scale'}`);
    scanScale = t === undefined ? undefined : parseCFloat(t);
  }
  const info: ChannelInfo = {
    id: c.id,
    ...(c.name !== undefined ? { name: c.name } : {}),
    isOutput: c.isOutput,
    index,
    isScanElement,
    ...(format ? { format } : {}),
    ...(scanScale !== undefined ? { scanScale } : {}),
    attrs: c.attrs.map((a) => ({ name: a.name, filename: a.filename })),
  };
  return { info, stem: isScanElement ? scanStem(c) : '' };
}

async function regularFiles(
  path: string,
  order: SysfsScanOptions['readdirOrder'],
  root: string,
): Promise<string[]> {
  const entries = await listDir(path, order ? { root, table: order } : undefined);
  return entries.filter((e) => e.kind === 'file').map((e) => e.name);
}

/** Lists `bufferN/` (N ≥ 1) directories of a multi-buffer device, with buffer 0 first. */
async function scanBuffers(
  dir: string,
  opts: SysfsScanOptions,
  buffer0Dir: string,
): Promise<BufferInfo[] | undefined> {
  if (!(await isDir(`${dir}/buffer1`))) return undefined;
  const out: BufferInfo[] = [];
  for (let i = 0; ; i++) {
    const bdir = i === 0 ? buffer0Dir : `${dir}/buffer${i}`;
    if (i > 0 && !(await isDir(bdir))) break;
    const files = await regularFiles(bdir, opts.readdirOrder, opts.sysfsRoot);
    const dirText = await readText(`${bdir}/direction`);
    const attrs: AttrInfo[] = files
      .filter((f) => !BUFFER_RESERVED.has(f) && f !== 'direction' && !SCAN_ELEMENT_FILE.test(f))
      .sort(strcmp)
      .map((name) => ({ name }));
    out.push({
      index: i,
      ...(dirText === 'in' || dirText === 'out' ? { direction: dirText } : {}),
      attrs,
    });
  }
  return out;
}

async function scanDevice(
  dir: string,
  id: string,
  hwmon: boolean,
  opts: SysfsScanOptions,
): Promise<{ info: DeviceInfo; paths: LocalDevicePaths }> {
  const root = opts.sysfsRoot;
  const files = await regularFiles(dir, opts.readdirOrder, root);
  const hasLegacyScan = !hwmon && (await isDir(`${dir}/scan_elements`));
  const hasBuffer0 = !hwmon && (await isDir(`${dir}/buffer0`));
  const hasLegacyBuffer = !hwmon && (await isDir(`${dir}/buffer`));
  let scanFiles: string[] = [];
  let scanDir = 'scan_elements/';
  if (hasLegacyScan)
    scanFiles = await regularFiles(`${dir}/scan_elements`, opts.readdirOrder, root);
  else if (hasBuffer0) {
    // Kernels that drop the legacy directory keep the scan elements in buffer0/ only.
    scanDir = 'buffer0/';
    scanFiles = (await regularFiles(`${dir}/buffer0`, opts.readdirOrder, root)).filter((f) =>
      SCAN_ELEMENT_FILE.test(f),
    );
  }
  const names = nameSysfsDevice({ files, scanFiles, scanDir, hwmon });

  const name = names.hasName ? await readText(`${dir}/name`) : undefined;
  const label = names.hasLabel ? await readText(`${dir}/label`) : undefined;
  const deviceHasScale = names.attrs.includes('scale');
  const scanned = await Promise.all(names.channels.map((c) => scanChannel(dir, c, deviceHasScale)));
  const ordered = reorderChannels(scanned.map((s) => s.info));
  const stems = ordered.map((ci) => scanned.find((s) => s.info === ci)?.stem ?? '');

  const buffer0Dir = hasLegacyBuffer ? `${dir}/buffer` : hasBuffer0 ? `${dir}/buffer0` : undefined;
  const bufferAttrs: AttrInfo[] = buffer0Dir
    ? (await regularFiles(buffer0Dir, opts.readdirOrder, root))
        .filter((f) => !BUFFER_RESERVED.has(f) && !SCAN_ELEMENT_FILE.test(f))
        .sort(strcmp)
        .map((n) => ({ name: n }))
    : [];
  const buffers = buffer0Dir ? await scanBuffers(dir, opts, buffer0Dir) : undefined;

  const info: DeviceInfo = {
    id,
    ...(name !== undefined ? { name } : {}),
    ...(label !== undefined ? { label } : {}),
    channels: ordered,
    attrs: names.attrs.map((n) => ({ name: n })),
    bufferAttrs,
    debugAttrs: [],
    ...(buffers ? { buffers } : {}),
  };
  const paths: LocalDevicePaths = {
    id,
    dir,
    debugDir: `${root}/kernel/debug/iio/${id}`,
    hwmon,
    ...(buffer0Dir ? { bufferDir: buffer0Dir } : {}),
    ...(hasBuffer0 || hasLegacyBuffer
      ? { streamBufferDir: hasBuffer0 ? `${dir}/buffer0` : `${dir}/buffer` }
      : {}),
    ...(hasBuffer0 || hasLegacyScan
      ? { streamScanDir: hasBuffer0 ? `${dir}/buffer0` : `${dir}/scan_elements` }
      : {}),
    scanStems: stems,
  };
  return { info, paths };
}

/** libiio's populate_context_attrs: `key = value` lines of the `[Context Attributes]` section. */
export function parseLibiioIni(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let inSection = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.*)\]$/.exec(line);
    if (section) {
      if (inSection) break;
      inSection = section[1].trim() === 'Context Attributes';
      continue;
    }
    if (!inSection) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    out.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}

async function contextAttrs(opts: SysfsScanOptions): Promise<Array<[string, string]>> {
  const attrs: Array<[string, string]> = [];
  if (opts.iniFile) {
    try {
      attrs.push(...parseLibiioIni(await readFile(opts.iniFile, 'utf8')));
    } catch {
      // No INI file is the normal case (libiio: not an error).
    }
  }
  attrs.push(['local,kernel', opts.uname.release], ['uri', 'local:']);
  return attrs;
}

/** Scans sysfs into a context description and the paths of every device. */
export async function scanSysfs(opts: SysfsScanOptions, uri: string): Promise<LocalScan> {
  const root = opts.sysfsRoot;
  const devicesDir = `${root}/bus/iio/devices`;
  const found: Array<{ id: string; dir: string; hwmon: boolean }> = [];
  let iioMissing: unknown;
  try {
    for (const e of await listDir(
      devicesDir,
      opts.readdirOrder ? { root, table: opts.readdirOrder } : undefined,
    )) {
      if (e.kind === 'dir' && IIO_DEVICE_DIR.test(e.name))
        found.push({ id: e.name, dir: `${devicesDir}/${e.name}`, hwmon: false });
    }
  } catch (err) {
    iioMissing = err;
  }
  if (opts.hwmon) {
    const hwmonDir = `${root}/class/hwmon`;
    try {
      for (const e of await listDir(hwmonDir)) {
        if (e.kind === 'dir' && e.name.startsWith('hwmon'))
          found.push({ id: e.name, dir: `${hwmonDir}/${e.name}`, hwmon: true });
      }
    } catch {
      // no hwmon class: fine as long as there is IIO
    }
  }
  if (iioMissing !== undefined && !found.length) {
    throw IioError.wrap(iioMissing, {
      uri,
      file: devicesDir,
      op: 'scan IIO devices (is the industrialio module loaded?)',
    });
  }
  found.sort((a, b) => strcmp(a.id, b.id));
  const scanned = await Promise.all(found.map((f) => scanDevice(f.dir, f.id, f.hwmon, opts)));

  // Debug attributes: every regular file of debugfs's iio/<id>/ (root only; absent is fine).
  const debugRoot = `${root}/kernel/debug/iio`;
  let debugDirs: string[] = [];
  try {
    debugDirs = (
      await listDir(debugRoot, opts.readdirOrder ? { root, table: opts.readdirOrder } : undefined)
    )
      .filter((e) => e.kind === 'dir')
      .map((e) => e.name);
  } catch {
    debugDirs = [];
  }
  const devices: DeviceInfo[] = [];
  const paths = new Map<string, LocalDevicePaths>();
  for (const s of scanned) {
    let info = s.info;
    if (debugDirs.includes(info.id)) {
      try {
        const files = await regularFiles(`${debugRoot}/${info.id}`, opts.readdirOrder, root);
        info = { ...info, debugAttrs: files.map((name) => ({ name })) };
      } catch {
        // unreadable debugfs: no debug attributes
      }
    }
    devices.push(info);
    paths.set(info.id, s.paths);
  }
  const info: ContextInfo = {
    name: 'local',
    description: describeUname(opts.uname),
    version: LIBRARY_VERSION,
    attrs: await contextAttrs(opts),
    devices,
  };
  return { info, paths };
}
