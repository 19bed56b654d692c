import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext, IioError, type Context } from '../../src';
import { iiokit } from '../helpers/cli';
import { compareInfo } from '../helpers/info-compare';
import { PEERS, requirePeer, run } from '../helpers/peers';
import { startXmlIiod, type RunningIiod } from './helpers/iiod';

/**
 * Resolves once every thread of `pid` is stopped: SIGSTOP reaches each thread on its own,
 * and on a loaded machine iiod could still answer a request sent right after kill().
 */
async function everyThreadStopped(pid: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const states = readdirSync(`/proc/${pid}/task`).map(
      (t) => /State:\s+(\S)/.exec(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'))?.[1],
    );
    if (states.every((st) => st === 'T' || st === 't')) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`iiod ${pid} did not stop`);
}

/**
 * `serial:` against libiio 0.24's iiod serving an XML context over a pseudo-terminal pair
 * (socat), as ../shared/iio-vm/README.md describes. Debian's libiio has no serial client:
 * the reference for what iiod answers is iio_info through the same iiod binary on TCP.
 */
const XML = join(__dirname, '../../../test/fixtures/xml/adxl345.xml');

async function waitFor(what: string, ok: () => boolean, ms = 10000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Reads the first attribute of adxl345's first channel: 'value', or the error. */
function prober(ctx: Context): () => Promise<unknown> {
  const dev = ctx.devices.find((d) => d.name === 'adxl345')!;
  return () =>
    dev.channels[0].readAttr(dev.channels[0].attrs[0].name).then(
      () => 'value',
      (e: unknown) => e,
    );
}

/** An errno code, or what the read gave. */
function answer(x: unknown): unknown {
  return x instanceof IioError ? x.code : x;
}

/** A socat pty pair with iiod on one end; `peer` is the end our client opens. */
class SerialIiod {
  socat?: ChildProcess;
  iiod?: ChildProcess;
  readonly server: string;
  readonly peer: string;
  constructor(readonly dir: string) {
    this.server = join(dir, 'ttyA');
    this.peer = join(dir, 'ttyB');
  }

  async start(): Promise<void> {
    this.socat = spawn(
      'socat',
      [`pty,raw,echo=0,link=${this.server}`, `pty,raw,echo=0,link=${this.peer}`],
      { stdio: 'ignore' },
    );
    await waitFor(
      'socat to make the pty pair',
      () => existsSync(this.server) && existsSync(this.peer),
    );
    this.iiod = spawn('iiod', ['-u', `xml:${XML}`, '-s', this.server], { stdio: 'ignore' });
    // iiod opens its end at once; give it a moment to configure the line
    await new Promise((r) => setTimeout(r, 300));
  }

  stop(): void {
    this.iiod?.kill('SIGKILL');
    this.socat?.kill('SIGKILL');
    this.iiod = this.socat = undefined;
  }

  async stopped(): Promise<void> {
    this.stop();
    await waitFor('the pty links to go', () => !existsSync(this.peer));
  }
}

describe('serial: against libiio 0.24 iiod on a pseudo-terminal', function () {
  this.timeout(60000);
  let dir: string;
  let line: SerialIiod;

  before(async function () {
    requirePeer(this, PEERS.socat);
    requirePeer(this, PEERS.iiod);
    requirePeer(this, PEERS.iioInfo);
    dir = mkdtempSync(join(tmpdir(), 'iiokit-serial-'));
    line = new SerialIiod(dir);
    await line.start();
  });
  after(() => {
    line?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('iiokit info -u serial:PTY,115200,8n1 shows the context iiokit info -x shows', async () => {
    const uri = `serial:${line.peer},115200,8n1`;
    const ours = await iiokit(['info', '-u', uri]);
    assert.equal(ours.status, 0, ours.stderr);
    const xml = await iiokit(['info', '-x', XML]);
    assert.equal(xml.status, 0, xml.stderr);
    assert.match(ours.stdout, /^IIO context created with serial backend\.$/m);
    // libiio's serial backend: the description is "<port>: <what the port is>"
    const pts = realpathSync(line.peer).replace(/^\/dev\//, '');
    assert.match(
      ours.stdout,
      new RegExp(`^Backend description string: ${line.peer}: ${pts}$`, 'm'),
    );
    // ... and the uri always spells out the flow control
    assert.match(ours.stdout, new RegExp(`^\\turi: serial:${line.peer},115200,8n1n$`, 'm'));
    // The same devices, channels and attributes; iiod answers ENOSYS where the XML holds
    // a value (the next test checks those answers against libiio's own client).
    const shape = (text: string): string[] =>
      text
        .split('\n')
        .filter(
          (l) => !/^(IIO context created|Backend |Library version|Compiled with|\turi: )/.test(l),
        )
        .map((l) => l.replace(/^(\t\t\t\t(debug )?attr +\d+: \S+) (value: .*|ERROR: .*)$/, '$1'));
    assert.deepEqual(shape(ours.stdout), shape(xml.stdout));
    assert.ok(
      shape(ours.stdout).some((l) => /attr +\d+: /.test(l)),
      'the context has attributes',
    );
  });

  it('answers attribute reads as iiod does (iio_info through the same iiod on TCP)', async () => {
    let tcp: RunningIiod | undefined;
    try {
      tcp = await startXmlIiod(XML);
      const theirs = run('iio_info', ['-u', tcp.uri]);
      assert.equal(theirs.status, 0, theirs.stderr);
      const ours = await iiokit(['info', '-u', `serial:${line.peer}`]);
      assert.equal(ours.status, 0, ours.stderr);
      // everything from the device list on: the context attributes name each one's link
      const body = (text: string): string =>
        text.slice(text.search(/^IIO context has \d+ devices/m));
      const r = compareInfo(body(theirs.stdout), body(ours.stdout), { skipBackendVersion: true });
      assert.ok(r.ok, r.firstDifference);
      assert.equal(r.substitutions, 0);
    } finally {
      await tcp?.stop();
    }
  });

  it('reads attributes through the API with the errno iiod sends', async () => {
    const ctx = await createContext(`serial:${line.peer},115200`);
    try {
      assert.equal(ctx.name, 'serial');
      const dev = ctx.devices.find((d) => d.name === 'adxl345');
      assert.ok(dev, ctx.devices.map((d) => d.name).join(', '));
      const ch = dev.channels.find((c) => c.attrs.some((a) => a.name === 'raw'));
      assert.ok(ch);
      const err = await ch.readAttr('raw').then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof IioError, String(err));
      assert.equal(err.code, 'ENOSYS', err.message);
      assert.match(err.message, /attribute raw/);
    } finally {
      await ctx.close();
    }
  });

  it('says clearly when the port is busy, missing or the URI malformed', async () => {
    const first = await createContext(`serial:${line.peer}`);
    try {
      const codeOf = async (uri: string): Promise<IioError> => {
        const e = await createContext(uri).then(
          async (c) => {
            await c.close();
            return undefined;
          },
          (x: unknown) => x,
        );
        assert.ok(e instanceof IioError, `${uri}: ${String(e)}`);
        return e;
      };
      const busy = await codeOf(`serial:${line.peer},115200`);
      assert.equal(busy.code, 'EBUSY');
      assert.match(busy.message, /is in use by another program/);
      const missing = await codeOf(`serial:${join(dir, 'nope')}`);
      assert.equal(missing.code, 'ENOENT');
      assert.match(missing.message, /does not exist/);
      for (const bad of [`serial:${line.peer},fast`, `serial:${line.peer},115200,8q1`, 'serial:']) {
        const e = await codeOf(bad);
        assert.equal(e.code, 'EINVAL', bad);
        assert.match(e.message, /malformed serial: URI/);
      }
    } finally {
      await first.close();
    }
    // the first context let go of the port: it opens again
    const again = await createContext(`serial:${line.peer}`);
    await again.close();
  });

  it('times out clearly while iiod does not answer, and answers again once it does', async () => {
    const ctx = await createContext(`serial:${line.peer}`, { timeoutMs: 500 });
    try {
      const probe = prober(ctx);
      const before = await probe();
      line.iiod!.kill('SIGSTOP');
      await everyThreadStopped(line.iiod!.pid!);
      let late: unknown;
      try {
        late = await probe();
      } finally {
        line.iiod!.kill('SIGCONT');
      }
      assert.ok(late instanceof IioError, String(late));
      assert.equal(late.code, 'ETIMEDOUT', late.message);
      assert.match(late.message, /500 ms/);
      // the late reply iiod sends once it runs again must not be taken for the next one
      let after: unknown;
      for (let i = 0; i < 20; i++) {
        after = await probe();
        if (!(after instanceof IioError) || after.code !== 'ENOTCONN') break;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(answer(after), answer(before));
    } finally {
      await ctx.close();
    }
  });

  it('reconnects when the line comes back, after a clear error while it is gone', async () => {
    let ctx: Context | undefined;
    try {
      ctx = await createContext(`serial:${line.peer}`);
      const events: string[] = [];
      ctx.on('disconnected', () => events.push('disconnected'));
      ctx.on('reconnected', () => events.push('reconnected'));
      const probe = prober(ctx);
      const before = await probe();
      await line.stopped();
      await waitFor('the loss to be noticed', () => events.includes('disconnected'));
      const gone = await probe();
      assert.ok(gone instanceof IioError, String(gone));
      assert.equal(gone.code, 'ENOTCONN', gone.message);
      assert.match(gone.message, /not connected to iiod at serial port .*: reconnecting/);
      await line.start();
      await waitFor('the reconnection', () => events.includes('reconnected'), 20000);
      const after = await probe();
      // the same answer as before the outage (iiod answers ENOSYS for an XML context)
      assert.equal(answer(after), answer(before));
      assert.deepEqual(events, ['disconnected', 'reconnected']);
    } finally {
      await ctx?.close();
    }
  });
});
