import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PEERS, requirePeer } from '../helpers/peers';
import { pythonWithIio, runAsync } from './server-helpers';

/**
 * Issue 19 through the network: `iiokit serve -u emu:FILE.xml` (its own process) and
 * libiio 0.24's Python bindings (Debian's python3-libiio) as the client — the way a
 * Python client library for these boards meets the emulator.
 */

const BIN = join(__dirname, '../../../bin/iiokit.js');
const DIR = join(__dirname, '../../../test/fixtures/xml');

/** Starts `iiokit serve -u emu:FILE -p 0` and returns its URI. */
async function serve(file: string): Promise<{ uri: string; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [BIN, 'serve', '-u', `emu:${join(DIR, file)}`, '-p', '0'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  const uri = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no start line: ${err}`)), 20000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving \S+ at (ip:127\.0\.0\.1:\d+)/.exec(err);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  return {
    uri,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('close', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

/** Helpers every script shares: a DFT peak (no numpy on the test machines) and I/O. */
const PRELUDE = String.raw`
import iio, json, math, struct, sys
ctx = iio.Context(sys.argv[1])
arg = json.loads(sys.argv[2])
out = {}

def peak(I, Q, rate):
    n = len(I)
    cos = [math.cos(-2 * math.pi * j / n) for j in range(n)]
    sin = [math.sin(-2 * math.pi * j / n) for j in range(n)]
    best, bk = -1.0, 0
    for k in (range(n) if Q else range(1, n // 2 + 1)):
        re = im = 0.0
        for t in range(n):
            j = (k * t) % n
            q = Q[t] if Q else 0
            re += I[t] * cos[j] - q * sin[j]
            im += I[t] * sin[j] + q * cos[j]
        m = re * re + im * im
        if m > best:
            best, bk = m, k
    if Q and bk > n / 2:
        bk -= n
    return bk * rate / n

def capture(dev, ids, n):
    chans = [dev.find_channel(i, False) for i in ids]
    for c in dev.channels:
        c.enabled = c in chans or c.id in ids
    buf = iio.Buffer(dev, n)
    buf.refill()
    buf.refill()
    data = [list(struct.unpack('<%dh' % n, c.read(buf))) for c in chans]
    del buf
    return data

def errno_of(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno
`;

async function python(
  script: string,
  uri: string,
  arg: unknown = {},
): Promise<Record<string, unknown>> {
  const r = await runAsync(pythonWithIio()!, ['-c', PRELUDE + script, uri, JSON.stringify(arg)], {
    timeoutMs: 120000,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.toString()) as Record<string, unknown>;
}

const FIR = (() => {
  let s = 'RX 3 GAIN -6 DEC 4\nTX 3 GAIN 0 INT 4\n';
  for (let i = 0; i < 128; i++) s += `${(i * 37) % 200},${(i * 53) % 200}\n`;
  return s;
})();

const FIR_SCRIPT = String.raw`
phy = ctx.find_device('ad9361-phy')
rx = phy.find_channel('voltage0', False)
trx = phy.find_channel('out', False)
def set_rate():
    rx.attrs['sampling_frequency'].value = '1000000'
out['before'] = errno_of(set_rate)
phy.attrs['filter_fir_config'].value = arg['fir']
out['config'] = phy.attrs['filter_fir_config'].value
trx.attrs['voltage_filter_fir_en'].value = '1'
out['available'] = rx.attrs['sampling_frequency_available'].value
out['after'] = errno_of(set_rate)
out['rate'] = rx.attrs['sampling_frequency'].value
out['core'] = ctx.find_device('cf-ad9361-lpc').find_channel('voltage0', False).attrs['sampling_frequency'].value
print(json.dumps(out))
`;

/** Loopback on (arg.loop: where to write what), one tone, RX captured, its peak. */
const TONE_SCRIPT = String.raw`
rxd = ctx.find_device(arg['rx'])
txd = ctx.find_device(arg['tx'])
rate = float(rxd.find_channel(arg['rxch'][0], False).attrs['sampling_frequency'].value)
f = rate * arg['bin'] / arg['n']
for kind, dev, ch, name, value in arg['loop']:
    d = ctx.find_device(dev)
    if kind == 'debug':
        d.debug_attrs[name].value = value
    else:
        d.attrs[name].value = value
if arg['dma']:
    tch = [txd.find_channel(i, True) for i in arg['txch']]
    for c in tch:
        c.enabled = True
    txbuf = iio.Buffer(txd, arg['n'], True)
    data = bytearray()
    for k in range(arg['n']):
        p = 2 * math.pi * f * k / rate
        data += struct.pack('<hh', int(round(8000 * math.cos(p))), int(round(8000 * math.sin(p))))
    txbuf.write(data)
    txbuf.push()
else:
    for c in txd.channels:
        if not c.id.startswith('altvoltage'):
            continue
        n = int(c.id[len('altvoltage'):])
        if arg['real']:
            mine = c.name == arg['tone']
        else:
            mine = n // 4 == arg['pair'] - 1 and n % 2 == 0
        c.attrs['frequency'].value = str(int(round(f)))
        c.attrs['scale'].value = str(arg['scale']) if mine else '0'
        if 'phase' in c.attrs:
            c.attrs['phase'].value = '90000' if (n // 2) % 2 == 0 and not arg['real'] else '0'
    txd.find_channel('altvoltage0', True).attrs['raw'].value = '1'
data = capture(rxd, arg['rxch'], arg['n'])
if arg['dma']:
    # Before the context goes: libiio 0.24's bindings crash when Python frees them the
    # other way round at exit.
    del txbuf
out['f'] = int(round(f))
out['peak'] = peak(data[0], None if arg['real'] else data[1], rate)
out['max'] = max(data[0])
print(json.dumps(out))
`;

describe('issue 19 through iiokit serve -u emu:FILE.xml, with python3-libiio', function () {
  this.timeout(180000);
  before(function () {
    if (!pythonWithIio()) requirePeer(this, PEERS.pythonIio);
  });

  for (const file of ['pluto.xml', 'fmcomms2-3.xml']) {
    it(`${file}: a FIR load, then 1 MS/s is accepted`, async () => {
      const s = await serve(file);
      try {
        const out = await python(FIR_SCRIPT, s.uri, { fir: FIR });
        assert.equal(out.before, 22, '1 MS/s refused before (EINVAL)');
        assert.equal(out.config, 'FIR Rx: 128,4 Tx: 128,4');
        assert.equal(out.available, '[520833 1 61440000]');
        assert.equal(out.after, 0);
        assert.equal(out.rate, '1000000');
        assert.equal(out.core, '1000000');
      } finally {
        await s.stop();
      }
    });
  }

  const n = 256;
  const cases: Array<[string, Record<string, unknown>, number]> = [
    [
      'pluto.xml',
      {
        rx: 'cf-ad9361-lpc',
        tx: 'cf-ad9361-dds-core-lpc',
        rxch: ['voltage0', 'voltage1'],
        loop: [['debug', 'ad9361-phy', null, 'loopback', '1']],
        pair: 1,
        scale: 0.5,
        bin: 19,
      },
      1024,
    ],
    [
      'fmcomms2-3.xml',
      {
        rx: 'cf-ad9361-lpc',
        tx: 'cf-ad9361-dds-core-lpc',
        rxch: ['voltage0', 'voltage1'],
        txch: ['voltage0', 'voltage1'],
        loop: [['debug', 'ad9361-phy', null, 'loopback', '1']],
        dma: true,
        bin: -23,
      },
      500,
    ],
    [
      'ad9081.xml',
      {
        rx: 'axi-ad9081-rx-hpc',
        tx: 'axi-ad9081-tx-hpc',
        rxch: ['voltage0_i', 'voltage0_q'],
        loop: [['device', 'axi-ad9081-rx-hpc', null, 'loopback_mode', '1']],
        pair: 1,
        scale: 0.25,
        bin: 32,
      },
      8192,
    ],
    [
      'adrv9002.xml',
      {
        rx: 'axi-adrv9002-rx-lpc',
        tx: 'axi-adrv9002-tx-lpc',
        rxch: ['voltage0_i', 'voltage0_q'],
        loop: [['debug', 'adrv9002-phy', null, 'tx0_ssi_test_mode_loopback_en', '1']],
        pair: 1,
        scale: 0.5,
        bin: 7,
      },
      16384,
    ],
    [
      'daq2.xml',
      {
        rx: 'axi-ad9680-hpc',
        tx: 'axi-ad9144-hpc',
        rxch: ['voltage0'],
        loop: [],
        real: true,
        tone: '1A',
        scale: 0.25,
        bin: 40,
      },
      2048,
    ],
  ];
  for (const [file, arg, amplitude] of cases) {
    it(`${file}: a TX tone at f is seen on RX with its spectrum peak at f`, async () => {
      const s = await serve(file);
      try {
        const out = await python(TONE_SCRIPT, s.uri, { n, dma: false, real: false, ...arg });
        assert.equal(out.peak, out.f);
        assert.notEqual(out.f, 0);
        // The tone's amplitude as the ADC sees it (DAC full scale × scale, in ADC bits).
        const max = out.max as number;
        assert.ok(max > amplitude * 0.9 && max <= amplitude, `max ${max}, tone ${amplitude}`);
      } finally {
        await s.stop();
      }
    });
  }

  for (const [file, device, channel, attr, value] of [
    ['ad9081.xml', 'axi-ad9081-rx-hpc', 'voltage0_i', 'test_mode', 'midscale_short'],
    ['adxl355.xml', 'adxl355', 'accel_x', 'sampling_frequency', '1000'],
    ['daq2.xml', 'axi-ad9680-hpc', 'voltage1', 'test_mode', 'pn23'],
  ] as const) {
    it(`${file}: ${attr} takes a value its ERROR list cannot check`, async () => {
      const s = await serve(file);
      try {
        const out = await python(
          String.raw`
ch = ctx.find_device(arg['device']).find_channel(arg['channel'], False)
def read_list():
    return ch.attrs[arg['attr'] + '_available'].value
out['list'] = errno_of(read_list)
ch.attrs[arg['attr']].value = arg['value']
out['value'] = ch.attrs[arg['attr']].value
print(json.dumps(out))
`,
          s.uri,
          { device, channel, attr, value },
        );
        assert.equal(out.list, 5, 'reading the ERROR list fails with EIO');
        assert.equal(out.value, value);
      } finally {
        await s.stop();
      }
    });
  }

  it('adis16475 and pluto: character references read back decoded, literal newlines as spaces', async () => {
    const script = String.raw`
d = ctx.find_device(arg['device'])
out['value'] = d.attrs[arg['attr']].value
print(json.dumps(out))
`;
    let s = await serve('adis16475.xml');
    try {
      const out = await python(script, s.uri, {
        device: 'adis16505-2',
        attr: 'current_timestamp_clock',
      });
      assert.equal(out.value, 'realtime\n');
    } finally {
      await s.stop();
    }
    s = await serve('pluto.xml');
    try {
      const out = await python(script, s.uri, {
        device: 'ad9361-phy',
        attr: 'rssi_gain_step_error',
      });
      assert.equal(
        out.value,
        'lna_error: 0 0 0 0 mixer_error: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 gain_step_calib_reg_val: 0 0 0 0 0',
      );
    } finally {
      await s.stop();
    }
  });
});
