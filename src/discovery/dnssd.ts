/**
 * DNS-SD over multicast DNS (RFC 6762/6763), just enough to find and announce iiod's
 * `_iio._tcp` service on the local network without an avahi daemon: browse (PTR query,
 * then SRV/TXT/A/AAAA) and advertise (answer those queries, announce, say goodbye).
 */
import { networkInterfaces, hostname } from 'node:os';
import type { Answer } from 'dns-packet';
import makeMdns from 'multicast-dns';
import { IioError } from '../errors';

/** The service type iiod registers (libiio's dns_sd). */
export const IIO_SERVICE = '_iio._tcp.local';

/** One service instance found by a browse. */
export interface DnssdService {
  /** Instance name, e.g. `iiod on pluto`. */
  readonly name: string;
  /** The SRV target, without the trailing dot: `pluto.local`. */
  readonly host: string;
  readonly port: number;
  /** IPv4 then IPv6 addresses of the host, as announced. */
  readonly addresses: readonly string[];
  /** TXT key/values (iiod publishes none). */
  readonly txt: Readonly<Record<string, string>>;
}

export interface DnssdOptions {
  /** Service type (default `_iio._tcp.local`). */
  readonly type?: string;
  /**
   * IPv4 address of the interface to use (multicast membership and sending); default:
   * every interface. Tests pin it to an interface of their own network namespace.
   */
  readonly interface?: string;
  /** mDNS UDP port (default 5353; tests may use another). */
  readonly mdnsPort?: number;
}

export interface BrowseOptions extends DnssdOptions {
  /** How long to listen, in ms (default 1500). */
  readonly timeoutMs?: number;
  /** Resolve as soon as this many complete services are known. */
  readonly stopAfter?: number;
}

function open(opts: DnssdOptions): ReturnType<typeof makeMdns> {
  // Bound to the wildcard address: a socket bound to an interface address does not
  // receive multicast on Linux. `interface` picks membership and the sending interface.
  return makeMdns({
    port: opts.mdnsPort ?? 5353,
    interface: opts.interface,
    bind: '0.0.0.0',
    reuseAddr: true,
  });
}

function lower(n: string): string {
  return n.replace(/\.$/, '').toLowerCase();
}

function txtOf(data: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const parts = Array.isArray(data) ? data : [data];
  for (const p of parts) {
    const s = Buffer.isBuffer(p) ? p.toString('utf8') : typeof p === 'string' ? p : '';
    if (!s) continue;
    const eq = s.indexOf('=');
    if (eq < 0) out[s] = '';
    else out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

/**
 * Lists the services of a type on the local network: sends PTR queries (at once, then
 * every second) and gathers the answers for `timeoutMs`.
 */
export function browse(options: BrowseOptions = {}): Promise<DnssdService[]> {
  const type = lower(options.type ?? IIO_SERVICE);
  const timeoutMs = options.timeoutMs ?? 1500;
  const instances = new Set<string>();
  const srv = new Map<string, { port: number; target: string }>();
  const txt = new Map<string, Record<string, string>>();
  const addrs = new Map<string, Set<string>>();
  const names = new Map<string, string>(); // lowercased → as announced
  const mdns = open(options);

  const complete = (): DnssdService[] => {
    const out: DnssdService[] = [];
    for (const inst of instances) {
      const s = srv.get(inst);
      if (!s) continue;
      const a = [...(addrs.get(lower(s.target)) ?? [])].sort(
        (x, y) => Number(x.includes(':')) - Number(y.includes(':')),
      );
      if (!a.length) continue;
      const full = names.get(inst) ?? inst;
      const name = full.endsWith(`.${type}`) ? full.slice(0, -type.length - 1) : full;
      out.push({
        name,
        host: s.target.replace(/\.$/, ''),
        port: s.port,
        addresses: a,
        txt: txt.get(inst) ?? {},
      });
    }
    return out;
  };

  return new Promise<DnssdService[]>((resolve, reject) => {
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(again);
      const result = complete();
      mdns.destroy(() => (err ? reject(err) : resolve(result)));
    };
    const asked = new Set<string>();
    const query = (): void => mdns.query([{ name: type, type: 'PTR' }]);
    mdns.on('error', (err: Error) =>
      finish(new IioError('EIO', `mDNS socket: ${err.message}`, {}, { cause: err })),
    );
    mdns.on('warning', () => undefined);
    mdns.on('response', (res) => {
      for (const a of [...(res.answers ?? []), ...(res.additionals ?? [])] as Answer[]) {
        const name = lower(a.name);
        if (a.type === 'PTR' && name === type) {
          const inst = lower(a.data);
          if ((a.ttl ?? 1) === 0) instances.delete(inst);
          else {
            instances.add(inst);
            names.set(inst, a.data.replace(/\.$/, ''));
          }
        } else if (a.type === 'SRV') {
          srv.set(name, { port: a.data.port, target: a.data.target });
        } else if (a.type === 'TXT') {
          txt.set(name, txtOf(a.data));
        } else if (a.type === 'A' || a.type === 'AAAA') {
          let set = addrs.get(name);
          if (!set) addrs.set(name, (set = new Set()));
          set.add(a.data);
        }
      }
      // Ask for what the responder left out (SRV of an instance, addresses of a host).
      for (const inst of instances) {
        const s = srv.get(inst);
        if (!s && !asked.has(inst)) {
          asked.add(inst);
          mdns.query([
            { name: inst, type: 'SRV' },
            { name: inst, type: 'TXT' },
          ]);
        } else if (s && !addrs.has(lower(s.target)) && !asked.has(s.target)) {
          asked.add(s.target);
          mdns.query([
            { name: s.target, type: 'A' },
            { name: s.target, type: 'AAAA' },
          ]);
        }
      }
      if (options.stopAfter && complete().length >= options.stopAfter) finish();
    });
    mdns.on('ready', query);
    const again = setInterval(query, 1000);
    const timer = setTimeout(() => finish(), timeoutMs);
  });
}

export interface AdvertiseOptions extends DnssdOptions {
  /** Instance name (default `iiod on <hostname>`, as iiod). */
  readonly name?: string;
  /** TCP port of the server. */
  readonly port: number;
  /** Host name without `.local` (default: this machine's). */
  readonly host?: string;
  /** Addresses to announce (default: those of `interface`, or of every external interface). */
  readonly addresses?: readonly string[];
  readonly txt?: Readonly<Record<string, string>>;
}

/** A running advertisement. */
export interface Advertisement {
  readonly name: string;
  readonly host: string;
  /** Sends a goodbye (TTL 0) and closes the socket. */
  stop(): Promise<void>;
}

function localAddresses(iface?: string): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (iface) {
        if (list?.some((x) => x.address === iface)) out.push(a.address);
      } else out.push(a.address);
    }
  }
  return [...new Set(out)];
}

/**
 * Announces a service (by default `_iio._tcp`) and answers queries for it until stopped.
 */
export function advertise(options: AdvertiseOptions): Promise<Advertisement> {
  const type = (options.type ?? IIO_SERVICE).replace(/\.$/, '');
  const host = `${(options.host ?? hostname()).replace(/\.local\.?$/, '')}.local`;
  const name = options.name ?? `iiod on ${hostname()}`;
  const instance = `${name}.${type}`;
  const addresses = options.addresses ?? localAddresses(options.interface);
  if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 65535) {
    return Promise.reject(new IioError('EINVAL', `bad service port ${options.port}`));
  }
  const mdns = open(options);
  const txtData = Object.entries(options.txt ?? {}).map(([k, v]) => `${k}=${v}`);

  const records = (ttl: number): { ptr: Answer; srv: Answer; txt: Answer; addr: Answer[] } => ({
    ptr: { name: type, type: 'PTR', ttl, data: instance },
    srv: {
      name: instance,
      type: 'SRV',
      ttl,
      flush: true,
      data: { port: options.port, target: host },
    },
    txt: { name: instance, type: 'TXT', ttl, flush: true, data: txtData.length ? txtData : [''] },
    addr: addresses.map((a): Answer => ({
      name: host,
      type: a.includes(':') ? 'AAAA' : 'A',
      ttl,
      flush: true,
      data: a,
    })),
  });

  const announce = (ttl: number): void => {
    const r = records(ttl);
    mdns.respond({ answers: [r.ptr, r.srv, r.txt, ...r.addr] });
  };

  mdns.on('query', (q) => {
    const r = records(120);
    const answers: Answer[] = [];
    const extra: Answer[] = [];
    for (const question of q.questions ?? []) {
      const qn = lower(question.name);
      const any = (question.type as string) === 'ANY';
      if (qn === lower(type) && (any || question.type === 'PTR')) {
        answers.push(r.ptr);
        extra.push(r.srv, r.txt, ...r.addr);
      } else if (qn === lower(instance)) {
        if (any || question.type === 'SRV') answers.push(r.srv);
        if (any || question.type === 'TXT') answers.push(r.txt);
        extra.push(...r.addr);
      } else if (qn === lower(host)) {
        answers.push(...r.addr.filter((a) => any || a.type === question.type));
      }
    }
    if (answers.length) mdns.respond({ answers, additionals: extra });
  });

  return new Promise<Advertisement>((resolve, reject) => {
    let repeat: NodeJS.Timeout | undefined;
    mdns.once('error', (err: Error) =>
      reject(new IioError('EIO', `mDNS socket: ${err.message}`, {}, { cause: err })),
    );
    mdns.on('warning', () => undefined);
    mdns.once('ready', () => {
      announce(120);
      // RFC 6762 §8.3: announce at least twice, one second apart.
      repeat = setTimeout(() => announce(120), 1000);
      resolve({
        name,
        host,
        stop: () =>
          new Promise<void>((done) => {
            clearTimeout(repeat);
            const r = records(0);
            mdns.respond({ answers: [r.ptr, r.srv, r.txt, ...r.addr] }, () =>
              mdns.destroy(() => done()),
            );
          }),
      });
    });
  });
}

/**
 * Resolves a `.local` host name over mDNS (for hosts without nss-mdns, as libiio's
 * dnssd_resolve_host): its IPv4 then IPv6 addresses, or [] after `timeoutMs`.
 */
export function resolveHost(
  name: string,
  options: DnssdOptions & { timeoutMs?: number } = {},
): Promise<string[]> {
  const want = lower(name);
  const mdns = open(options);
  return new Promise<string[]>((resolve) => {
    const found = new Set<string>();
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const list = [...found].sort((x, y) => Number(x.includes(':')) - Number(y.includes(':')));
      mdns.destroy(() => resolve(list));
    };
    mdns.on('error', finish);
    mdns.on('warning', () => undefined);
    mdns.on('response', (res) => {
      for (const a of [...(res.answers ?? []), ...(res.additionals ?? [])] as Answer[]) {
        if ((a.type === 'A' || a.type === 'AAAA') && lower(a.name) === want) found.add(a.data);
      }
      if (found.size) finish();
    });
    mdns.on('ready', () =>
      mdns.query([
        { name: want, type: 'A' },
        { name: want, type: 'AAAA' },
      ]),
    );
    const timer = setTimeout(finish, options.timeoutMs ?? 1500);
  });
}
