/**
 * A standalone probe, run by whatever `node` an installed copy of the package meets: the
 * host's, Debian's arm64/armhf node under qemu-user, or the test VM's. It loads the
 * package from the directory given as argv[2] the way a user would, runs the native
 * module's self-test and prints one JSON line; the mocha tests judge that line. It must
 * run on the oldest Node we support (18) and must not import anything from this repo.
 *
 *   node native-check.js <installed package dir>
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';

interface Probe {
  node: string;
  arch: string;
  status: unknown;
  /** The native module's selfTest(): eventfd, ioctl numbers, pool, stream, ... */
  selfTest?: { ok: boolean; checks: { name: string; ok: boolean; detail: string }[] };
  selfTestError?: string;
  ioctls?: Record<string, number>;
  xmlDevices?: string[];
  xmlError?: string;
  capture?: { hex: string; values: number[] };
  captureError?: { code: string; message: string };
  statusAfterCapture?: unknown;
}

/** The slice of the public API the capture uses (typed here: this file imports nothing). */
interface LocalContext {
  findDevice(id: string):
    | {
        setTrigger(t: string | null): Promise<void>;
        createBuffer(
          samples: number,
          o: { channels: string[] },
        ): Promise<{
          refill(): Promise<Buffer>;
          channelData(ch: string): (number | bigint)[];
          close(): Promise<void>;
        }>;
      }
    | undefined;
  close(): Promise<void>;
}

async function main(): Promise<void> {
  const pkgDir = path.resolve(process.argv[2] ?? '.');
  const lib = require(pkgDir) as {
    nativeModuleStatus(): { loaded: boolean };
    createContext(uri: string): Promise<{ devices: { id: string }[]; close(): Promise<void> }>;
  };
  // src/native/index.ts once the native branch is in; load.ts (its stand-in) before.
  const loader = ['index.js', 'load.js']
    .map((f) => path.join(pkgDir, 'dist/src/native', f))
    .find((f) => existsSync(f))!;
  const native = require(loader) as {
    loadNative(): Record<string, unknown>;
  };
  const probe: Probe = {
    node: process.version,
    arch: process.arch,
    status: lib.nativeModuleStatus(),
  };
  if (lib.nativeModuleStatus().loaded) {
    try {
      const addon = native.loadNative() as {
        selfTest(): Probe['selfTest'];
        ioctls(): Record<string, number>;
      };
      probe.selfTest = addon.selfTest();
      probe.ioctls = addon.ioctls();
    } catch (err) {
      probe.selfTestError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
  }
  // A context that needs no native module, to show the rest of the package works either way.
  const xml = process.argv[3];
  if (xml) {
    try {
      const ctx = await lib.createContext(`xml:${xml}`);
      probe.xmlDevices = ctx.devices.map((d) => d.id);
      await ctx.close();
    } catch (err) {
      probe.xmlError = err instanceof Error ? err.message : String(err);
    }
  }
  // IIOKIT_CHECK_CAPTURE=device,channel,trigger,samples: one block from a local: device,
  // through whichever native module the package loads (the kernel suite's VM).
  const capture = process.env.IIOKIT_CHECK_CAPTURE;
  if (capture) {
    const [device, channel, trigger, samples] = capture.split(',');
    try {
      const ctx = (await lib.createContext('local:')) as unknown as LocalContext;
      try {
        const dev = ctx.findDevice(device);
        if (!dev) throw new Error(`no device ${device}`);
        await dev.setTrigger(trigger);
        try {
          const buf = await dev.createBuffer(Number(samples), { channels: [channel] });
          try {
            const data = await buf.refill();
            probe.capture = {
              hex: data.toString('hex'),
              values: buf.channelData(channel).map(Number),
            };
          } finally {
            await buf.close();
          }
        } finally {
          // The kernel suite shares one VM boot: leave the device as it was.
          await dev.setTrigger(null);
        }
      } finally {
        await ctx.close();
      }
    } catch (err) {
      const e = err as { code?: string; message?: string };
      probe.captureError = { code: e.code ?? 'EUNKNOWN', message: e.message ?? String(err) };
    }
    probe.statusAfterCapture = lib.nativeModuleStatus();
  }
  process.stdout.write(JSON.stringify(probe) + '\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
