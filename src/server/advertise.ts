/**
 * A minimal DNS-SD advertiser for the server (multicast DNS, RFC 6762/6763): announces
 * `<name>._iio._tcp.local` the way iiod does through avahi, answers queries for it, and
 * says goodbye (TTL 0) when stopped. The network side's src/discovery/dnssd.ts (browse
 * and advertise) was not on main when this was written; the two are meant to be folded.
 */
import { hostname, networkInterfaces } from 'node:os';
import type { Answer } from 'dns-packet';
import makeMdns from 'multicast-dns';
import { IioError } from '../errors';

/** The service type iiod registers. */
export const IIO_SERVICE = '_iio._tcp.local';

export interface AdvertiseOptions {
  readonly port: number;
  /** Instance name (default `iiokit on <hostname>`, as iiod uses `iiod on <hostname>`). */
  readonly name?: string;
  /** Addresses to announce (default: the host's non-internal addresses). */
  readonly addresses?: readonly string[];
  /** IPv4 address of the interface to announce on (default: all). */
  readonly interface?: string;
  /** mDNS UDP port (default 5353; tests may use another). */
  readonly mdnsPort?: number;
}

/** A running announcement. */
export interface Advertisement {
  /** The instance name announced. */
  readonly name: string;
  /** The host name announced (`<hostname>.local`). */
  readonly host: string;
  /** Sends the goodbye and closes the mDNS socket. */
  stop(): Promise<void>;
}

function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i): i is NonNullable<typeof i> => !!i && !i.internal)
    .filter((i) => i.family === 'IPv4' || !i.address.startsWith('fe80'))
    .map((i) => i.address);
}

const same = (a: string, b: string): boolean =>
  a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();

/** Announces an iiod-compatible server on the local network. */
export function advertise(options: AdvertiseOptions): Promise<Advertisement> {
  const { port } = options;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    return Promise.reject(new IioError('EINVAL', `cannot advertise port ${port}`));
  }
  const host = `${hostname().split('.')[0]}.local`;
  const name = options.name ?? `iiokit on ${hostname()}`;
  const instance = `${name}.${IIO_SERVICE}`;
  const addresses = options.addresses ?? hostAddresses();
  const mdns = makeMdns({
    port: options.mdnsPort ?? 5353,
    interface: options.interface,
    bind: '0.0.0.0',
    reuseAddr: true,
  });
  const records = (ttl: number): Answer[] => [
    { name: IIO_SERVICE, type: 'PTR', ttl, data: instance },
    { name: instance, type: 'SRV', ttl, flush: true, data: { port, target: host } },
    { name: instance, type: 'TXT', ttl, flush: true, data: [''] },
    ...addresses.map((a): Answer => ({
      name: host,
      type: a.includes(':') ? 'AAAA' : 'A',
      ttl,
      flush: true,
      data: a,
    })),
  ];
  mdns.on('query', (q) => {
    const all = records(120);
    const wanted = (q.questions ?? []).flatMap((question) =>
      all.filter(
        (r) =>
          same(r.name, question.name) &&
          ((question.type as string) === 'ANY' || question.type === r.type),
      ),
    );
    if (!wanted.length) return;
    // With the PTR, send what a browser needs next (SRV, TXT, addresses) as additionals.
    const additionals = wanted.some((r) => r.type === 'PTR')
      ? all.filter((r) => r.type !== 'PTR')
      : [];
    mdns.respond({ answers: wanted, additionals });
  });
  mdns.on('warning', () => undefined);
  return new Promise((resolve, reject) => {
    mdns.once('error', (err: Error) => {
      mdns.destroy();
      reject(new IioError('EIO', `DNS-SD: ${err.message}`, {}, { cause: err }));
    });
    mdns.once('ready', () => {
      mdns.respond({ answers: records(120) });
      // RFC 6762 §8.3: announce at least twice, a second apart.
      const again = setTimeout(() => mdns.respond({ answers: records(120) }), 1000);
      resolve({
        name,
        host,
        stop: () =>
          new Promise<void>((done) => {
            clearTimeout(again);
            mdns.respond({ answers: records(0) }, () => mdns.destroy(() => done()));
          }),
      });
    });
  });
}
