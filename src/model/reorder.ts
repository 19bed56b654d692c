import type { ChannelInfo } from './info';

/**
 * libiio's channel order (reorder_channels in context.c, applied to every context):
 * scan elements by ascending scan index (equal indices by shift), then the channels
 * without an index, each group keeping its original order. Channel numbers (mask bits)
 * are positions in this order, so every backend must apply it.
 */
export function reorderChannels(channels: readonly ChannelInfo[]): ChannelInfo[] {
  const shift = (c: ChannelInfo): number => c.format?.shift ?? 0;
  return channels
    .map((c, i) => ({ c, i }))
    .sort((x, y) => {
      const a = x.c.index;
      const b = y.c.index;
      if (a < 0 && b < 0) return x.i - y.i;
      if (a < 0) return 1;
      if (b < 0) return -1;
      if (a !== b) return a - b;
      return shift(x.c) - shift(y.c) || x.i - y.i;
    })
    .map((x) => x.c);
}
