import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createContext } from '../../src';
import { iiokit } from '../helpers/cli';
import { compareInfo } from '../helpers/info-compare';
import { PEERS, requirePeer, run } from '../helpers/peers';
import { startXmlIiod, type RunningIiod } from './helpers/iiod';

const DIR = join(__dirname, '../../../test/fixtures/xml');
const FIXTURES = readdirSync(DIR)
  .filter((f) => f.endsWith('.xml'))
  .sort();

describe('ip: against libiio 0.24 iiod serving each XML fixture: iiokit info = iio_info', function () {
  this.timeout(60000);
  before(function () {
    requirePeer(this, PEERS.iiod);
    requirePeer(this, PEERS.iioInfo);
  });

  for (const f of FIXTURES) {
    it(f, async () => {
      let server: RunningIiod | undefined;
      try {
        server = await startXmlIiod(join(DIR, f));
      } catch {
        // iiod refuses some fixtures (as iio_info -x does): then both must fail alike
        const local = run('iio_info', ['-x', join(DIR, f)]);
        assert.notEqual(local.status, 0, `iiod did not start on ${f}, yet iio_info -x accepts it`);
        return;
      }
      try {
        const theirs = run('iio_info', ['-u', server.uri]);
        const ours = await iiokit(['info', '-u', server.uri]);
        assert.equal(theirs.status, 0, theirs.stderr);
        assert.equal(ours.status, 0, ours.stderr);
        const r = compareInfo(theirs.stdout, ours.stdout, { skipBackendVersion: false });
        assert.ok(r.ok, `${f}: ${r.firstDifference}`);
        assert.equal(r.substitutions, 0);
        assert.match(ours.stdout, /IIO context created with network backend/);
      } finally {
        await server.stop();
      }
    });
  }
});

describe('ip: URIs and context attributes as libiio builds them', function () {
  this.timeout(30000);
  let server: RunningIiod;
  before(async function () {
    requirePeer(this, PEERS.iiod);
    server = await startXmlIiod(join(DIR, 'pluto.xml'));
  });
  after(async () => server?.stop());

  it('ip:host:port sets uri (without the port, as libiio) and ip,ip-addr', async () => {
    const ctx = await createContext(`ip:127.0.0.1:${server.port}`);
    try {
      assert.equal(ctx.name, 'network');
      assert.equal(ctx.attrs['uri'], 'ip:127.0.0.1');
      assert.equal(ctx.attrs['ip,ip-addr'], '127.0.0.1');
      assert.ok(ctx.description.startsWith('127.0.0.1 '), ctx.description);
      assert.ok(ctx.devices.length > 0);
    } finally {
      await ctx.close();
    }
  });

  it('ip:[::1]:port reaches iiod over IPv6', async () => {
    const ctx = await createContext(`ip:[::1]:${server.port}`);
    try {
      assert.equal(ctx.attrs['ip,ip-addr'], '::1');
      assert.equal(ctx.attrs['uri'], 'ip:::1');
    } finally {
      await ctx.close();
    }
  });

  it('a refused connection is ECONNREFUSED naming the URI', async () => {
    await server.stop();
    await assert.rejects(
      createContext(`ip:127.0.0.1:${server.port}`, { reconnect: false }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ECONNREFUSED');
        assert.match(e.message, /127\.0\.0\.1/);
        return true;
      },
    );
    server = await startXmlIiod(join(DIR, 'pluto.xml'));
  });

  for (const bad of ['ip:host:99999', 'ip:[::1', 'ip:a b', 'ip:host:port']) {
    it(`rejects ${bad} with EINVAL`, async () => {
      await assert.rejects(createContext(bad), /EINVAL/);
    });
  }
});
