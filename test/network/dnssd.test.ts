import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PEERS, requirePeer, which } from '../helpers/peers';

const FIXTURE = join(__dirname, '../../../test/fixtures/xml/adxl345.xml');
const CHILD = join(__dirname, 'helpers/netns-child.js');

function sh(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

/**
 * Discovery for real, with no traffic leaving this machine: two network namespaces
 * joined by a veth pair. In one, libiio's iiod serves an XML context on iiod's port and
 * our advertiser announces `_iio._tcp` over mDNS; in the other, our browser finds it.
 */
describe('DNS-SD: _iio._tcp advertised in one network namespace, found from another', function () {
  this.timeout(60000);
  const tag = `${process.pid % 10000}`;
  const nsA = `iiokit-a${tag}`;
  const nsB = `iiokit-b${tag}`;
  const net = `10.231.${process.pid % 250}`;
  const procs: ChildProcess[] = [];
  let made = false;

  before(async function () {
    requirePeer(this, PEERS.root);
    requirePeer(this, PEERS.iiod);
    if (!which('ip'))
      requirePeer(this, {
        name: 'iproute2',
        install: 'apt-get install -y iproute2',
        available: () => false,
      });
    sh(['netns', 'add', nsA]);
    sh(['netns', 'add', nsB]);
    made = true;
    sh(['link', 'add', `va${tag}`, 'type', 'veth', 'peer', 'name', `vb${tag}`]);
    sh(['link', 'set', `va${tag}`, 'netns', nsA]);
    sh(['link', 'set', `vb${tag}`, 'netns', nsB]);
    for (const [ns, dev, addr] of [
      [nsA, `va${tag}`, `${net}.1`],
      [nsB, `vb${tag}`, `${net}.2`],
    ]) {
      sh(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      sh(['-n', ns, 'link', 'set', dev, 'up', 'multicast', 'on']);
      sh(['-n', ns, 'link', 'set', 'lo', 'up']);
      // multicast (mDNS) leaves through the veth
      sh(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev]);
    }
    const iiod = spawn(
      'ip',
      ['netns', 'exec', nsA, 'iiod', '-u', `xml:${FIXTURE}`, '-p', '30431'],
      { stdio: 'ignore' },
    );
    procs.push(iiod);
    const ad = spawn(
      'ip',
      ['netns', 'exec', nsA, process.execPath, CHILD, 'advertise', '30431', 'iiokit-test'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    procs.push(ad);
    await new Promise<void>((resolve, reject) => {
      ad.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      ad.once('exit', (c) => reject(new Error(`advertiser exited ${c}`)));
    });
  });

  after(() => {
    for (const p of procs) {
      try {
        p.kill('SIGKILL');
      } catch {
        // gone
      }
    }
    // the processes started in the namespaces are children of `ip netns exec`: kill by namespace
    for (const ns of [nsA, nsB]) {
      if (!made) break;
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
        .stdout.split(/\s+/)
        .filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      spawnSync('ip', ['netns', 'del', ns]);
    }
  });

  it('scanContexts, ip:, ip:<host>.local and iiokit scan all find the server', () => {
    const r = spawnSync('ip', ['netns', 'exec', nsB, process.execPath, CHILD, 'browse'], {
      encoding: 'utf8',
      timeout: 30000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    const got = JSON.parse(line) as {
      error?: string;
      scan: Array<{ uri: string; description: string }>;
      discovered: { name: string; attrs: Record<string, string>; devices: string[] };
      byName: { attrs: Record<string, string>; devices: number };
      cli: string;
    };
    assert.equal(got.error, undefined, got.error);
    assert.deepEqual(got.scan, [
      {
        uri: 'ip:iiokit-test.local',
        description: `${net}.1 (0x0001 on Raspberry Pi 4 Model B Rev 1.4), serial=23a33bbc-84cb-40fc-977e-93e1f8803552`,
      },
    ]);
    assert.equal(got.discovered.name, 'network');
    assert.equal(got.discovered.attrs['ip,ip-addr'], `${net}.1`);
    assert.equal(got.discovered.attrs.uri, `ip:${net}.1`);
    assert.deepEqual(got.discovered.devices, ['hwmon0', 'iio:device0', 'iio_sysfs_trigger']);
    assert.equal(got.byName.attrs.uri, 'ip:iiokit-test.local');
    assert.equal(got.byName.devices, 3);
    assert.equal(
      got.cli,
      `Available contexts:\n\t0: ${got.scan[0].description} [ip:iiokit-test.local]\n`,
    );
  });
});
