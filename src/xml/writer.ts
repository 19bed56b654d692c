import { formatScanType } from '../format/scan-type';
import type { AttrInfo, ChannelInfo, ContextInfo, DeviceInfo } from '../model/info';
import { cFixed } from '../util/cformat';
import { escapeAttributeValue } from './attr-value';

/** The DTD libiio 0.24 embeds in every context XML (iio_genxml). */
export const XML_HEADER_0X =
  '<?xml version="1.0" encoding="utf-8"?>' +
  '<!DOCTYPE context [' +
  '<!ELEMENT context (device | context-attribute)*>' +
  '<!ELEMENT context-attribute EMPTY>' +
  '<!ELEMENT device (channel | attribute | debug-attribute | buffer-attribute)*>' +
  '<!ELEMENT channel (scan-element?, attribute*)>' +
  '<!ELEMENT attribute EMPTY>' +
  '<!ELEMENT scan-element EMPTY>' +
  '<!ELEMENT debug-attribute EMPTY>' +
  '<!ELEMENT buffer-attribute EMPTY>' +
  '<!ATTLIST context name CDATA #REQUIRED version-major CDATA #REQUIRED ' +
  'version-minor CDATA #REQUIRED version-git CDATA #REQUIRED description CDATA #IMPLIED>' +
  '<!ATTLIST context-attribute name CDATA #REQUIRED value CDATA #REQUIRED>' +
  '<!ATTLIST device id CDATA #REQUIRED name CDATA #IMPLIED label CDATA #IMPLIED>' +
  '<!ATTLIST channel id CDATA #REQUIRED type (input|output) #REQUIRED name CDATA #IMPLIED>' +
  '<!ATTLIST scan-element index CDATA #REQUIRED format CDATA #REQUIRED scale CDATA #IMPLIED>' +
  '<!ATTLIST attribute name CDATA #REQUIRED filename CDATA #IMPLIED>' +
  '<!ATTLIST debug-attribute name CDATA #REQUIRED>' +
  '<!ATTLIST buffer-attribute name CDATA #REQUIRED>' +
  ']>';

/** The same DTD with the optional `value` attributes of libiio 1.0 (`iio_genxml -e`). */
export const XML_HEADER_WITH_VALUES = XML_HEADER_0X.replace(
  '<!ATTLIST attribute name CDATA #REQUIRED filename CDATA #IMPLIED>',
  '<!ATTLIST attribute name CDATA #REQUIRED filename CDATA #IMPLIED value CDATA #IMPLIED>',
)
  .replace(
    '<!ATTLIST debug-attribute name CDATA #REQUIRED>',
    '<!ATTLIST debug-attribute name CDATA #REQUIRED value CDATA #IMPLIED>',
  )
  .replace(
    '<!ATTLIST buffer-attribute name CDATA #REQUIRED>',
    '<!ATTLIST buffer-attribute name CDATA #REQUIRED value CDATA #IMPLIED>',
  );

/**
 * The DTD declarations libiio 1.0 adds for event attributes, spliced into the 0.x DTD when
 * a context has any: 0.24 readers then validate the document and skip the elements, and
 * 1.0 readers get them (the `<event-attribute>` of its dialect).
 */
function withEventAttributes(header: string, withValues: boolean): string {
  const value = withValues ? ' value CDATA #IMPLIED' : '';
  return header
    .replace(
      '<!ELEMENT device (channel | attribute | debug-attribute | buffer-attribute)*>',
      '<!ELEMENT device (channel | attribute | debug-attribute | event-attribute | buffer-attribute)*>',
    )
    .replace(
      '<!ELEMENT channel (scan-element?, attribute*)>',
      '<!ELEMENT channel (scan-element?, attribute*, event-attribute*)>',
    )
    .replace(
      '<!ELEMENT buffer-attribute EMPTY>',
      '<!ELEMENT event-attribute EMPTY><!ELEMENT buffer-attribute EMPTY>',
    )
    .replace(
      '<!ATTLIST buffer-attribute',
      `<!ATTLIST event-attribute name CDATA #REQUIRED filename CDATA #IMPLIED${value}><!ATTLIST buffer-attribute`,
    );
}

function hasEventAttributes(info: ContextInfo): boolean {
  return info.devices.some(
    (d) => !!d.eventAttrs?.length || d.channels.some((c) => !!c.eventAttrs?.length),
  );
}

/**
 * Escapes an attribute value: libiio's sanitize_xml escapes the five special characters
 * only, so a newline or tab in a value comes back from libxml2 as a space; we also write
 * those as character references, and libiio reads back exactly the text we hold.
 */
const escapeXml = escapeAttributeValue;

export interface XmlWriteOptions {
  /** Write attribute values (`value=`) where the description carries them. */
  readonly withValues?: boolean;
  /**
   * Buffer attributes as libiio 1.0 lists them: those of buffer 0 (its local backend
   * keeps `direction` with `length`, `enable` and `watermark` for itself), where the
   * description knows buffer 0; libiio 0.24 lists the device's `buffer/` files.
   */
  readonly libiio1Buffers?: boolean;
}

function valueAttr(a: AttrInfo, o: XmlWriteOptions): string {
  return o.withValues && a.value !== undefined ? `value="${escapeXml(a.value)}" ` : '';
}

function channelXml(c: ChannelInfo, o: XmlWriteOptions): string {
  let s = `<channel id="${escapeXml(c.id)}"`;
  if (c.name !== undefined) s += ` name="${escapeXml(c.name)}"`;
  s += ` type="${c.isOutput ? 'output' : 'input'}" >`;
  if (c.isScanElement && c.format) {
    const fmt = escapeXml(formatScanType(c.format));
    const scale = c.scanScale !== undefined ? `scale="${cFixed(c.scanScale)}" ` : '';
    s += `<scan-element index="${c.index}" format="${fmt}" ${scale}/>`;
  }
  for (const a of c.attrs) {
    s += `<attribute name="${escapeXml(a.name)}" `;
    s += `filename="${escapeXml(a.filename ?? a.name)}" ${valueAttr(a, o)}/>`;
  }
  for (const a of c.eventAttrs ?? []) {
    s += `<event-attribute name="${escapeXml(a.name)}" `;
    s += `filename="${escapeXml(a.filename ?? a.name)}" ${valueAttr(a, o)}/>`;
  }
  return `${s}</channel>`;
}

function deviceXml(d: DeviceInfo, o: XmlWriteOptions): string {
  let s = `<device id="${escapeXml(d.id)}"`;
  if (d.name !== undefined) s += ` name="${escapeXml(d.name)}"`;
  if (d.label !== undefined) s += ` label="${escapeXml(d.label)}"`;
  s += ' >';
  for (const c of d.channels) s += channelXml(c, o);
  for (const a of d.attrs) s += `<attribute name="${escapeXml(a.name)}" ${valueAttr(a, o)}/>`;
  const buffer0 = o.libiio1Buffers ? d.buffers?.find((b) => b.index === 0) : undefined;
  for (const a of buffer0?.attrs ?? d.bufferAttrs) {
    if (o.libiio1Buffers && a.name === 'direction') continue;
    s += `<buffer-attribute name="${escapeXml(a.name)}" ${valueAttr(a, o)}/>`;
  }
  for (const a of d.debugAttrs)
    s += `<debug-attribute name="${escapeXml(a.name)}" ${valueAttr(a, o)}/>`;
  for (const a of d.eventAttrs ?? [])
    s += `<event-attribute name="${escapeXml(a.name)}" ${valueAttr(a, o)}/>`;
  return `${s}</device>`;
}

/**
 * Writes a context as libiio 0.24's iio_context_get_xml() does (what iio_genxml
 * prints): one line, the 0.x DTD embedded, special characters escaped everywhere.
 * Event attributes, which 0.24 does not know, are written as libiio 1.0 writes them
 * (`<event-attribute>` after a channel's attributes and after a device's debug
 * attributes), with their declarations added to the DTD.
 */
export function contextToXml(info: ContextInfo, options: XmlWriteOptions = {}): string {
  const v = info.version;
  let s = options.withValues ? XML_HEADER_WITH_VALUES : XML_HEADER_0X;
  if (hasEventAttributes(info)) s = withEventAttributes(s, !!options.withValues);
  s += `<context name="${escapeXml(info.name)}" version-major="${v.major}" version-minor="${v.minor}" version-git="${escapeXml(v.git)}" `;
  s += info.description !== '' ? `description="${escapeXml(info.description)}" >` : '>';
  for (const [k, val] of info.attrs) {
    s += `<context-attribute name="${escapeXml(k)}" value="${escapeXml(val)}" />`;
  }
  for (const d of info.devices) s += deviceXml(d, options);
  return `${s}</context>`;
}
