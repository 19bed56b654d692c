/**
 * The channel list a node's editor stores, shared by the nodes that take one
 * (iio-capture, iio-push).
 */

/** Parses the channel list the editor stores (array, or comma/space separated text). */
export function parseChannelList(v: unknown): string[] {
  const items = Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(/[\s,]+/) : [];
  return [...new Set(items.map((s) => s.trim()).filter(Boolean))];
}
