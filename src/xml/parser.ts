import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { IioError } from '../errors';
import type { DataFormat } from '../format/scan-type';
import { reorderChannels } from '../model/reorder';
import type { AttrInfo, BufferInfo, ChannelInfo, ContextInfo, DeviceInfo } from '../model/info';
import { decodeAttributeValue } from './attr-value';

/**
 * Reads libiio's XML context description: the 0.x dialect (context, device, channel,
 * scan-element, attribute, debug-attribute, buffer-attribute, context-attribute) and
 * the 1.0 one (buffer, event-attribute, label, value=). Lenient like libiio: unknown
 * elements and attributes are ignored, missing required ones are errors.
 */

type XNode = Record<string, unknown>;

const ARRAYS = new Set([
  'context-attribute',
  'device',
  'channel',
  'attribute',
  'debug-attribute',
  'buffer-attribute',
  'event-attribute',
  'buffer',
  'scan-element',
]);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  attributesGroupName: '@',
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  // References are decoded by decodeAttributeValue, after the whitespace normalisation
  // XML requires (fast-xml-parser does neither, and with htmlEntities off it leaves
  // numeric character references undecoded).
  processEntities: false,
  htmlEntities: false,
  attributeValueProcessor: (name: string, value: string) => decodeAttributeValue(value, name),
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (name) => ARRAYS.has(name),
});

function attrsOf(n: XNode): Record<string, string> {
  return (n['@'] as Record<string, string> | undefined) ?? {};
}

function children(n: XNode, name: string): XNode[] {
  const c = n[name];
  return Array.isArray(c) ? (c as XNode[]) : [];
}

function bad(detail: string, source: string): IioError {
  return new IioError('EINVAL', `${source}: ${detail}`);
}

/** libiio's sscanf("%ce:%c%u/%u[X%u]>>%u") on a scan-element format, without extra checks. */
function parseXmlFormat(text: string, source: string, where: string): DataFormat {
  const m = /^(.)e:(.)(\d+)\/(\d+)(?:X(\d+))?>>(\d+)/.exec(text);
  if (!m || (text.includes('X') && m[5] === undefined)) {
    throw bad(`${where}: bad scan-element format "${text}"`, source);
  }
  const bits = Number(m[3]);
  const length = Number(m[4]);
  const s = m[2];
  return {
    isBigEndian: m[1] === 'b',
    isSigned: s === 's' || s === 'S',
    bits,
    length,
    repeat: m[5] === undefined ? 1 : Number(m[5]),
    shift: Number(m[6]),
    isFullyDefined: s === 'S' || s === 'U' || bits === length,
  };
}

function attrList(
  nodes: XNode[],
  source: string,
  where: string,
  withFilename: boolean,
): AttrInfo[] {
  return nodes.map((n) => {
    const a = attrsOf(n);
    if (a.name === undefined) throw bad(`${where}: an attribute has no name`, source);
    const info: { name: string; filename?: string; value?: string } = { name: a.name };
    if (withFilename) info.filename = a.filename ?? a.name;
    if (a.value !== undefined) info.value = a.value;
    return info;
  });
}

function parseChannel(n: XNode, source: string, deviceId: string): ChannelInfo {
  const a = attrsOf(n);
  if (a.id === undefined) throw bad(`device ${deviceId}: a channel has no id`, source);
  const where = `device ${deviceId}, channel ${a.id}`;
  const scan = children(n, 'scan-element')[0];
  let index = -1;
  let format: DataFormat | undefined;
  let scanScale: number | undefined;
  if (scan) {
    const s = attrsOf(scan);
    if (s.index !== undefined) {
      const v = Number(s.index.trim());
      if (!Number.isInteger(v) || v < 0) throw bad(`${where}: bad scan index "${s.index}"`, source);
      index = v;
    }
    if (s.format !== undefined) format = parseXmlFormat(s.format, source, where);
    if (s.scale !== undefined) {
      const v = parseFloat(s.scale);
      if (Number.isNaN(v)) throw bad(`${where}: bad scale "${s.scale}"`, source);
      scanScale = Math.fround(v); // libiio keeps it as a float
    }
  }
  const ch: ChannelInfo = {
    id: a.id,
    name: a.name,
    label: a.label,
    isOutput: a.type === 'output',
    index,
    isScanElement: !!scan,
    format: scan ? (format ?? ZERO_FORMAT) : undefined,
    scanScale,
    attrs: attrList(children(n, 'attribute'), source, where, true),
    eventAttrs: attrList(children(n, 'event-attribute'), source, where, true),
  };
  return ch;
}

/** What libiio holds for a scan element whose XML gave no format (all zero). */
const ZERO_FORMAT: DataFormat = {
  isBigEndian: false,
  isSigned: false,
  bits: 0,
  length: 0,
  shift: 0,
  repeat: 1,
  isFullyDefined: true,
};

function parseDevice(n: XNode, source: string): DeviceInfo {
  const a = attrsOf(n);
  if (a.id === undefined) throw bad('a device has no id', source);
  const where = `device ${a.id}`;
  const channels = children(n, 'channel').map((c) => parseChannel(c, source, a.id));
  const buffers: BufferInfo[] = children(n, 'buffer').map((b) => {
    const ba = attrsOf(b);
    const index = Number(ba.index ?? '0');
    return {
      index: Number.isInteger(index) ? index : 0,
      direction: ba.direction === 'out' ? 'out' : ba.direction === 'in' ? 'in' : undefined,
      attrs: attrList(children(b, 'attribute'), source, `${where}, buffer ${ba.index}`, false),
    };
  });
  const bufferAttrs = attrList(children(n, 'buffer-attribute'), source, where, false);
  // The 1.0 dialect describes buffer 0's attributes (with their values) under <buffer>;
  // the <buffer-attribute> tags beside it are 0.x compatibility names without values.
  // Buffer 0 gives the values, and any attribute the compatibility list lacks.
  const first = buffers.find((b) => b.index === 0) ?? buffers[0];
  for (const a of first?.attrs ?? []) {
    const same = bufferAttrs.find((x) => x.name === a.name);
    if (!same) bufferAttrs.push({ ...a });
    else if (same.value === undefined && a.value !== undefined) same.value = a.value;
  }
  return {
    id: a.id,
    name: a.name,
    label: a.label,
    channels: reorderChannels(channels),
    attrs: attrList(children(n, 'attribute'), source, where, false),
    bufferAttrs,
    debugAttrs: attrList(children(n, 'debug-attribute'), source, where, false),
    eventAttrs: attrList(children(n, 'event-attribute'), source, where, false),
    buffers: buffers.length ? buffers : undefined,
  };
}

export interface ParseXmlOptions {
  /** Backend name to report (`xml`; `network` when the XML came from iiod, ...). */
  readonly backendName?: string;
  /** Names the source in error messages (a file name, a URI). */
  readonly source?: string;
  /** Used when the XML carries no version-git (libiio reports its own version then). */
  readonly defaultVersion?: { major: number; minor: number; git: string };
}

/** Parses a libiio XML context description into a ContextInfo. */
export function parseContextXml(xml: string, options: ParseXmlOptions = {}): ContextInfo {
  const source = options.source ?? 'XML context';
  const text = xml.replace(/^\uFEFF/, '');
  const valid = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (valid !== true) {
    throw new IioError(
      'EINVAL',
      `${source}: not well-formed XML (line ${valid.err.line}, column ${valid.err.col}: ${valid.err.msg})`,
    );
  }
  let doc: XNode;
  try {
    doc = parser.parse(text) as XNode;
  } catch (err) {
    if (err instanceof IioError) throw new IioError(err.code, `${source}: ${err.detail}`);
    throw new IioError('EINVAL', `${source}: cannot parse XML: ${(err as Error).message}`);
  }
  const root = doc['context'] as XNode | XNode[] | undefined;
  const ctx = Array.isArray(root) ? root[0] : root;
  if (!ctx || typeof ctx !== 'object') {
    throw new IioError(
      'EINVAL',
      `${source}: not an IIO context (the root element must be <context>)`,
    );
  }
  const a = attrsOf(ctx);
  const dv = options.defaultVersion ?? { major: 0, minor: 0, git: '' };
  const version =
    a['version-git'] !== undefined
      ? {
          major: parseInt(a['version-major'] ?? '0', 10) || 0,
          minor: parseInt(a['version-minor'] ?? '0', 10) || 0,
          git: a['version-git'].slice(0, 7),
        }
      : dv;
  const attrs: Array<readonly [string, string]> = [];
  for (const n of children(ctx, 'context-attribute')) {
    const c = attrsOf(n);
    if (c.name === undefined || c.value === undefined) {
      throw new IioError('EINVAL', `${source}: a context-attribute needs a name and a value`);
    }
    // libiio replaces the value of a key given twice, keeping its place.
    const i = attrs.findIndex(([k]) => k === c.name);
    if (i >= 0) attrs[i] = [c.name, c.value];
    else attrs.push([c.name, c.value]);
  }
  return {
    name: options.backendName ?? 'xml',
    description: a.description ?? '',
    version,
    attrs,
    devices: children(ctx, 'device').map((d) => parseDevice(d, source)),
  };
}
