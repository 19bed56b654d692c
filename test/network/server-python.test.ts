import assert from 'node:assert/strict';
import { createContext, serveContext, type Context, type ServerHandle } from '../../src';
import { PEERS, requirePeer } from '../helpers/peers';
import { pythonWithIio, runAsync } from './server-helpers';

/** Drives Debian's python3-libiio (ctypes over libiio 0.24) against our server. */
const SCRIPT = `
import iio, json, struct, sys
ctx = iio.Context(sys.argv[1])
out = {'devices': [[d.id, d.name] for d in ctx.devices]}
adc = ctx.find_device('ad7606-emu')
out['channels'] = [c.id for c in adc.channels]
out['rate'] = adc.attrs['sampling_frequency'].value
adc.attrs['sampling_frequency'].value = '2000'
out['rate_after'] = adc.attrs['sampling_frequency'].value
ch = adc.find_channel('voltage1')
ch.attrs['waveform'].value = 'ramp'
out['waveform'] = ch.attrs['waveform'].value
try:
    ch.attrs['waveform'].value = 'nope'
    out['bad_write'] = 'accepted'
except OSError as e:
    out['bad_write'] = e.errno
ch.enabled = True
adc.find_channel('timestamp', False).enabled = True
buf = iio.Buffer(adc, 400)
values = []
stamps = []
for i in range(3):
    buf.refill()
    raw = buf.read()
    for off in range(0, len(raw), 16):
        v, t = struct.unpack_from('<hxxxxxxq', raw, off)
        values.append(v)
        stamps.append(t)
out['samples'] = len(values)
out['values'] = values
out['stamps'] = [str(t) for t in stamps]
out['decoded'] = list(struct.unpack('<%dh' % 400, ch.read(buf)))
del buf
print(json.dumps(out))
`;

describe('python3-libiio (libiio 0.24 bindings) through iiokit serve', function () {
  this.timeout(60000);
  let ctx: Context;
  let server: ServerHandle;
  let python: string | undefined;

  before(async function () {
    python = pythonWithIio();
    if (!python) requirePeer(this, PEERS.pythonIio);
    ctx = await createContext('emu:');
    server = await serveContext(ctx, { port: 0 });
  });
  after(async () => {
    await server?.close();
    await ctx?.close();
  });

  it('enumerates, reads and writes attributes and refills a buffer', async () => {
    const r = await runAsync(python!, ['-c', SCRIPT, `ip:127.0.0.1:${server.port}`]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.toString()) as {
      devices: string[][];
      channels: string[];
      rate: string;
      rate_after: string;
      waveform: string;
      bad_write: number | string;
      samples: number;
      values: number[];
      stamps: string[];
      decoded: number[];
    };
    assert.deepEqual(out.devices, [
      ['iio:device0', 'ad7606-emu'],
      ['iio:device1', 'ad5689-emu'],
      ['iio:device2', 'adxl345-emu'],
      ['trigger0', 'emu-trig0'],
    ]);
    // (the binding lists channels sorted by id)
    assert.deepEqual(out.channels, ['timestamp', 'voltage0', 'voltage1', 'voltage2', 'voltage3']);
    assert.equal(out.rate, '1000');
    assert.equal(out.rate_after, '2000');
    assert.equal(out.waveform, 'ramp');
    assert.equal(out.bad_write, 22);
    assert.equal(await ctx.findDevice('ad7606-emu')!.readAttr('sampling_frequency'), '2000');
    assert.equal(out.samples, 1200);
    // Each refill continues the ramp where the stream is contiguous (2 kHz → 500 µs).
    let contiguous = 0;
    for (let i = 1; i < out.values.length; i++) {
      const dt = Number(BigInt(out.stamps[i]) - BigInt(out.stamps[i - 1]));
      if (Math.abs(dt - 500000) <= 2) {
        contiguous++;
        assert.equal((out.values[i] - out.values[i - 1]) & 0xffff, 1, `scan ${i}`);
      }
    }
    assert.ok(contiguous >= 1190, `${contiguous} contiguous pairs`);
    // libiio's own demux of the last block agrees with the raw bytes.
    assert.deepEqual(out.decoded, out.values.slice(800));
  });
});
