/**
 * `iio-push`: writes scans to an output device (a DAC). The payload is a Buffer of
 * whole scans in the device's layout, or `{ <channel id>: number[] }` (raw values, or
 * SI values converted back with `raw = value / scale - offset`). One-shot mode keeps
 * one buffer open and queues every message; cyclic mode replaces the waveform the
 * device repeats with each message.
 */
import { IioError } from '../errors';
import { convertInverse } from '../format/convert';
import type { TransferMode } from '../model/backend';
import type { IioBuffer } from '../model/buffer';
import type { Context } from '../model/context';
import { bool, configError, configNode, num, str, useContext, type IioContextNode } from './common';
import { parseChannelList } from './channel-list';
import type { NodeConfig, NodeMessage, RedAPI, RedNode } from './red';

/** Packs per-channel arrays into whole scans of `buffer`'s layout. */
export function encodeChannels(
  buffer: IioBuffer,
  values: Record<string, unknown>,
  scales?: ReadonlyMap<number, { scale: number; offset: number }>,
): Buffer {
  const where = { device: buffer.device.id, uri: buffer.device.context.uri };
  let n = -1;
  const columns = buffer.channels.map((c) => {
    const v =
      values[c.id] ??
      (c.name ? values[c.name] : undefined) ??
      (c.label ? values[c.label] : undefined);
    if (!Array.isArray(v) && !ArrayBuffer.isView(v)) {
      throw new IioError('EINVAL', `payload has no array for channel ${c.id}`, {
        ...where,
        channel: c.id,
      });
    }
    const arr = Array.from(v as ArrayLike<number>);
    if (n >= 0 && arr.length !== n) {
      throw new IioError(
        'EINVAL',
        `channel arrays differ in length (${n} and ${arr.length})`,
        where,
      );
    }
    n = arr.length;
    return { c, arr };
  });
  if (n <= 0) throw new IioError('EINVAL', 'the channel arrays are empty', where);
  const out = Buffer.alloc(n * buffer.scanBytes);
  for (const { c, arr } of columns) {
    const slot = buffer.slotOf(c);
    const so = scales?.get(c.number);
    for (let i = 0; i < n; i++) {
      const x = Number(arr[i]);
      if (!Number.isFinite(x)) {
        throw new IioError('EINVAL', `value ${i} of channel ${c.id} is not a finite number`, {
          ...where,
          channel: c.id,
        });
      }
      const raw = so ? Math.round(x / so.scale - so.offset) : Math.round(x);
      convertInverse(raw, out, i * buffer.scanBytes + slot.offset, slot.format);
    }
  }
  return out;
}

interface PushSettings {
  readonly device: string;
  readonly channels: string[];
  readonly samples: number;
  readonly cyclic: boolean;
  readonly si: boolean;
  readonly transfer: TransferMode;
}

export default function register(RED: RedAPI): void {
  RED.nodes.registerType('iio-push', function (this: RedNode, config: NodeConfig) {
    RED.nodes.createNode(this, config);
    setupPush(RED, this, config);
  });
}

function setupPush(RED: RedAPI, node: RedNode, config: NodeConfig): void {
  const cfg = configNode(RED, node, config.context);
  if (!cfg) return;
  const samples = num(config, 'samples', 0);
  const settings: PushSettings = {
    device: str(config, 'device'),
    channels: parseChannelList(config.channels),
    samples: Number.isInteger(samples) && samples > 0 ? samples : 0,
    cyclic: bool(config, 'cyclic'),
    si: str(config, 'values') === 'si',
    transfer: (str(config, 'transfer') || 'auto') as TransferMode,
  };
  if (!settings.device) {
    configError(RED, node, new IioError('EINVAL', 'iio-push: no device selected'));
    return;
  }
  if (!['auto', 'dmabuf', 'fileio'].includes(settings.transfer)) {
    configError(
      RED,
      node,
      new IioError(
        'EINVAL',
        `iio-push: transfer must be auto, dmabuf or fileio, not "${settings.transfer}"`,
      ),
    );
    return;
  }
  const pusher = new Pusher(cfg, settings);
  let queue: Promise<void> = Promise.resolve();

  node.on('input', (msg: NodeMessage, send, done) => {
    queue = queue.then(async () => {
      try {
        const scans = await pusher.push(msg.payload);
        msg.iio = {
          context: cfg.uri,
          device: settings.device,
          samples: scans,
          cyclic: settings.cyclic,
        };
        node.status({
          fill: 'green',
          shape: 'dot',
          text: `${settings.cyclic ? 'cyclic' : 'pushed'} ${scans} scans`,
        });
        send(msg);
        done();
      } catch (err) {
        const e = IioError.wrap(err, { device: settings.device, uri: cfg.uri });
        node.status({ fill: 'red', shape: 'ring', text: e.code });
        done(e);
      }
    });
  });

  useContext(RED, node, cfg, {
    onState: (s) => {
      // The buffer belonged to the old connection.
      if (s.kind !== 'connected') pusher.forget();
    },
    onClose: async () => {
      await queue;
      await pusher.close();
    },
  });
}

/** Owns the output buffer of one push node. */
class Pusher {
  private buffer: IioBuffer | undefined;
  private scales: Map<number, { scale: number; offset: number }> | undefined;
  private ctx: Context | undefined;

  constructor(
    private readonly cfg: IioContextNode,
    private readonly s: PushSettings,
  ) {}

  /** Pushes one payload; resolves with the scans written. */
  async push(payload: unknown): Promise<number> {
    const ctx = await this.cfg.handle.ready();
    if (ctx !== this.ctx) {
      this.buffer = undefined;
      this.ctx = ctx;
    }
    const isArrays =
      payload !== null &&
      typeof payload === 'object' &&
      !Buffer.isBuffer(payload) &&
      !ArrayBuffer.isView(payload);
    if (!Buffer.isBuffer(payload) && !(payload instanceof Uint8Array) && !isArrays) {
      throw new IioError(
        'EINVAL',
        'payload must be a Buffer of scans or an object of channel arrays',
      );
    }
    // Probe the layout with a buffer of the configured size when none is open yet.
    let buffer = this.buffer;
    if (!buffer) buffer = await this.open(ctx, this.s.samples || 1024, this.s.cyclic);
    const data = isArrays
      ? encodeChannels(
          buffer,
          payload as Record<string, unknown>,
          this.s.si ? await this.scalesOf(buffer) : undefined,
        )
      : (payload as Uint8Array);
    const scans = Math.floor(data.length / buffer.scanBytes);
    if (data.length === 0 || data.length % buffer.scanBytes !== 0) {
      throw new IioError(
        'EINVAL',
        `payload of ${data.length} bytes is not whole scans of ${buffer.scanBytes} bytes`,
      );
    }
    if (this.s.cyclic) {
      // A cyclic buffer repeats its first block: a new waveform needs a new buffer of its size.
      await this.close();
      buffer = await this.open(ctx, scans, true);
    }
    await buffer.push(data);
    return scans;
  }

  private async open(ctx: Context, samples: number, cyclic: boolean): Promise<IioBuffer> {
    const dev = ctx.device(this.s.device);
    const channels = this.s.channels.length
      ? this.s.channels.map((c) => dev.channel(c, true))
      : dev.channels.filter((c) => c.isOutput && c.isScanElement);
    this.buffer = await dev.createBuffer(samples, {
      channels,
      isOutput: true,
      cyclic,
      ...(this.s.transfer !== 'auto' ? { transfer: this.s.transfer } : {}),
    });
    this.scales = undefined;
    return this.buffer;
  }

  private async scalesOf(
    buffer: IioBuffer,
  ): Promise<Map<number, { scale: number; offset: number }>> {
    if (!this.scales) {
      const m = new Map<number, { scale: number; offset: number }>();
      for (const c of buffer.channels) m.set(c.number, await c.readScaleOffset());
      this.scales = m;
    }
    return this.scales;
  }

  /** Forgets a buffer of a lost connection (closing it would fail). */
  forget(): void {
    this.buffer = undefined;
    this.ctx = undefined;
  }

  async close(): Promise<void> {
    const b = this.buffer;
    this.buffer = undefined;
    if (b) await b.close();
  }
}
