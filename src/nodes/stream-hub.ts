import { IioError } from '../errors';
import type { TransferMode } from '../model/backend';
import type { IioBuffer } from '../model/buffer';
import type { Context } from '../model/context';
import type { Device } from '../model/device';
import type { ContextHandle } from './context-handle';
import { resolveDevice, topicName } from './device-ref';

/** What one capture node asks of its device's stream. */
export interface CaptureRequest {
  /** Channel ids (or names/labels); empty: every input scan element. */
  readonly channels: readonly string[];
  /** Scans per block. */
  readonly samples: number;
  /** Trigger (id or name) to set before the buffer opens; empty: leave as is. */
  readonly trigger?: string;
  /** Sampling frequency (Hz) to write before the buffer opens; absent: leave as is. */
  readonly samplingFrequency?: number;
  /** Kernel blocks / pool size (backend default if absent). */
  readonly blocks?: number;
  /** local: DMABUF, read() or auto (the default). */
  readonly transfer?: TransferMode;
}

/** What a running stream looks like; handed to subscribers when it (re)starts. */
export interface StreamInfo {
  readonly device: Device;
  /** The device's name in topics and `msg.iio.device` (stable across reboots). */
  readonly topicName: string;
  readonly buffer: IioBuffer;
  /** `scale` and `offset` of every channel in the buffer, by channel number. */
  readonly scales: ReadonlyMap<number, { readonly scale: number; readonly offset: number }>;
  /** Hz, when the device or its trigger tells. */
  readonly samplingFrequency?: number;
}

/** A block as the hub fans it out. */
export interface HubBlock {
  /** Whole scans in the device's layout; may alias pooled memory: never write to it. */
  readonly data: Buffer;
  readonly samples: number;
  readonly seq: number;
  /**
   * Scans lost before this block: reported by the backend (kernel overrun, a resumed
   * connection), or estimated from the sampling frequency when the stream had to reopen.
   */
  readonly lost: number;
  /** ms since the epoch when the block reached JS. */
  readonly receivedAt: number;
  /**
   * Takes a share of the block: it goes back to its pool (for local: DMABUF, to the
   * kernel) once every share was given back with the function returned, and no
   * subscriber kept it for the garbage collector (onBlock returning true).
   */
  hold(): () => void;
}

export interface HubSubscriber {
  readonly id: string;
  readonly request: CaptureRequest;
  /** The stream (re)started: the layout and scales may have changed. */
  onStarted(info: StreamInfo): void;
  /**
   * A block. Return true when its memory was handed on (sent in a message): the hub
   * then never releases it and the pool gets it back when the last holder is collected.
   * Return false when done with it: the hub releases it at once.
   */
  onBlock(block: HubBlock, info: StreamInfo): boolean;
  /** The stream failed (it is retried while the subscriber stays). */
  onError(err: IioError): void;
  /** The stream stopped (context lost, redeploy, error). */
  onStopped(): void;
}

const RETRY_MS = [1000, 2000, 5000, 10000, 30000];

/**
 * One buffer per device, shared by every capture node on it: the kernel gets the union
 * of their channels and the largest block size, and each block is fanned out to all
 * subscribers (each reads only its channels; a Buffer payload carries the whole scan).
 * The stream restarts when the set of subscribers changes its union, and after errors.
 */
export class StreamHub {
  private readonly subs = new Set<HubSubscriber>();
  private lifecycle: Promise<void> = Promise.resolve();
  private running: Promise<void> | undefined;
  private buffer: IioBuffer | undefined;
  private generation = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private retryIndex = 0;
  private current: string | undefined;
  /** When the last block arrived (ms), to estimate what a reopen after a loss cost. */
  private lastBlockAt = 0;
  /** Set when a running stream was cut by a lost context: the time of its last block. */
  private gapSince: number | undefined;
  private readonly onReady = (): void => this.scheduleStart(0);
  private readonly onLost = (): void => {
    // The backend cannot resume this stream: it reopens when the context is back, and the
    // scans of the gap are estimated then (never silently zero).
    if (this.buffer && this.lastBlockAt) this.gapSince ??= this.lastBlockAt;
    this.enqueue(() => this.halt());
  };

  constructor(
    private readonly handle: ContextHandle,
    readonly deviceId: string,
    private readonly deviceHint: string | undefined,
    private readonly onEmpty: () => void,
  ) {
    handle.on('ready', this.onReady);
    handle.on('lost', this.onLost);
  }

  get subscriberCount(): number {
    return this.subs.size;
  }

  /** True while a buffer is open. */
  get isStreaming(): boolean {
    return this.buffer !== undefined;
  }

  subscribe(sub: HubSubscriber): void {
    this.subs.add(sub);
    // Deploys start every node in one go: wait a moment so the buffer opens once with
    // the union of all of them instead of once per node.
    this.scheduleStart(10);
  }

  /** Removes a subscriber; resolves when the buffer is closed or restarted without it. */
  unsubscribe(sub: HubSubscriber): Promise<void> {
    if (!this.subs.delete(sub)) return this.lifecycle;
    if (this.subs.size === 0) {
      clearTimeout(this.restartTimer);
      this.enqueue(() => this.halt());
      // Leave the handle's list only once the buffer is closed, so a context closing
      // meanwhile waits for it (and a node subscribing meanwhile reuses this hub).
      this.enqueue(async () => {
        if (this.subs.size > 0) return;
        this.handle.off('ready', this.onReady);
        this.handle.off('lost', this.onLost);
        this.onEmpty();
      });
    } else {
      this.scheduleStart(10);
    }
    return this.lifecycle;
  }

  /** Closes the buffer (the context is going away); subscribers stay. */
  stop(): Promise<void> {
    clearTimeout(this.restartTimer);
    this.enqueue(() => this.halt());
    return this.lifecycle;
  }

  private enqueue(step: () => Promise<void>): void {
    this.lifecycle = this.lifecycle.then(step).catch(() => undefined);
  }

  private scheduleStart(delayMs: number): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.enqueue(() => this.start());
    }, delayMs);
  }

  /** The union of what subscribers ask, as a stable key (restart only when it changes). */
  private plan(): { key: string; channels: string[]; samples: number; req: CaptureRequest } {
    const subs = [...this.subs];
    const all = subs.some((s) => s.request.channels.length === 0);
    const channels = all ? [] : [...new Set(subs.flatMap((s) => [...s.request.channels]))].sort();
    const samples = Math.max(...subs.map((s) => s.request.samples));
    // Trigger, frequency and pool size: the first subscriber that sets them decides.
    const first = <K extends keyof CaptureRequest>(k: K): CaptureRequest[K] | undefined =>
      subs.map((s) => s.request[k]).find((v) => v !== undefined && v !== '');
    const req: CaptureRequest = {
      channels,
      samples,
      trigger: first('trigger') as string | undefined,
      samplingFrequency: first('samplingFrequency') as number | undefined,
      blocks: first('blocks') as number | undefined,
      transfer: first('transfer') as TransferMode | undefined,
    };
    return { key: JSON.stringify(req), channels, samples, req };
  }

  private async start(): Promise<void> {
    if (this.subs.size === 0) return;
    const ctx = this.handle.context;
    if (!ctx) return; // started again on the handle's 'ready'
    const plan = this.plan();
    if (this.buffer && plan.key === this.current) return;
    await this.halt();
    if (this.subs.size === 0) return;
    const gen = ++this.generation;
    let info: StreamInfo;
    try {
      info = await this.open(ctx, plan.req);
    } catch (err) {
      this.fail(IioError.wrap(err, { device: this.deviceId, uri: ctx.uri }), gen);
      return;
    }
    if (gen !== this.generation) {
      await info.buffer.close();
      return;
    }
    this.buffer = info.buffer;
    this.current = plan.key;
    for (const s of this.subs) s.onStarted(info);
    this.running = this.pump(info, gen);
  }

  private async open(ctx: Context, req: CaptureRequest): Promise<StreamInfo> {
    const device = resolveDevice(ctx, { ref: this.deviceId, hint: this.deviceHint });
    let channels = req.channels.length
      ? req.channels.map((c) => device.channel(c, false))
      : device.channels.filter((c) => c.isScanElement && !c.isOutput);
    if (!channels.length) {
      throw new IioError('EINVAL', 'the device has no input channel that can be buffered', {
        device: device.id,
        uri: ctx.uri,
      });
    }
    channels = channels.filter((c, i) => channels.indexOf(c) === i);
    if (req.trigger) await device.setTrigger(req.trigger);
    let samplingFrequency: number | undefined;
    if (req.samplingFrequency !== undefined) {
      samplingFrequency = await writeSamplingFrequency(device, req.samplingFrequency);
    } else {
      samplingFrequency = await readSamplingFrequency(device);
    }
    const buffer = await device.createBuffer(req.samples, {
      channels,
      isOutput: false,
      ...(req.blocks ? { blocks: req.blocks } : {}),
      ...(req.transfer ? { transfer: req.transfer } : {}),
    });
    const scales = new Map<number, { scale: number; offset: number }>();
    try {
      for (const c of buffer.channels) scales.set(c.number, await c.readScaleOffset());
    } catch (err) {
      await buffer.close();
      throw err;
    }
    return { device, topicName: topicName(ctx, device), buffer, scales, samplingFrequency };
  }

  private async pump(info: StreamInfo, gen: number): Promise<void> {
    const buffer = info.buffer;
    try {
      for await (const b of buffer.stream()) {
        if (gen !== this.generation) {
          b.release();
          break;
        }
        this.retryIndex = 0;
        const receivedAt = Date.now();
        let lost = b.lost;
        if (this.gapSince !== undefined) {
          // Reopened after the context was lost: the device ran on meanwhile.
          const f = info.samplingFrequency;
          if (f && f > 0) {
            const spanScans = Math.round((f * (receivedAt - this.gapSince)) / 1000);
            lost += Math.max(0, spanScans - b.samples);
          }
          this.gapSince = undefined;
        }
        this.lastBlockAt = receivedAt;
        // Shares: the hub's own (dropped after the fan-out) and one per hold().
        let shares = 1;
        const drop = (): void => {
          if (--shares === 0) b.release();
        };
        const block: HubBlock = {
          data: b.data,
          samples: b.samples,
          seq: b.seq,
          lost,
          receivedAt,
          hold: () => {
            shares++;
            let held = true;
            return () => {
              if (held) {
                held = false;
                drop();
              }
            };
          },
        };
        let kept = false;
        for (const s of this.subs) {
          try {
            if (s.onBlock(block, info)) kept = true;
          } catch (err) {
            // A subscriber's bug must not stop the others; it hears of it.
            s.onError(IioError.wrap(err, { device: this.deviceId, op: 'deliver block' }));
          }
        }
        // Kept for the collector: the hub's share is never given back (a finalizer returns it).
        if (!kept) drop();
      }
    } catch (err) {
      if (gen === this.generation) {
        this.fail(
          IioError.wrap(err, { device: this.deviceId, uri: buffer.device.context.uri }),
          gen,
        );
      }
    }
  }

  private fail(err: IioError, gen: number): void {
    for (const s of this.subs) s.onError(err);
    if (gen !== this.generation) return;
    const delay = RETRY_MS[Math.min(this.retryIndex++, RETRY_MS.length - 1)];
    this.enqueue(() => this.halt());
    if (this.subs.size > 0) this.scheduleStart(delay);
  }

  /** Closes the buffer and waits for the pump to end. */
  private async halt(): Promise<void> {
    this.generation++;
    const buffer = this.buffer;
    const running = this.running;
    this.buffer = undefined;
    this.running = undefined;
    this.current = undefined;
    if (buffer) {
      try {
        await buffer.close();
      } catch {
        // Closing a buffer of a lost context may fail; it is gone either way.
      }
    }
    if (running) await running;
    if (buffer) for (const s of this.subs) s.onStopped();
  }
}

/** Writes `sampling_frequency` on the device, else on its trigger; returns what reads back. */
export async function writeSamplingFrequency(device: Device, hz: number): Promise<number> {
  const target = await frequencyOwner(device);
  if (!target) {
    throw new IioError(
      'ENOENT',
      'cannot set the sampling frequency: neither the device nor its trigger has a sampling_frequency attribute',
      { device: device.id, uri: device.context.uri },
    );
  }
  await target.writeAttr('sampling_frequency', hz);
  const back = Number((await target.readAttr('sampling_frequency')).trim());
  return Number.isFinite(back) ? back : hz;
}

/** Reads the sampling frequency from the device or its trigger; undefined when neither has one. */
export async function readSamplingFrequency(device: Device): Promise<number | undefined> {
  try {
    const target = await frequencyOwner(device);
    if (!target) return undefined;
    const v = Number((await target.readAttr('sampling_frequency')).trim());
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

async function frequencyOwner(device: Device): Promise<Device | undefined> {
  if (device.attrs.some((a) => a.name === 'sampling_frequency')) return device;
  let trigger: Device | null = null;
  try {
    trigger = await device.getTrigger();
  } catch {
    return undefined;
  }
  if (trigger && trigger.attrs.some((a) => a.name === 'sampling_frequency')) return trigger;
  return undefined;
}
