import type { ContextInfo, ContextVersion, DeviceInfo } from '../../model/info';
import { parseContextXml } from '../../xml/parser';
import type { Link } from './transport';

/**
 * Builds the context a remote iiod describes, as libiio's network backend does: the
 * server's XML, named `network`, its description prefixed with the address, and the
 * attributes `ip,ip-addr` and `uri` added (replacing same-named ones in place).
 */
export function buildRemoteContext(
  xml: string,
  link: Link,
  serverVersion: ContextVersion | undefined,
  source: string,
): ContextInfo {
  const parsed = parseContextXml(xml, {
    backendName: link.backendName ?? 'network',
    source,
    defaultVersion: serverVersion ?? { major: 0, minor: 0, git: '' },
  });
  const attrs = [...parsed.attrs];
  for (const [k, v] of link.contextAttrs()) {
    const i = attrs.findIndex(([name]) => name === k);
    if (i >= 0) attrs[i] = [k, v];
    else attrs.push([k, v]);
  }
  const prefix = link.descriptionPrefix;
  // libiio joins "<address> <description>" only when the XML has a description at all.
  const hasDescription = /<context\s[^>]*\bdescription\s*=/.test(xml.slice(0, 64 * 1024));
  if (link.contextDescription) {
    const description = link.contextDescription(hasDescription ? parsed.description : undefined);
    return { ...parsed, description, attrs };
  }
  const description = hasDescription
    ? prefix
      ? `${prefix} ${parsed.description}`
      : parsed.description
    : prefix;
  return { ...parsed, description, attrs };
}

/** The shape of a device that buffers and attribute addressing depend on. */
function deviceShape(d: DeviceInfo): unknown {
  return {
    id: d.id,
    name: d.name,
    label: d.label,
    attrs: d.attrs.map((a) => a.name),
    buffer: d.bufferAttrs.map((a) => a.name),
    debug: d.debugAttrs.map((a) => a.name),
    channels: d.channels.map((c) => ({
      id: c.id,
      name: c.name,
      out: c.isOutput,
      index: c.index,
      scan: c.isScanElement,
      format: c.format,
      attrs: c.attrs.map((a) => a.name),
    })),
  };
}

/** True when two descriptions have the same devices, channels, formats and attributes. */
export function sameDevices(a: readonly DeviceInfo[], b: readonly DeviceInfo[]): boolean {
  return JSON.stringify(a.map(deviceShape)) === JSON.stringify(b.map(deviceShape));
}

/** True when one device kept its channels and their formats (its buffers can resume). */
export function sameDevice(a: DeviceInfo, b: DeviceInfo | undefined): boolean {
  return !!b && JSON.stringify(deviceShape(a)) === JSON.stringify(deviceShape(b));
}
