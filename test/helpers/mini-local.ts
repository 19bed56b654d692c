/**
 * A deliberately small sysfs reader standing in for the `local:` backend in the
 * streaming tests until the real one (src/backends/local, written in parallel) lands.
 * It knows just enough to reach the buffer layer: devices, scan elements, a channel's own
 * and shared attributes, triggers. `useLocalBackend()` registers it only when `local:`
 * is still the placeholder, so the same tests run against the real backend later.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { registerBackend } from '../../src/backends';
import type {
  AttrRef,
  Backend,
  BackendEventStream,
  BackendOpenOptions,
  BufferOpenOptions,
} from '../../src/backends/backend';
import {
  openLocalBuffer,
  openLocalEvents,
  type LocalDeviceHandle,
} from '../../src/backends/local/buffer';
import { IioError } from '../../src/errors';
import { parseScanType } from '../../src/format/scan-type';
import type { AttrInfo, ChannelInfo, ContextInfo, DeviceInfo } from '../../src/model/info';
import { reorderChannels } from '../../src/model/reorder';
import { createContext } from '../../src/create-context';

export interface MiniLocalOptions {
  readonly sysfsRoot?: string;
  readonly devDir?: string;
  readonly timeoutMs?: number;
}

const files = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

/** The scan elements of one directory, as channels (stem → channel). */
function scanChannels(devDir: string, scanDir: string): { info: ChannelInfo; stem: string }[] {
  const out: { info: ChannelInfo; stem: string }[] = [];
  const devFiles = files(devDir);
  for (const f of files(scanDir)) {
    const m = /^(in|out)_(.+)_en$/.exec(f);
    if (!m) continue;
    const stem = f.slice(0, -3);
    const dir = m[1];
    const id = m[2];
    const index = Number(readFileText(join(scanDir, `${stem}_index`)));
    const format = parseScanType(readFileText(join(scanDir, `${stem}_type`)));
    // A channel's own attributes, then those it shares with its type (in_voltage_scale).
    const type = id.replace(/[0-9].*$/, '').replace(/_.*$/, '');
    const attrs: AttrInfo[] = [];
    for (const a of devFiles) {
      if (a.startsWith(`${stem}_`)) attrs.push({ name: a.slice(stem.length + 1), filename: a });
    }
    for (const a of devFiles) {
      const p = `${dir}_${type}_`;
      if (!a.startsWith(p)) continue;
      const name = a.slice(p.length);
      if (!attrs.some((x) => x.name === name)) attrs.push({ name, filename: a });
    }
    out.push({
      stem,
      info: { id, isOutput: dir === 'out', index, isScanElement: true, format, attrs },
    });
  }
  return out;
}

function readFileText(p: string): string {
  return require('node:fs').readFileSync(p, 'utf8').trim();
}

interface LocalDevice {
  info: DeviceInfo;
  dir: string;
  handle?: LocalDeviceHandle;
}

export class MiniLocalBackend implements Backend {
  readonly name = 'local';
  readonly info: ContextInfo;
  private readonly devices = new Map<DeviceInfo, LocalDevice>();
  private timeoutMs: number;

  constructor(
    readonly uri: string,
    sysfsRoot: string,
    private readonly devDir: string,
    timeoutMs: number,
  ) {
    this.timeoutMs = timeoutMs;
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias
    const base = join(sysfsRoot, 'bus/iio/devices');
    const devs: DeviceInfo[] = [];
    const ids = files(base).filter((d) => /^(iio:device|trigger)\d+$/.test(d));
    ids.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    for (const id of ids) {
      const dir = join(base, id);
      const name = existsSync(join(dir, 'name')) ? readFileText(join(dir, 'name')) : undefined;
      const bufferDir = existsSync(join(dir, 'buffer0'))
        ? join(dir, 'buffer0')
        : join(dir, 'buffer');
      const scanDir = existsSync(join(dir, 'buffer0')) ? bufferDir : join(dir, 'scan_elements');
      const scans = id.startsWith('iio:device') ? scanChannels(dir, scanDir) : [];
      const channels = reorderChannels(scans.map((s) => s.info));
      const attrs = files(dir)
        .filter((f) => !statSync(join(dir, f)).isDirectory() && !/^(in|out)_/.test(f))
        .filter((f) => !['dev', 'uevent', 'name', 'label'].includes(f))
        .map((f) => ({ name: f, filename: f }));
      const info: DeviceInfo = {
        id,
        name,
        channels,
        attrs,
        bufferAttrs: files(bufferDir)
          .filter((f) => !/^(in|out)_/.test(f))
          .map((f) => ({ name: f, filename: f })),
        debugAttrs: [],
      };
      const dev: LocalDevice = { info, dir };
      if (scans.length) {
        const stems = channels.map((c) => scans.find((s) => s.info === c)?.stem ?? '');
        dev.handle = {
          uri,
          device: info,
          sysfsDir: dir,
          devNode: join(devDir, id),
          bufferDir,
          scanElementsDir: scanDir,
          scanElementStems: stems,
          get timeoutMs() {
            return self.timeoutMs;
          },
        };
      }
      devs.push(info);
      this.devices.set(info, dev);
    }
    this.info = {
      name: 'local',
      description: 'mini local backend (tests)',
      version: { major: 0, minor: 24, git: 'tests' },
      attrs: [['uri', uri]],
      devices: devs,
    };
  }

  private dev(info: DeviceInfo): LocalDevice {
    const d =
      this.devices.get(info) ?? [...this.devices.values()].find((x) => x.info.id === info.id);
    if (!d) throw new IioError('ENODEV', `no device ${info.id}`);
    return d;
  }

  private pathOf(ref: AttrRef): string {
    const d = this.dev(ref.device!);
    const file = ref.attr.filename ?? ref.attr.name;
    if (ref.kind === 'buffer') return join(d.handle?.bufferDir ?? join(d.dir, 'buffer'), file);
    return join(d.dir, file);
  }

  async readAttr(ref: AttrRef): Promise<string> {
    return (await readFile(this.pathOf(ref), 'utf8')).replace(/\n$/, '');
  }

  async writeAttr(ref: AttrRef, value: string): Promise<number> {
    await writeFile(this.pathOf(ref), value);
    return value.length;
  }

  async getTrigger(device: DeviceInfo): Promise<string | null> {
    const p = join(this.dev(device).dir, 'trigger/current_trigger');
    if (!existsSync(p)) throw new IioError('ENOENT', `${device.id} has no trigger`);
    const t = (await readFile(p, 'utf8')).trim();
    return t === '' ? null : t;
  }

  async setTrigger(device: DeviceInfo, trigger: DeviceInfo | null): Promise<void> {
    const p = join(this.dev(device).dir, 'trigger/current_trigger');
    // An empty write() detaches the trigger; writeFile('') would issue no write() at all.
    await writeFile(p, trigger ? (trigger.name ?? trigger.id) : '\n');
  }

  openBuffer(device: DeviceInfo, options: BufferOpenOptions) {
    const h = this.dev(device).handle;
    if (!h) throw new IioError('ENOENT', `${device.id} has no buffer`);
    return openLocalBuffer(h, options);
  }

  openEvents(device: DeviceInfo): Promise<BackendEventStream> {
    const d = this.dev(device);
    const h: LocalDeviceHandle = d.handle ?? {
      uri: this.uri,
      device: d.info,
      sysfsDir: d.dir,
      devNode: join(this.devDir, d.info.id),
      bufferDir: join(d.dir, 'buffer0'),
      scanElementsDir: join(d.dir, 'buffer0'),
      scanElementStems: [],
      timeoutMs: this.timeoutMs,
    };
    return openLocalEvents(h);
  }

  async setTimeout(timeoutMs: number): Promise<void> {
    this.timeoutMs = timeoutMs;
  }

  async close(): Promise<void> {}
}

/** Opens the stand-in over a sysfs root (default /sys) and a dev dir (default /dev). */
export function openMiniLocal(uri: string, options: BackendOpenOptions & MiniLocalOptions) {
  return new MiniLocalBackend(
    uri,
    options.sysfsRoot ?? process.env.IIOKIT_SYSFS_ROOT ?? '/sys',
    options.devDir ?? process.env.IIOKIT_DEV_DIR ?? '/dev',
    options.timeoutMs ?? 1000,
  );
}

let registered: boolean | undefined;

/**
 * Makes `local:` usable in tests: the real backend when it exists, else the stand-in.
 * Returns which one is in use.
 */
export async function useLocalBackend(): Promise<'real' | 'mini'> {
  if (registered !== undefined) return registered ? 'mini' : 'real';
  try {
    const ctx = await createContext('local:', { sysfsRoot: '/nonexistent-probe' });
    await ctx.close();
    registered = false;
  } catch (err) {
    const e = err as IioError;
    if (e.code === 'ENOSYS' && /not available in this build/.test(e.message)) {
      registerBackend('local', () => async (uri, options) => openMiniLocal(uri, options));
      registered = true;
    } else {
      registered = false;
    }
  }
  return registered ? 'mini' : 'real';
}
