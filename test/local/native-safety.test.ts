/**
 * No buffer is left enabled, whatever happens to the process that opened it; and a
 * missing addon makes local: say why and how to fix it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { makeFifoDevice } from '../helpers/fifo-device';

const HOLD = join(__dirname, '../helpers/hold-buffer.js');

function runChild(
  how: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [HOLD, how], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c));
    p.stderr.on('data', (c: Buffer) => (stderr += c));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('native streaming: nothing left enabled', function () {
  for (const how of ['throw', 'reject', 'sigint', 'exit']) {
    it(`restores the device when its process ends by ${how}`, async () => {
      const dev = makeFifoDevice({
        channels: [{ stem: 'in_voltage0', index: 0, type: 'le:s16/16>>0' }],
        length: 5,
        watermark: 2,
      });
      try {
        const r = await runChild(how, { IIOKIT_TEST_HANDLE: JSON.stringify(dev.handle) });
        assert.equal(r.stdout, 'open\n', r.stderr);
        if (how === 'sigint') assert.equal(r.signal, 'SIGINT', 'still dies of the signal');
        else assert.notEqual(r.code, 0);
        assert.deepEqual(
          ['enable', 'length', 'watermark', 'in_voltage0_en'].map((f) => dev.read(`buffer0/${f}`)),
          ['0', '5', '2', '0'],
        );
      } finally {
        dev.cleanup();
      }
    });
  }

  it('says why local: cannot stream without the addon, and how to fix it', async () => {
    const dev = makeFifoDevice({
      channels: [{ stem: 'in_voltage0', index: 0, type: 'le:s16/16>>0' }],
    });
    try {
      const r = await runChild('throw', {
        IIOKIT_TEST_HANDLE: JSON.stringify(dev.handle),
        IIOKIT_NATIVE_DIR: '/nonexistent/iiokit',
      });
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /ELIBACC: local: needs the native module iiokit\.node/);
      assert.match(r.stderr, /\/nonexistent\/iiokit/);
      assert.match(r.stderr, /npm rebuild @iiokit\/node-red-iio/);
      assert.equal(dev.read('buffer0/enable'), '0');
    } finally {
      dev.cleanup();
    }
  });
});
