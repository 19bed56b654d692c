import { IioError } from './errors';

/** The URI schemes a context can be opened with. */
export const SCHEMES = ['local', 'ip', 'usb', 'serial', 'xml', 'emu'] as const;
export type Scheme = (typeof SCHEMES)[number];

export interface ParsedUri {
  readonly scheme: Scheme;
  /** Everything after `scheme:` (may be empty). */
  readonly rest: string;
  /** The URI as given, trimmed. */
  readonly uri: string;
}

const EXAMPLES =
  'local:, ip:192.168.2.1, ip:host:30431, ip:[fe80::1]:30431, ip:, usb:, usb:1.2.3, ' +
  'serial:/dev/ttyUSB0,115200,8n1, xml:context.xml, emu:, emu:context.xml';

/** Splits a context URI into scheme and remainder; EINVAL with examples when malformed. */
export function parseUri(uri: string): ParsedUri {
  if (typeof uri !== 'string')
    throw new IioError('EINVAL', `a context URI must be a string, not ${typeof uri}`);
  const text = uri.trim();
  const colon = text.indexOf(':');
  if (colon <= 0) {
    throw new IioError(
      'EINVAL',
      `malformed context URI "${uri}": expected scheme:address, e.g. ${EXAMPLES}`,
    );
  }
  const scheme = text.slice(0, colon).toLowerCase();
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    throw new IioError(
      'EINVAL',
      `unknown context URI scheme "${scheme}:" in "${uri}": use one of ${SCHEMES.map((s) => `${s}:`).join(' ')}`,
    );
  }
  return { scheme: scheme as Scheme, rest: text.slice(colon + 1), uri: text };
}
