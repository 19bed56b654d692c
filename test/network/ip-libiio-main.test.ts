import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createContext, type Context, type IioError } from '../../src';
import type { IiodBackend } from '../../src/backends/iiod';
import { BINARY_LINE } from '../../src/iiod-protocol/ascii';
import {
  decodeHeader,
  encodeHeader,
  HEADER_BYTES,
  OP,
  OPCODE_COUNT,
  responseHeader,
} from '../../src/iiod-protocol/binary';
import { libiioMain, PEERS, requirePeer } from '../helpers/peers';
import { startMainIiod, type RunningIiod } from './helpers/iiod';

const XML = join(__dirname, '../../../test/fixtures/xml/adxl345.xml');
/** What the fixture says accel_x's raw value is (iiod's emu backend answers it from the XML). */
const ACCEL_X_RAW = /filename="in_accel_x_raw" value="([^"]*)"/.exec(readFileSync(XML, 'utf8'))![1];

/** The lines iiod logged from `from` (a length of its log) on. */
function linesSince(server: RunningIiod, from: number): string[] {
  return server.log().slice(from).split('\n');
}

/**
 * Waits (bounded by the test's timeout) until every client that connected since `from`
 * has exited: iiod has then read and logged everything they sent.
 */
async function allExited(server: RunningIiod, from: number): Promise<void> {
  for (;;) {
    const lines = linesSince(server, from);
    const connected = lines.filter((l) => /New client connected/.test(l)).length;
    const exited = lines.filter((l) => /Client exited/.test(l)).length;
    if (connected > 0 && exited >= connected) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("ip: against libiio main's iiod (1.0): what it logs about our client", function () {
  this.timeout(30000);
  let server: RunningIiod;

  before(async function () {
    requirePeer(this, PEERS.iiodMain);
    server = await startMainIiod(libiioMain()!, `emu:${XML}`);
    // the start-up probe (a connection that says nothing) is over before any test looks
    await allExited(server, 0);
  });
  after(async () => server?.stop());

  /** One context with `protocol` on the control connection: what iiod logged meanwhile. */
  async function session(protocol: 'binary' | 'ascii'): Promise<string[]> {
    const from = server.log().length;
    const ctx: Context = await createContext(server.uri, { protocol });
    try {
      assert.equal((ctx.backendForInternalUse as IiodBackend).protocol, protocol);
      const raw = await ctx.device('iio:device0').channel('accel_x').readAttr('raw');
      assert.equal(raw, ACCEL_X_RAW);
    } finally {
      await ctx.close();
    }
    await allExited(server, from);
    return linesSince(server, from);
  }

  it('a binary-protocol context closes without sending ASCII (no "invalid opcode" logged)', async () => {
    const log = await session('binary');
    assert.ok(
      log.some((l) => /New client connected/.test(l)),
      `iiod's log was not captured: ${log.join('\n')}`,
    );
    assert.deepEqual(
      log.filter((l) => /invalid opcode|ERROR/i.test(l)),
      [],
      `iiod's log:\n${log.join('\n')}`,
    );
  });

  it('our opcode table ends where its does: NOP (the last) answers 0, the next is refused', async () => {
    assert.equal(OPCODE_COUNT, OP.NOP + 1, 'NOP is the last opcode of our table');
    const from = server.log().length;
    const s = connect(server.port, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.on('error', () => undefined);
    const bytes = async (n: number): Promise<Buffer> => {
      while (Buffer.concat(got).length < n) await new Promise((r) => setTimeout(r, 10));
      return Buffer.concat(got);
    };
    s.write(BINARY_LINE);
    assert.equal((await bytes(2)).toString('latin1'), '0\n');
    got.length = 0;
    s.write(encodeHeader({ clientId: 0, op: OP.NOP, dev: 0, code: 0 }));
    assert.deepEqual(decodeHeader(await bytes(HEADER_BYTES)), responseHeader(0, 0));
    s.write(encodeHeader({ clientId: 0, op: OPCODE_COUNT, dev: 0, code: 0 }));
    await closed; // iiod ends the connection on an opcode it does not know
    await allExited(server, from);
    const invalid = `invalid opcode 0x${OPCODE_COUNT.toString(16)}`;
    assert.ok(
      linesSince(server, from).some((l) => l.includes(invalid)),
      `iiod's log:\n${linesSince(server, from).join('\n')}`,
    );
  });

  it('an ASCII-protocol context still says EXIT, which 1.0 ignores quietly', async () => {
    const log = await session('ascii');
    assert.deepEqual(
      log.filter((l) => /invalid opcode|ERROR/i.test(l)),
      [],
      `iiod's log:\n${log.join('\n')}`,
    );
  });
});

describe("ip: libiio main's iiod (1.0): attributes by index (binary) = by name (ASCII)", function () {
  this.timeout(120000);
  before(function () {
    requirePeer(this, PEERS.iiodMain);
  });

  // the same iiod answers both: names go through its ASCII parser, indices through its
  // binary responder, so every value matching checks our wire indices (devices and
  // attributes sorted as libiio sorts them, channels in XML order)
  for (const f of ['adxl345.xml', 'pluto.xml', 'ad9081.xml', 'ad7124-8.xml', 'ad5592r.xml']) {
    it(f, async () => {
      const server = await startMainIiod(
        libiioMain()!,
        `emu:${join(__dirname, '../../../test/fixtures/xml', f)}`,
      );
      const byName = await createContext(server.uri, { protocol: 'ascii' });
      const byIndex = await createContext(server.uri, { protocol: 'binary' });
      try {
        assert.equal((byIndex.backendForInternalUse as IiodBackend).protocol, 'binary');
        const read = (a: { read(): Promise<string> }): Promise<string> =>
          a.read().catch((e: IioError) => `error ${e.code}`);
        let values = 0;
        for (const dev of byName.devices) {
          const other = byIndex.device(dev.id);
          const pairs = [
            ...dev.attrs.map((a, i) => [a, other.attrs[i]] as const),
            ...dev.debugAttrs.map((a, i) => [a, other.debugAttrs[i]] as const),
            ...dev.channels.flatMap((c) =>
              c.attrs.map((a, i) => [a, other.channel(c.id, c.isOutput).attrs[i]] as const),
            ),
          ];
          for (const [a, b] of pairs) {
            const [x, y] = [await read(a), await read(b)];
            assert.equal(y, x, `${dev.id} ${a.name}`);
            if (!x.startsWith('error')) values++;
          }
          const trig = await dev.getTrigger().then(
            (t) => t?.id ?? 'none',
            (e: IioError) => `error ${e.code}`,
          );
          const trigB = await other.getTrigger().then(
            (t) => t?.id ?? 'none',
            (e: IioError) => `error ${e.code}`,
          );
          assert.equal(trigB, trig, `${dev.id} trigger`);
        }
        assert.ok(values > 0, 'no attribute value was read');
      } finally {
        await byName.close();
        await byIndex.close();
        await server.stop();
      }
    });
  }
});
