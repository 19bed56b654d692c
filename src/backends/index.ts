import { registerScanner } from '../scan';
import { parseUri, type Scheme } from '../uri';
import type { Backend, BackendFactory, BackendOpenOptions } from '../model/backend';

/**
 * Backends are loaded on first use: `local:` needs the native module and `usb:` the
 * usb package; neither is loaded for a context that does not use it.
 */
const loaders: Record<Scheme, () => BackendFactory> = {
  xml: () => (require('./xml') as typeof import('./xml')).openXmlBackend,
  local: () => (require('./local') as typeof import('./local')).openLocalBackend,
  ip: () => (require('./iiod') as typeof import('./iiod')).openIpBackend,
  usb: () => (require('./iiod/usb') as typeof import('./iiod/usb')).openUsbBackend,
  serial: () => (require('./iiod/serial') as typeof import('./iiod/serial')).openSerialBackend,
  emu: () => (require('./emu') as typeof import('./emu')).openEmuBackend,
};

registerScanner('local', () =>
  (require('./local/scanner') as typeof import('./local/scanner')).scanLocalContexts(),
);
// DNS-SD for iiod servers; the mDNS and TCP code loads on the first scan.
registerScanner('ip', () => (require('./iiod') as typeof import('./iiod')).scanIp());
// USB devices with an "IIO" interface; libusb (the usb package) loads on the first scan.
registerScanner('usb', (args) =>
  (require('./iiod/usb') as typeof import('./iiod/usb')).scanUsb(args),
);

/** Registers (or replaces) the factory of a scheme; used by backends and tests. */
export function registerBackend(scheme: Scheme, factory: () => BackendFactory): void {
  loaders[scheme] = factory;
}

/** Opens the backend a URI names. */
export async function openBackend(uri: string, options: BackendOpenOptions = {}): Promise<Backend> {
  const parsed = parseUri(uri);
  const factory = loaders[parsed.scheme]();
  return factory(parsed.uri, options);
}
