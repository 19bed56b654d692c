import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { zstdCompress } from '../../src/util/zstd-encode';
import { PEERS, requirePeer } from '../helpers/peers';

const FIXTURES = join(__dirname, '../../../test/fixtures/xml');

/** What the `zstd` tool (libzstd) decompresses a frame to. */
function unzstd(frame: Buffer): Buffer {
  const r = spawnSync('zstd', ['-d', '-c', '-q'], { input: frame, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

describe('zstd encoder: frames the zstd tool reads back exactly', function () {
  this.timeout(60000);
  before(function () {
    requirePeer(this, PEERS.zstd);
  });

  it('empty, tiny, incompressible and repetitive inputs, one block and several', () => {
    const inputs = [
      Buffer.alloc(0),
      Buffer.from('x'),
      Buffer.from('abcdabcdabcdabcdabcdabcd'),
      randomBytes(5000),
      randomBytes(300000),
      Buffer.alloc(400000, 0x41),
      Buffer.concat([randomBytes(70000), Buffer.alloc(200000, 7), randomBytes(70000)]),
    ];
    for (const data of inputs) {
      const z = zstdCompress(data);
      assert.deepEqual(z.subarray(0, 4), Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 'zstd magic');
      assert.ok(unzstd(z).equals(data), `${data.length} bytes`);
    }
  });

  it('every XML fixture; the large ones (> 20 KiB) to a third or less', () => {
    for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.xml'))) {
      const xml = readFileSync(join(FIXTURES, f));
      const z = zstdCompress(xml);
      assert.ok(unzstd(z).equals(xml), f);
      if (xml.length > 20480) {
        assert.ok(z.length * 3 < xml.length, `${f}: ${xml.length} → ${z.length} bytes`);
      }
    }
  });
});
