import { readFile } from 'node:fs/promises';
import { IioError } from '../../errors';
import type { ContextInfo, DeviceInfo } from '../../model/info';
import { LIBRARY_VERSION } from '../../version';
import type { AttrRef, Backend, BackendBuffer, BackendOpenOptions } from '../../model/backend';
import { decodeXmlBytes, parseContextXml } from '../../xml';
import { tracer } from '../../util/trace';

const trace = tracer('xml');

/**
 * `xml:` — a context from libiio's XML description. Nothing to talk to: attribute reads
 * answer the value the XML carries, else ENOSYS (as libiio); writes, triggers and buffers
 * answer ENOSYS.
 */
export class XmlBackend implements Backend {
  readonly name = 'xml';

  constructor(
    readonly uri: string,
    readonly info: ContextInfo,
  ) {}

  private enosys(
    what: string,
    ref?: { device?: DeviceInfo; channel?: { id: string }; attr?: { name: string } },
  ): IioError {
    if (trace.enabled)
      trace(
        `${what} refused (ENOSYS): ${[ref?.device?.id, ref?.channel?.id, ref?.attr?.name].filter(Boolean).join('/')}`,
      );
    return new IioError('ENOSYS', `${what}: an XML context has no hardware behind it`, {
      uri: this.uri,
      device: ref?.device?.id,
      channel: ref?.channel?.id,
      attr: ref?.attr?.name,
    });
  }

  async readAttr(ref: AttrRef): Promise<string> {
    if (ref.attr.value !== undefined) return ref.attr.value;
    if (ref.kind === 'context') {
      const found = this.info.attrs.find(([k]) => k === ref.attr.name);
      if (found) return found[1];
    }
    throw this.enosys('read', ref);
  }

  async writeAttr(ref: AttrRef): Promise<number> {
    throw this.enosys('write', ref);
  }

  async getTrigger(device: DeviceInfo): Promise<string | null> {
    throw this.enosys('get trigger', { device });
  }

  async setTrigger(device: DeviceInfo): Promise<void> {
    throw this.enosys('set trigger', { device });
  }

  async openBuffer(device: DeviceInfo): Promise<BackendBuffer> {
    throw this.enosys('open buffer', { device });
  }

  async close(): Promise<void> {}
}

/** Opens `xml:path` (or `xml:<?xml ...` with the document inline). */
export async function openXmlBackend(
  uri: string,
  _options: BackendOpenOptions = {},
): Promise<XmlBackend> {
  const rest = uri.slice(uri.indexOf(':') + 1);
  if (!rest) throw new IioError('EINVAL', 'xml: needs a file name, e.g. xml:context.xml', { uri });
  let text: string;
  let source: string;
  if (rest.trimStart().startsWith('<')) {
    text = rest;
    source = 'inline XML';
  } else {
    source = rest;
    try {
      text = decodeXmlBytes(await readFile(rest));
    } catch (err) {
      throw IioError.wrap(err, { uri, file: rest, op: 'read XML context' });
    }
  }
  const info = parseContextXml(text, { source, defaultVersion: LIBRARY_VERSION });
  trace(
    `opened ${source} with ${info.devices.length} devices, ${info.attrs.length} context attributes`,
  );
  return new XmlBackend(uri, info);
}
