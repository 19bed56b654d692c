/**
 * What Device.createBuffer() checks before it asks the backend for anything: the size in
 * scans, the channels picked (scan elements of one direction), the options that depend on
 * them, and the model's bounds on a buffer's memory. Each refusal is EINVAL naming the device.
 */
import { IioError } from '../errors';
import { computeScanLayout } from '../format/layout';
import { MAX_BLOCK_BYTES, MAX_BUFFER_BLOCKS, MAX_BUFFER_BYTES, type BufferOptions } from './buffer';
import type { Channel } from './channel';
import type { Device } from './device';

/** `n` bytes as the limits are stated (`256 MiB`, `1 GiB`). */
function sizeText(n: number): string {
  return n >= 1 << 30 ? `${n / (1 << 30)} GiB` : `${n / (1 << 20)} MiB`;
}

/** Checked first, before the channels are looked up. */
export function checkBufferSamples(dev: Device, samples: number): void {
  if (!Number.isInteger(samples) || samples <= 0) {
    throw new IioError(
      'EINVAL',
      `buffer size must be a positive number of samples, not ${samples}`,
      {
        device: dev.id,
        uri: dev.context.uri,
      },
    );
  }
}

/**
 * The channels picked for a buffer, and the options that depend on them; returns whether
 * the buffer is an output one (the direction its channels share).
 */
export function checkBufferChannels(
  dev: Device,
  samples: number,
  chosen: readonly Channel[],
  options: BufferOptions,
): boolean {
  const where = { device: dev.id, uri: dev.context.uri };
  if (!chosen.length) {
    throw new IioError('EINVAL', 'no channel enabled for the buffer', where);
  }
  const notScan = chosen.find((c) => !c.isScanElement);
  if (notScan) {
    throw new IioError(
      'EINVAL',
      `channel ${notScan.id} is not a scan element and cannot be buffered`,
      {
        device: dev.id,
        channel: notScan.id,
        uri: dev.context.uri,
      },
    );
  }
  const isOutput = chosen[0].isOutput;
  if (chosen.some((c) => c.isOutput !== isOutput)) {
    throw new IioError('EINVAL', 'a buffer cannot mix input and output channels', where);
  }
  if (options.cyclic && !isOutput) {
    throw new IioError('EINVAL', 'only output buffers can be cyclic', where);
  }
  if (options.transfer !== undefined && !['auto', 'dmabuf', 'fileio'].includes(options.transfer)) {
    throw new IioError(
      'EINVAL',
      `transfer must be 'auto', 'dmabuf' or 'fileio', not ${JSON.stringify(options.transfer)}`,
      where,
    );
  }
  checkBufferSize(dev, samples, chosen, options.blocks);
  return isOutput;
}

/**
 * The model's bounds on a buffer's size, the same for every backend (a backend that
 * cannot tell — emu: would wait forever for a block of 1e12 scans — is never asked).
 */
function checkBufferSize(
  dev: Device,
  samples: number,
  channels: readonly Channel[],
  blocks: number | undefined,
): void {
  const where = { device: dev.id, uri: dev.context.uri, op: 'open buffer' };
  const scanBytes = computeScanLayout(
    channels.map((c) => ({ key: c.number, index: c.index, format: c.format! })),
  ).scanBytes;
  const blockBytes = samples * scanBytes;
  if (blockBytes > MAX_BLOCK_BYTES) {
    throw new IioError(
      'EINVAL',
      `a block of ${samples} samples × ${scanBytes} bytes exceeds the limit of ${sizeText(MAX_BLOCK_BYTES)} per block`,
      where,
    );
  }
  if (blocks === undefined) return;
  if (!Number.isInteger(blocks) || blocks < 1 || blocks > MAX_BUFFER_BLOCKS) {
    throw new IioError('EINVAL', `blocks must be 1..${MAX_BUFFER_BLOCKS}, not ${blocks}`, where);
  }
  if (blocks * blockBytes > MAX_BUFFER_BYTES) {
    throw new IioError(
      'EINVAL',
      `${blocks} blocks of ${blockBytes} bytes exceed the limit of ${sizeText(MAX_BUFFER_BYTES)} per buffer`,
      where,
    );
  }
}
