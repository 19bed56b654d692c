/**
 * Event attributes over ip: against libiio main's iiod (1.0) serving its emu backend on
 * libiio's own test context with event attributes (test/fixtures/xml/libiio-event_attrs.xml):
 * our client reads and writes them over the binary protocol (libiio main's iio_attr is
 * the oracle, on the same server), `iiokit attr -E/-e` prints what its iio_attr prints,
 * and an ASCII connection refuses them clearly.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createContext, IioError, type Context } from '../../src';
import { iiokit } from '../helpers/cli';
import { libiioMain, PEERS, requirePeer, run } from '../helpers/peers';
import { startMainIiod, type RunningIiod } from './helpers/iiod';

const XML = join(__dirname, '../../../test/fixtures/xml/libiio-event_attrs.xml');
const DEV = 'test_event_device';

/**
 * iio_attr queries on event attributes; run in order (writes change what later reads
 * see), once with libiio main's iio_attr and once with ours, each on a fresh server.
 */
const QUERIES = [
  '-e',
  '-E',
  `-e ${DEV}`,
  `-E ${DEV}`,
  `-e ${DEV} accel_z`,
  `-e ${DEV} accel_z thresh_rising_value`,
  `-E ${DEV} events_enabled`,
  `-e ${DEV} accel_z thresh_rising_value 12`,
  `-v -e ${DEV} accel_z thresh_rising_value 13`,
  `-q -e ${DEV} accel_y thresh_falling_value -5`,
  `-e ${DEV} accel_y thresh_falling_value`,
  `-v -E ${DEV} events_enabled 0`,
  `-E ${DEV} events_enabled`,
  `-e ${DEV} . *rising*`,
  `-e ${DEV} accel_* thresh_rising_en`,
  `-e -I ${DEV.toUpperCase()} ACCEL_Z THRESH_RISING_EN`,
  `-e -i ${DEV}`,
  `-e -s ${DEV}`,
  `-e -o ${DEV} accel_x`,
  '-e nosuch',
  `-e ${DEV} nosuch`,
  `-e ${DEV} accel_z nosuch`,
  `-E ${DEV} nosuch`,
  `-e -d ${DEV}`,
  `-E ${DEV} . 1`,
  `-e ${DEV} accel_z thresh_rising_value 1 2`,
  `-E ${DEV} a b c`,
];

describe("ip: event attributes against libiio main's iiod (binary protocol)", function () {
  this.timeout(120000);
  let server: RunningIiod;
  let ctx: Context;

  before(async function () {
    requirePeer(this, PEERS.iiodMain);
    server = await startMainIiod(libiioMain()!, `emu:${XML}`);
    ctx = await createContext(server.uri, { protocol: 'binary' });
  });
  after(async () => {
    await ctx?.close();
    await server?.stop();
  });

  /** libiio main's iio_attr on the same server: the independent reading. */
  function theirRead(args: string[]): string {
    const m = libiioMain()!;
    const r = run(join(m.dir, 'bin/iio_attr'), ['-u', server.uri, ...args], { env: m.env });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  }

  it('lists them as the server describes them', () => {
    const dev = ctx.device(DEV);
    assert.deepEqual(
      dev.eventAttrs.map((a) => a.name),
      ['events_enabled'],
    );
    assert.deepEqual(
      dev.channels.map((c) => [c.id, c.eventAttrs.length]),
      [
        ['accel_x', 4],
        ['accel_y', 4],
        ['accel_z', 2],
      ],
    );
    assert.equal(
      dev.channel('accel_x').eventAttr('thresh_rising_value').filename,
      'in_accel_x_thresh_rising_value',
    );
  });

  it('reads them (values the fixture holds, as libiio main reads them)', async () => {
    const x = ctx.device(DEV).channel('accel_x');
    for (const a of x.eventAttrs) {
      assert.equal(await a.read(), theirRead(['-e', DEV, 'accel_x', a.name]), a.name);
    }
    assert.equal(await x.readEventAttr('thresh_falling_value'), '-1000');
    assert.equal(await ctx.device(DEV).readEventAttr('events_enabled'), '1');
  });

  it('writes them: libiio main reads back what we wrote', async () => {
    const y = ctx.device(DEV).channel('accel_y');
    await y.writeEventAttr('thresh_rising_value', 4321);
    assert.equal(theirRead(['-e', DEV, 'accel_y', 'thresh_rising_value']), '4321');
    await ctx.device(DEV).writeEventAttr('events_enabled', 0);
    assert.equal(theirRead(['-E', DEV, 'events_enabled']), '0');
    await ctx.device(DEV).writeEventAttr('events_enabled', 1);
  });

  it('an ASCII connection cannot address them: ENOSYS naming the attribute', async () => {
    const ascii = await createContext(server.uri, { protocol: 'ascii' });
    try {
      const a = ascii.device(DEV).channel('accel_z').eventAttr('thresh_rising_en');
      await assert.rejects(a.read(), (e: unknown) => {
        assert.ok(e instanceof IioError, String(e));
        assert.equal(e.code, 'ENOSYS');
        assert.match(e.message, /binary protocol/);
        assert.match(e.message, /channel accel_z/);
        assert.match(e.message, /attribute thresh_rising_en/);
        return true;
      });
      await assert.rejects(ascii.device(DEV).writeEventAttr('events_enabled', 1), /ENOSYS/);
    } finally {
      await ascii.close();
    }
  });
});

describe("iiokit attr -E/-e = libiio main's iio_attr -E/-e (over its iiod)", function () {
  this.timeout(300000);
  before(function () {
    requirePeer(this, PEERS.iiodMain);
  });

  it('every query: stdout, stderr and exit status', async () => {
    const m = libiioMain()!;
    const record = async (
      runOne: (
        uri: string,
        args: string[],
      ) => Promise<{ stdout: string; stderr: string; status: number | null }>,
    ): Promise<Array<{ stdout: string; stderr: string; status: number | null }>> => {
      const server = await startMainIiod(m, `emu:${XML}`);
      try {
        const out = [];
        for (const q of QUERIES) out.push(await runOne(server.uri, q.split(' ')));
        return out;
      } finally {
        await server.stop();
      }
    };
    const theirs = await record(async (uri, args) =>
      run(join(m.dir, 'bin/iio_attr'), ['-u', uri, ...args], { env: m.env }),
    );
    const ours = await record((uri, args) => iiokit(['attr', '-u', uri, ...args]));
    const failures: string[] = [];
    QUERIES.forEach((q, i) => {
      for (const k of ['stdout', 'stderr', 'status'] as const) {
        if (ours[i][k] !== theirs[i][k])
          failures.push(`"${q}" ${k}:\n--- iio_attr\n${theirs[i][k]}\n--- iiokit\n${ours[i][k]}`);
      }
    });
    assert.deepEqual(failures, []);
    // the list reached every kind of answer
    assert.ok(theirs.some((r) => r.status === 1 && /Could not find/.test(r.stderr)));
    assert.ok(theirs.some((r) => /wrote \d+ bytes/.test(r.stdout)));
  });
});
