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
import { resolveDevice } from './device-ref';
import type { NodeConfig, NodeMessage, RedAPI, RedNode } from './red';
import { readable, trackRuntime } from './report';
import { errorStatus, fitStatus, t } from './status';

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
  readonly deviceHint: string;
  readonly channels: string[];
  readonly samples: number;
  readonly cyclic: boolean;
  readonly si: boolean;
  readonly transfer: TransferMode;
}

export default function register(RED: RedAPI): void {
  trackRuntime(RED);
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
    deviceHint: str(config, 'deviceId'),
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
  // A cyclic waveform keeps playing through a redeploy that changes neither this node nor
  // its context: the node that replaces this one takes its buffer back.
  const keepKey = `iio-push:${node.id}:${JSON.stringify(config)}`;
  const kept = cfg.handle.take(keepKey);
  if (kept instanceof KeptBuffer) pusher.adopt(kept);
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
          text: fitStatus(
            t(RED, 'iio-push', settings.cyclic ? 'status.cyclic' : 'status.pushed', {
              scans,
            }),
          ),
        });
        send(msg);
        done();
      } catch (err) {
        const e = IioError.wrap(err, { device: settings.device, uri: cfg.uri });
        node.status(errorStatus(e));
        done(readable(e));
      }
    });
  });

  useContext(RED, node, cfg, {
    onState: (s, reporter) => {
      // The buffer belonged to the old connection.
      if (s.kind !== 'connected') {
        pusher.forget();
        return;
      }
      // A device that is gone or ambiguous shows at deploy, not at the first message.
      const ctx = cfg.handle.context;
      try {
        if (ctx) resolveDevice(ctx, { ref: settings.device, hint: settings.deviceHint });
      } catch (err) {
        const e = IioError.wrap(err, { uri: cfg.uri });
        node.status(errorStatus(e));
        reporter.errors.report(e, reporter.msg());
      }
    },
    onClose: async (removed) => {
      await queue;
      const handover = !removed && settings.cyclic && cfg.handle.keeping && pusher.handOver();
      if (handover) cfg.handle.keep(keepKey, handover);
      else await pusher.close();
    },
  });
}

/** A cyclic buffer left running for the push node a redeploy brings back. */
class KeptBuffer {
  constructor(
    readonly buffer: IioBuffer,
    readonly ctx: Context,
  ) {}

  dispose(): Promise<void> {
    return this.buffer.close();
  }
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

  /** Takes over a running cyclic buffer from before a redeploy. */
  adopt(k: KeptBuffer): void {
    this.buffer = k.buffer;
    this.ctx = k.ctx;
  }

  /** Gives the running cyclic buffer away (undefined when there is none). */
  handOver(): KeptBuffer | undefined {
    const b = this.buffer;
    if (!b || !this.ctx || this.ctx.isClosed) return undefined;
    this.buffer = undefined;
    return new KeptBuffer(b, this.ctx);
  }

  private async open(ctx: Context, samples: number, cyclic: boolean): Promise<IioBuffer> {
    const dev = resolveDevice(ctx, { ref: this.s.device, hint: this.s.deviceHint });
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
