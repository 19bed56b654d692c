/**
 * A FIFO-backed fake IIO device: a sysfs tree of plain files in a temporary directory and
 * a /dev node that is a FIFO. The buffer layer cannot tell it from a kernel device that
 * predates IIO_BUFFER_GET_FD_IOCTL (the ioctl answers ENOTTY, so the /dev fd is read or
 * written directly), and the test sits on the other end of the FIFO as the "hardware".
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalDeviceHandle } from '../../src/backends/local/buffer';
import { parseScanType } from '../../src/format/scan-type';
import type { ChannelInfo, DeviceInfo } from '../../src/model/info';
import { reorderChannels } from '../../src/model/reorder';

export interface FakeChannel {
  /** `in_voltage0`, `out_voltage1` */
  readonly stem: string;
  readonly index: number;
  readonly type: string;
  /** Extra channel attributes, e.g. `{ scale: '0.5', offset: '3' }`. */
  readonly attrs?: Record<string, string>;
}

export interface FakeDevice {
  /** The sysfs root (`<root>/bus/iio/devices/...`) and the dev dir. */
  readonly sysfsRoot: string;
  readonly devDir: string;
  readonly sysfsDir: string;
  readonly devNode: string;
  readonly info: DeviceInfo;
  readonly handle: LocalDeviceHandle;
  /** Reads a sysfs file of the device (relative to its directory). */
  read(rel: string): string;
  cleanup(): void;
}

export interface FakeDeviceOptions {
  readonly name?: string;
  readonly channels: readonly FakeChannel[];
  /** Legacy layout (`buffer/` + `scan_elements/`, before 5.11); default `buffer0/`. */
  readonly legacy?: boolean;
  readonly timeoutMs?: number;
  /** Initial buffer length / watermark (the kernel's defaults are 2 and 1). */
  readonly length?: number;
  readonly watermark?: number;
}

export function makeFifoDevice(opts: FakeDeviceOptions): FakeDevice {
  const top = mkdtempSync(join(tmpdir(), 'iiokit-fifo-'));
  const sysfsRoot = join(top, 'sys');
  const devDir = join(top, 'dev');
  const id = 'iio:device0';
  const sysfsDir = join(sysfsRoot, 'bus/iio/devices', id);
  const bufferDir = join(sysfsDir, opts.legacy ? 'buffer' : 'buffer0');
  const scanDir = opts.legacy ? join(sysfsDir, 'scan_elements') : bufferDir;
  for (const d of [bufferDir, scanDir, devDir, join(sysfsDir, 'trigger')])
    mkdirSync(d, { recursive: true });
  writeFileSync(join(sysfsDir, 'name'), `${opts.name ?? 'fifo'}\n`);
  writeFileSync(join(sysfsDir, 'trigger/current_trigger'), '\n');
  writeFileSync(join(bufferDir, 'enable'), '0\n');
  writeFileSync(join(bufferDir, 'length'), `${opts.length ?? 2}\n`);
  writeFileSync(join(bufferDir, 'watermark'), `${opts.watermark ?? 1}\n`);
  writeFileSync(join(bufferDir, 'data_available'), '0\n');
  const infos: Array<{ info: ChannelInfo; stem: string }> = [];
  for (const c of opts.channels) {
    writeFileSync(join(scanDir, `${c.stem}_en`), '0\n');
    writeFileSync(join(scanDir, `${c.stem}_index`), `${c.index}\n`);
    writeFileSync(join(scanDir, `${c.stem}_type`), `${c.type}\n`);
    const attrs = Object.entries(c.attrs ?? {}).map(([name, value]) => {
      writeFileSync(join(sysfsDir, `${c.stem}_${name}`), `${value}\n`);
      return { name, filename: `${c.stem}_${name}` };
    });
    const m = /^(in|out)_(.+)$/.exec(c.stem)!;
    infos.push({
      stem: c.stem,
      info: {
        id: m[2],
        isOutput: m[1] === 'out',
        index: c.index,
        isScanElement: true,
        format: parseScanType(c.type),
        attrs,
      },
    });
  }
  const devNode = join(devDir, id);
  execFileSync('mkfifo', [devNode]);
  const channels = reorderChannels(infos.map((x) => x.info));
  const info: DeviceInfo = {
    id,
    name: opts.name ?? 'fifo',
    channels,
    attrs: [],
    bufferAttrs: [],
    debugAttrs: [],
  };
  const handle: LocalDeviceHandle = {
    uri: 'local:',
    device: info,
    sysfsDir,
    devNode,
    bufferDir,
    scanElementsDir: scanDir,
    scanElementStems: channels.map((c) => infos.find((x) => x.info === c)!.stem),
    timeoutMs: opts.timeoutMs ?? 2000,
  };
  return {
    sysfsRoot,
    devDir,
    sysfsDir,
    devNode,
    info,
    handle,
    read: (rel) => readFileSync(join(sysfsDir, rel), 'utf8').trim(),
    cleanup: () => rmSync(top, { recursive: true, force: true }),
  };
}
