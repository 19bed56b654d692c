/**
 * SLOW (first run ~1 min per architecture, later ~10 s): the arm64 and armv7 prebuilt
 * binaries, installed from the packed tarball, loaded by Debian's own arm64/armhf `nodejs`
 * under qemu-user in a root made by `debootstrap --foreign` (scripts/arm-rootfs.sh, cached
 * in /var/cache/iiokit-arm), and their self-test run there.
 *
 * Debian 12's nodejs is Node 18, the oldest we support, so this also shows the Node-API
 * binaries serve the oldest Node. `IIOKIT_ARM_SUITE=trixie` runs it on Debian 13 (Node 20).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { requirePeer, which, type Peer } from '../helpers/peers';
import {
  assertKernelIoctls,
  assertSelfTest,
  NATIVE_CHECK,
  REPO,
  XML_FIXTURE,
  installTarball,
  packOnce,
  parseProbe,
  sh,
  type Probe,
} from './pack-fixture';

const SUITE = process.env.IIOKIT_ARM_SUITE || 'bookworm';

const qemuUser: Peer = {
  name: 'debootstrap and qemu-user-static (as root)',
  install: 'apt-get install -y debootstrap qemu-user-static, and run as root',
  available: () =>
    process.getuid?.() === 0 &&
    !!which('debootstrap') &&
    !!which('qemu-aarch64-static') &&
    !!which('qemu-arm-static'),
};

const ARCHES = [
  {
    debian: 'arm64',
    node: 'arm64',
    qemu: 'qemu-aarch64-static',
    prebuild: 'prebuilds/linux-arm64/iiokit.napi.glibc.node',
    sizeofLong: 8,
  },
  {
    debian: 'armhf',
    node: 'arm',
    qemu: 'qemu-arm-static',
    prebuild: 'prebuilds/linux-arm/iiokit.napi.armv7.glibc.node',
    sizeofLong: 4,
  },
] as const;

describe(`e2e (slow, qemu-user): prebuilt ARM binaries on Debian ${SUITE}'s nodejs`, function () {
  this.timeout(900_000);

  for (const arch of ARCHES) {
    describe(arch.debian, function () {
      let probe: Probe;
      let installed: string;

      before(function () {
        requirePeer(this, qemuUser);
        const packed = packOnce();
        const root = sh('bash', ['scripts/arm-rootfs.sh', arch.debian, SUITE]).trim();
        // A fresh install each run: the tarball is this run's.
        const opt = path.join(root, 'opt', 'iiokit');
        rmSync(opt, { recursive: true, force: true });
        installed = installTarball(opt, packed.tarball);
        copyFileSync(NATIVE_CHECK, path.join(opt, 'native-check.js'));
        copyFileSync(XML_FIXTURE, path.join(opt, 'context.xml'));
        const inRoot = (p: string) => '/' + path.relative(root, p);
        const r = spawnSync(
          'chroot',
          [
            root,
            `/usr/bin/${arch.qemu}`,
            '/usr/bin/node',
            '/opt/iiokit/native-check.js',
            inRoot(installed),
            '/opt/iiokit/context.xml',
          ],
          { encoding: 'utf8', timeout: 300_000 },
        );
        assert.equal(r.status, 0, `node under ${arch.qemu} failed:\n${r.stdout}\n${r.stderr}`);
        probe = parseProbe(r.stdout);
        // Shown in the test log: what an ARM board's node sees.
        const file = probe.status.loaded ? path.basename(probe.status.file) : 'not loaded';
        console.log(
          `\n      ${arch.debian}: node ${probe.node} ${probe.arch}, ${file}, selfTest ${JSON.stringify(probe.selfTest)}, ioctls ${JSON.stringify(probe.ioctls)}`,
        );
      });

      it(`runs Debian's ${arch.node} node`, () => {
        assert.equal(probe.arch, arch.node);
        assert.match(probe.node, /^v\d+\./);
      });

      it('loads the prebuilt binary that npm installed (no build from source)', () => {
        assert.ok(probe.status.loaded, JSON.stringify(probe.status));
        assert.equal(probe.status.prebuilt, true);
        assert.equal(
          probe.status.file,
          path.posix.join('/opt/iiokit/node_modules/@iiokit/node-red-iio', arch.prebuild),
        );
      });

      it('passes the self-test (eventfd, ioctl numbers, a block through the pool, ...)', () => {
        assertSelfTest(probe);
        assertKernelIoctls(probe.ioctls);
      });

      it('loads on Debian 11 too (glibc 2.31, libstdc++ of GCC 10: the floor we promise)', function () {
        // Debian 11's nodejs is Node 12, too old for the package's JavaScript but with
        // Node-API 8: it loads the very binary npm installed above and runs its self-test,
        // which shows the binary needs nothing newer than Debian 11's C and C++ runtimes.
        const floor = sh('bash', ['scripts/arm-rootfs.sh', arch.debian, 'bullseye']).trim();
        copyFileSync(path.join(installed, arch.prebuild), path.join(floor, 'tmp', 'iiokit.node'));
        const r = spawnSync(
          'chroot',
          [
            floor,
            `/usr/bin/${arch.qemu}`,
            '/usr/bin/node',
            '-e',
            "const a = require('/tmp/iiokit.node'); " +
              'console.log(JSON.stringify({ node: process.version, selfTest: a.selfTest(), ioctls: a.ioctls() }))',
          ],
          { encoding: 'utf8', timeout: 300_000 },
        );
        assert.equal(r.status, 0, `Debian 11's node failed to load the binary:\n${r.stderr}`);
        const got = JSON.parse(r.stdout.trim()) as Probe;
        console.log(`      ${arch.debian} on bullseye: ${r.stdout.trim()}`);
        assert.match(got.node, /^v12\./);
        assertSelfTest(got);
        assertKernelIoctls(got.ioctls);
      });

      it('reads an xml: context there too (the TypeScript half runs on the board)', async () => {
        const { createContext } = await import(path.join(REPO, 'dist', 'src', 'index.js'));
        const ctx = await (
          createContext as (
            u: string,
          ) => Promise<{ devices: { id: string }[]; close(): Promise<void> }>
        )(`xml:${XML_FIXTURE}`);
        const expected = ctx.devices.map((d) => d.id);
        await ctx.close();
        assert.equal(probe.xmlError, undefined);
        assert.deepEqual(probe.xmlDevices, expected);
      });
    });
  }
});
