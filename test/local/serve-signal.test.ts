/**
 * `iiokit serve -u local:` stopped by a signal while a client streams: status 0, the
 * "stopped after" line, and the device restored (issue 15, item 5: the local buffer's
 * exit guard re-raised the signal, 143, because serve's handler had already gone).
 * On the FIFO-backed device of a private mount namespace (helpers/fifo-namespace.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { namespaceAvailable, runInNamespace } from '../helpers/fifo-namespace';
import { PEERS, requirePeer, type Peer } from '../helpers/peers';
import { freePort } from '../network/server-helpers';

const IIOKIT = `${process.execPath} ${join(__dirname, '../../../bin/iiokit.js')}`;
const SHOW = `show() { for f; do printf '%s\\n' "$(tr -d '\\000\\n' < "$f")"; done; }\n`;
const namespace: Peer = {
  name: 'root and unshare (a private mount namespace for the FIFO device)',
  install: 'run the tests as root on Linux (util-linux unshare)',
  available: namespaceAvailable,
};

describe('iiokit serve -u local: ends cleanly on a signal while a client streams', function () {
  this.timeout(120000);
  let dir: string;

  before(function () {
    requirePeer(this, namespace);
    requirePeer(this, PEERS.iioInfo);
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'iiokit-serve-sig-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  for (const sig of ['TERM', 'INT', 'HUP']) {
    it(`SIG${sig}: status 0, "stopped after", the buffer disabled`, async () => {
      const port = await freePort();
      const r = runInNamespace(`${SHOW}
        cat /dev/zero > /dev/iio:device0 2>/dev/null </dev/null & C=$!
        ${IIOKIT} serve -u local: -p ${port} 2> ${dir}/serve.err </dev/null & S=$!
        for i in $(seq 200); do (echo > /dev/tcp/127.0.0.1/${port}) 2>/dev/null && break; sleep 0.05; done
        iio_readdev -u ip:127.0.0.1:${port} -b 256 fakeadc > ${dir}/out 2>/dev/null </dev/null & R=$!
        for i in $(seq 400); do [ -s ${dir}/out ] && break; sleep 0.05; done
        show /sys/bus/iio/devices/iio:device0/buffer/enable
        kill -${sig} $S; wait $S; echo "serve=$?"
        show /sys/bus/iio/devices/iio:device0/buffer/enable
        kill $R $C 2>/dev/null; wait $R $C 2>/dev/null
        exit 0
      `);
      const err = readFileSync(join(dir, 'serve.err'), 'utf8');
      assert.equal(r.stdout, '1\nserve=0\n0\n', `${r.stdout}\n${r.stderr}\n${err}`);
      assert.match(err, /iiokit serve: stopped after [1-9]\d* connections \(0 refused\)/, err);
    });
  }
});
