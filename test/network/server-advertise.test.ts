import assert from 'node:assert/strict';
import makeMdns from 'multicast-dns';
import type { Answer } from 'dns-packet';
import { createContext, serveContext, type Context } from '../../src';
import { join } from 'node:path';
import { externalIPv4, libiioMain, PEERS, requirePeer } from '../helpers/peers';
import { freePort, runAsync } from './server-helpers';

describe('iiokit serve --advertise: DNS-SD (_iio._tcp)', function () {
  this.timeout(20000);
  let ctx: Context;
  before(async () => {
    ctx = await createContext('emu:');
  });
  after(async () => {
    await ctx?.close();
  });

  it('answers a browse with its instance, port and address, and says goodbye on close', async function () {
    requirePeer(this, PEERS.externalIPv4);
    const iface = externalIPv4()!;
    // A private mDNS port: the test neither disturbs nor sees the real network's 5353.
    const mdnsPort = await freePort();
    const server = await serveContext(ctx, {
      port: 0,
      bind: '0.0.0.0',
      allow: [`${iface}/32`],
      advertise: { name: 'iiokit test', interface: iface, mdnsPort },
    });
    const browser = makeMdns({
      port: mdnsPort,
      interface: iface,
      bind: '0.0.0.0',
      reuseAddr: true,
    });
    const seen: Answer[] = [];
    browser.on('response', (r) => seen.push(...r.answers, ...(r.additionals ?? [])));
    try {
      await new Promise<void>((r) => browser.once('ready', () => r()));
      const found = await new Promise<{ port: number; target: string; address?: string }>(
        (resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no answer: ${JSON.stringify(seen)}`)),
            8000,
          );
          const check = (): void => {
            const ptr = seen.find((a) => a.type === 'PTR' && a.name === '_iio._tcp.local');
            const srv = seen.find(
              (a) => a.type === 'SRV' && a.name === 'iiokit test._iio._tcp.local',
            );
            if (!ptr || !srv || srv.type !== 'SRV') return;
            const a = seen.find((x) => x.type === 'A' && x.name === srv.data.target);
            clearTimeout(timer);
            resolve({
              port: srv.data.port,
              target: srv.data.target,
              address: a && a.type === 'A' ? a.data : undefined,
            });
          };
          browser.on('response', check);
          browser.query({ questions: [{ name: '_iio._tcp.local', type: 'PTR' }] });
        },
      );
      assert.equal(found.port, server.port);
      assert.match(found.target, /\.local$/);
      assert.ok(found.address, 'the host address comes along');
      // What was found is served to libiio main's client, in the binary protocol.
      requirePeer(this, PEERS.iiodMain);
      const main = libiioMain()!;
      const info = await runAsync(
        join(main.dir, 'bin/iio_info'),
        ['-u', `ip:${found.address}:${found.port}`],
        { env: main.env },
      );
      assert.equal(info.status, 0, info.stderr);
      assert.match(info.stdout.toString(), /IIO context has 4 devices/);
      assert.ok(server.stats().binary >= 1, 'the connection switched to binary');
      const goodbye = new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 5000);
        browser.on('response', (r) => {
          if (r.answers.some((a) => a.type === 'PTR' && a.ttl === 0)) {
            clearTimeout(t);
            resolve(true);
          }
        });
      });
      await server.close();
      assert.ok(await goodbye, 'a TTL 0 announcement when the server stops');
    } finally {
      await server.close();
      browser.destroy();
    }
  });
});
