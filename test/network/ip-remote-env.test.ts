import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createContext, IioError } from '../../src';
import { defaultContextUri } from '../../src/create-context';
import { iiokit } from '../helpers/cli';
import { compareInfo } from '../helpers/info-compare';
import { PEERS, requirePeer, run } from '../helpers/peers';
import { startXmlIiod, type RunningIiod } from './helpers/iiod';

describe('IIOD_REMOTE, as libiio reads it', function () {
  this.timeout(30000);
  let server: RunningIiod;
  const saved = process.env.IIOD_REMOTE;
  before(async function () {
    requirePeer(this, PEERS.iiod);
    requirePeer(this, PEERS.iioInfo);
    server = await startXmlIiod(join(__dirname, '../../../test/fixtures/xml/pluto.xml'));
  });
  after(async () => {
    if (saved === undefined) delete process.env.IIOD_REMOTE;
    else process.env.IIOD_REMOTE = saved;
    await server?.stop();
  });

  it('holds a whole URI: iiokit info and iio_info without -u both use it', async () => {
    process.env.IIOD_REMOTE = server.uri;
    const theirs = run('iio_info', []);
    const ours = await iiokit(['info']);
    assert.equal(theirs.status, 0);
    const r = compareInfo(theirs.stdout, ours.stdout, { skipBackendVersion: false });
    assert.ok(r.ok, r.firstDifference);
    const ctx = await createContext();
    assert.equal(ctx.name, 'network');
    await ctx.close();
  });

  it('a bare host is not a URI: ENOSYS, as libiio', async () => {
    process.env.IIOD_REMOTE = `127.0.0.1:${server.port}`;
    const theirs = run('iio_info', []);
    const ours = await iiokit(['info']);
    assert.notEqual(theirs.status, 0);
    assert.equal(ours.status, theirs.status);
    assert.equal(ours.stderr.split('\n')[0], theirs.stderr.split('\n')[0]);
    await assert.rejects(
      createContext(),
      (e: IioError) => e.code === 'ENOSYS' && /IIOD_REMOTE/.test(e.message),
    );
  });

  it('values shorter than "ip:" are ignored (local:)', () => {
    assert.equal(defaultContextUri({ IIOD_REMOTE: 'ip' }), 'local:');
    assert.equal(defaultContextUri({ IIOD_REMOTE: 'ip:' }), 'ip:');
    assert.equal(defaultContextUri({}), 'local:');
    assert.equal(defaultContextUri({ IIOD_REMOTE: `ip:${'h'.repeat(300)}` }), 'local:');
  });
});
