/**
 * `ip:` — contexts served by iiod over TCP: `ip:host[:port]`, `ip:[v6addr]:port`, and
 * `ip:` alone to take the first `_iio._tcp` service DNS-SD finds.
 */
import { isIP } from 'node:net';
import { IioError } from '../../errors';
import type { ContextInfoEntry } from '../../scan';
import type { BackendOpenOptions } from '../../model/backend';
import { IiodBackend, type IiodOptions } from './client';
import { IIOD_PORT, parseIpAddress, TcpLink } from './tcp';
import type { DnssdOptions, DnssdService } from '../../discovery/dnssd';

export { IiodBackend, DEFAULT_TIMEOUT_MS, type IiodOptions } from './client';
export { parseIpAddress, TcpLink, IIOD_PORT } from './tcp';

/** createContext() options of `ip:` contexts. */
export interface IpOptions extends IiodOptions {
  /** How DNS-SD looks for servers (`ip:` and `.local` names): interface, timeout. */
  readonly discovery?: DnssdOptions & { readonly timeoutMs?: number };
}

function dnssd(): typeof import('../../discovery/dnssd') {
  return require('../../discovery/dnssd') as typeof import('../../discovery/dnssd');
}

/** Picks the service `ip:` connects to: libiio takes one on iiod's port; we prefer it. */
function pick(found: readonly DnssdService[]): DnssdService | undefined {
  return found.find((s) => s.port === IIOD_PORT) ?? found[0];
}

/** Opens an `ip:` context. */
export async function openIpBackend(
  uri: string,
  options: BackendOpenOptions = {},
): Promise<IiodBackend> {
  const opts = options as IpOptions;
  const rest = uri.slice(uri.indexOf(':') + 1);
  const addr = parseIpAddress(rest, uri);
  let link: TcpLink;
  if (!addr.host) {
    const found = await dnssd().browse({
      ...opts.discovery,
      timeoutMs: opts.discovery?.timeoutMs ?? 2000,
      stopAfter: 1,
    });
    const s = pick(found);
    if (!s) {
      throw new IioError('ENOENT', 'no iiod found on the local network (DNS-SD _iio._tcp)', {
        uri,
      });
    }
    const a = s.addresses[0];
    link = new TcpLink(a, s.port, a);
  } else {
    let host = addr.host;
    if (!isIP(host) && /\.local\.?$/i.test(host)) {
      // Without nss-mdns the system resolver does not know .local names: ask mDNS (as libiio).
      const sys = await import('node:dns/promises').then((d) =>
        d.lookup(host).then(
          () => true,
          () => false,
        ),
      );
      if (!sys) {
        const found = await dnssd().resolveHost(host, opts.discovery);
        if (found.length) host = found[0];
      }
    }
    link = new TcpLink(host, addr.port, addr.host);
  }
  return IiodBackend.open(uri, link, opts);
}

/** libiio's scan description of a found context (dnssd_fill_context_info). */
export function scanDescription(address: string, info: IiodBackend['info']): string {
  const attr = (k: string): string | undefined => info.attrs.find(([n]) => n === k)?.[1];
  const model = attr('hw_model');
  const serial = attr('hw_serial');
  if (model && serial) return `${address} (${model}), serial=${serial}`;
  if (model) return `${address} ${model}`;
  if (serial) return `${address} ${serial}`;
  if (!info.devices.length) return info.description;
  // libiio drops the last device's name here (a bug); we list them all.
  const names = info.devices.map((d) => d.name).filter((n): n is string => !!n);
  return `${address} (${names.join(',')})`;
}

/** The `ip` scanner: DNS-SD, then a look at each server for its description. */
export async function scanIp(
  options: DnssdOptions & { timeoutMs?: number } = {},
): Promise<ContextInfoEntry[]> {
  const found = await dnssd().browse({ ...options, timeoutMs: options.timeoutMs ?? 1500 });
  const seen = new Set<string>();
  const out: ContextInfoEntry[] = [];
  for (const s of found) {
    const key = `${s.host}:${s.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const address = s.addresses[0];
    const uri = s.port === IIOD_PORT ? `ip:${s.host}` : `ip:${s.host}:${s.port}`;
    let b: IiodBackend | undefined;
    try {
      b = await IiodBackend.open(uri, new TcpLink(address, s.port, address), {
        timeoutMs: 2000,
        reconnect: false,
      });
      out.push({ uri, description: scanDescription(address, b.info) });
    } catch {
      // libiio drops what it cannot connect to (port_knock_discovery_data)
    } finally {
      await b?.close();
    }
  }
  return out;
}
