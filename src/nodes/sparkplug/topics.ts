/**
 * Sparkplug B topic namespace (spec chapter 4): `spBv1.0/<group>/<verb>/<edge node>[/<device>]`.
 * Group, edge node and device ids are UTF-8 without the MQTT reserved `+`, `/` and `#`.
 */

export const NAMESPACE = 'spBv1.0';

export type NodeVerb = 'NBIRTH' | 'NDEATH' | 'NDATA' | 'NCMD';
export type DeviceVerb = 'DBIRTH' | 'DDEATH' | 'DDATA' | 'DCMD';

const RESERVED = /[+/#]/;

/** Why an id cannot be a Sparkplug group/edge node/device id, or undefined when it can. */
export function invalidId(id: string): string | undefined {
  if (id === '') return 'empty';
  if (RESERVED.test(id)) return 'contains + / or #';
  return undefined;
}

/** An IIO name turned into a device id: reserved characters become `_`. */
export function deviceIdOf(name: string): string {
  return name.replace(/[+/#]/g, '_');
}

export function nodeTopic(group: string, verb: NodeVerb, edge: string): string {
  return `${NAMESPACE}/${group}/${verb}/${edge}`;
}

export function deviceTopic(group: string, verb: DeviceVerb, edge: string, device: string): string {
  return `${NAMESPACE}/${group}/${verb}/${edge}/${device}`;
}

/** A command topic addressed to this edge node, parsed; undefined for anything else. */
export function parseCommandTopic(
  topic: string,
  group: string,
  edge: string,
): { verb: 'NCMD' } | { verb: 'DCMD'; device: string } | undefined {
  const parts = topic.split('/');
  if (parts[0] !== NAMESPACE || parts[1] !== group || parts[3] !== edge) return undefined;
  if (parts[2] === 'NCMD' && parts.length === 4) return { verb: 'NCMD' };
  if (parts[2] === 'DCMD' && parts.length === 5) return { verb: 'DCMD', device: parts[4] };
  return undefined;
}
