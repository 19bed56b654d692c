import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createContext, type Context } from '../../src';
import { ChannelMask } from '../../src/model/channel-mask';
import { computeScanLayout } from '../../src/format/layout';
import { DemuxPlan } from '../../src/server/demux';
import { SocketReader } from '../../src/server/reader';
import { InputClient, InputHub } from '../../src/server/streams';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('server: waiting on a connection leaves nothing behind', function () {
  this.timeout(60000);
  let ctx: Context;
  let server: Server;
  let ours: Socket;
  let peer: Socket;

  before(async () => {
    ctx = await createContext('emu:');
    // A real connection whose end the waits watch; it stays open throughout (a long capture).
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer((s) => resolve(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const a = server.address();
    peer = connect({ port: typeof a === 'object' && a ? a.port : 0, host: '127.0.0.1' });
    ours = await accepted;
  });
  after(async () => {
    peer?.destroy();
    ours?.destroy();
    server?.close();
    await ctx?.close();
  });

  it('200,000 blocks waited for keep the heap flat (no reaction per wait on the connection)', async () => {
    const reader = new SocketReader(ours);
    const dev = ctx.findDevice('ad7606-emu')!;
    const hub = new InputHub(dev, {
      demux: true,
      queueBytes: 1 << 20,
      maxBlockSeconds: 0.25,
      blocksFor: () => undefined,
    });
    const ch = dev.channels[0];
    const client = new InputClient(hub, ChannelMask.of(dev.channels.length, [ch.number]), 16);
    hub.clients.add(client);
    // What the hub does when the device streams: this reader's layout.
    client.plan = new DemuxPlan(
      computeScanLayout([
        { key: ch.number, index: ch.index, format: ch.format!, isTimestamp: false },
      ]),
      [ch],
    );
    /** One block: the reader waits, the device delivers, the reader takes it. */
    const block = async (): Promise<void> => {
      const waited = client.waitForData(reader);
      client.push({ data: Buffer.alloc(32), done: () => undefined });
      await waited;
      assert.equal(client.take(1 << 20).length, 1);
    };
    for (let i = 0; i < 1000; i++) await block();
    const before = heapAfterGc();
    for (let i = 0; i < 200000; i++) await block();
    const grown = heapAfterGc() - before;
    assert.ok(grown < 4 * 1024 * 1024, `the heap grew by ${(grown / 1048576).toFixed(1)} MiB`);
    // The end still reaches a wait.
    const last = client.waitForData(reader);
    peer.destroy();
    await last;
    assert.ok(reader.isClosed);
  });
});
