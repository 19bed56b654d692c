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
 * Escapes an attribute value: libiio's sanitize_xml escapes the five special characters
 * only, so a newline or tab in a value comes back from libxml2 as a space; we also write
 * those as character references, and libiio reads back exactly the text we hold.
 */
const escapeXml = escapeAttributeValue;

export interface XmlWriteOptions {
  /** Write attribute values (`value=`) where the description carries them. */
  readonly withValues?: boolean;
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
  return `${s}</channel>`;
}

function deviceXml(d: DeviceInfo, o: XmlWriteOptions): string {
  let s = `<device id="${escapeXml(d.id)}"`;
  if (d.name !== undefined) s += ` name="${escapeXml(d.name)}"`;
  if (d.label !== undefined) s += ` label="${escapeXml(d.label)}"`;
  s += ' >';
  for (const c of d.channels) s += channelXml(c, o);
  for (const a of d.attrs) s += `<attribute name="${escapeXml(a.name)}" ${valueAttr(a, o)}/>`;
  for (const a of d.bufferAttrs)
    s += `<buffer-attribute name="${escapeXml(a.name)}" ${valueAttr(a, o)}/>`;
  for (const a of d.debugAttrs)
    s += `<debug-attribute name="${escapeXml(a.name)}" ${valueAttr(a, o)}/>`;
  return `${s}</device>`;
}

/**
 * Writes a context as libiio 0.24's iio_context_get_xml() does (what iio_genxml
 * prints): one line, the 0.x DTD embedded, special characters escaped everywhere.
 */
export function contextToXml(info: ContextInfo, options: XmlWriteOptions = {}): string {
  const v = info.version;
  let s = options.withValues ? XML_HEADER_WITH_VALUES : XML_HEADER_0X;
  s += `<context name="${escapeXml(info.name)}" version-major="${v.major}" version-minor="${v.minor}" version-git="${escapeXml(v.git)}" `;
  s += info.description !== '' ? `description="${escapeXml(info.description)}" >` : '>';
  for (const [k, val] of info.attrs) {
    s += `<context-attribute name="${escapeXml(k)}" value="${escapeXml(val)}" />`;
  }
  for (const d of info.devices) s += deviceXml(d, options);
  return `${s}</context>`;
}
