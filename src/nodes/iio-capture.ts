/**
 * `iio-capture`: streams blocks of scans from one device into the flow.
 *
 * Zero copy: in `buffer` mode `msg.payload` IS the block the backend handed out (for
 * local: an external Buffer over a pooled block or a DMABUF). The node never releases a
 * block it sent: Node-RED clones alias Buffers and any downstream node may keep one. The
 * flow says when it is done with `msg.iio.release()` (the block goes back at once: for a
 * DMABUF, to the kernel); otherwise only the garbage collector knows when the last holder
 * is gone (the pool's finalizer then takes the block back; a dry pool copies instead of
 * stalling). Blocks the node does not send (dropped, or converted to arrays/chart points)
 * are released at once.
 *
 * Flow control: Node-RED has no backpressure. A message is "in flight" from send() until
 * the runtime has delivered it (its delivery is queued with setImmediate, ours after it).
 * With `maxInFlight` messages outstanding the newest block is dropped and counted
 * (`msg.iio.dropped`, status); older blocks already queued are never recalled.
 */
import { IioError } from '../errors';
import type { Channel } from '../model/channel';
import {
  chartPoints,
  describeChannels,
  perChannel,
  SampleTimeline,
  type CaptureOutput,
  type ChannelMeta,
} from './capture-message';
import { parseChannelList } from './channel-list';
import {
  ErrorGate,
  configError,
  Throttle,
  configNode,
  contextStatus,
  num,
  shortText,
  str,
  type IioContextNode,
} from './common';
import type { ContextState } from './context-handle';
import type { NodeConfig, NodeMessage, RedAPI, RedNode } from './red';
import type { CaptureRequest, HubBlock, HubSubscriber, StreamHub, StreamInfo } from './stream-hub';

/** Status text for a rate: `12.3 kS/s`. */
export function formatRate(samplesPerSecond: number): string {
  if (samplesPerSecond >= 1e6) return `${(samplesPerSecond / 1e6).toFixed(2)} MS/s`;
  if (samplesPerSecond >= 1e3) return `${(samplesPerSecond / 1e3).toFixed(1)} kS/s`;
  return `${samplesPerSecond.toFixed(0)} S/s`;
}

interface CaptureSettings {
  readonly device: string;
  readonly request: CaptureRequest;
  readonly output: CaptureOutput;
  readonly si: boolean;
  readonly chartPoints: number;
  readonly chartAction: 'replace' | 'append';
  readonly maxInFlight: number;
  readonly intervalMs: number;
  readonly topic: string;
}

function readSettings(config: NodeConfig): CaptureSettings | string {
  const device = str(config, 'device');
  if (!device) return 'no device selected';
  const samples = num(config, 'samples', 1024);
  if (!Number.isInteger(samples) || samples <= 0)
    return `samples per block must be a positive integer, not "${str(config, 'samples')}"`;
  const freq = num(config, 'frequency', NaN);
  if (str(config, 'frequency') !== '' && !(freq > 0))
    return `sampling frequency must be a positive number, not "${str(config, 'frequency')}"`;
  const output = (str(config, 'output') || 'buffer') as CaptureOutput;
  if (!['buffer', 'channels', 'chart'].includes(output)) return `unknown output "${output}"`;
  const maxInFlight = num(config, 'maxInFlight', 16);
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
    return `max in flight must be a positive integer, not "${str(config, 'maxInFlight')}"`;
  const points = num(config, 'chartPoints', 200);
  const intervalMs = num(config, 'interval', output === 'chart' ? 200 : 0);
  const blocks = num(config, 'blocks', NaN);
  const transfer = str(config, 'transfer') || 'auto';
  if (transfer !== 'auto' && transfer !== 'dmabuf' && transfer !== 'fileio')
    return `transfer must be auto, dmabuf or fileio, not "${transfer}"`;
  return {
    device,
    request: {
      channels: parseChannelList(config.channels),
      samples,
      ...(str(config, 'trigger') ? { trigger: str(config, 'trigger') } : {}),
      ...(freq > 0 ? { samplingFrequency: freq } : {}),
      ...(Number.isInteger(blocks) && blocks > 0 ? { blocks } : {}),
      ...(transfer !== 'auto' ? { transfer } : {}),
    },
    output,
    si: str(config, 'values') === 'si',
    chartPoints: Number.isInteger(points) && points > 0 ? points : 200,
    chartAction: str(config, 'chartAction') === 'append' ? 'append' : 'replace',
    maxInFlight,
    intervalMs: Number.isFinite(intervalMs) && intervalMs > 0 ? intervalMs : 0,
    topic: str(config, 'topic'),
  };
}

export default function register(RED: RedAPI): void {
  RED.nodes.registerType('iio-capture', function (this: RedNode, config: NodeConfig) {
    RED.nodes.createNode(this, config);
    setupCapture(RED, this, config);
  });
}

function setupCapture(RED: RedAPI, node: RedNode, config: NodeConfig): void {
  const cfg = configNode(RED, node, config.context);
  if (!cfg) return;
  const settings = readSettings(config);
  if (typeof settings === 'string') {
    configError(RED, node, new IioError('EINVAL', `iio-capture: ${settings}`));
    return;
  }
  new CaptureRunner(RED, node, cfg, settings).start();
}

/** One capture node's state: its hub subscription, counters and status. */
class CaptureRunner implements HubSubscriber {
  readonly id: string;
  readonly request: CaptureRequest;
  private hub: StreamHub | undefined;
  private channels: Channel[] = [];
  private meta: ChannelMeta[] = [];
  private inFlight = 0;
  private dropped = 0;
  private skipped = 0;
  private lost = 0;
  private lastSent = 0;
  private lastBlockAt = 0;
  private readonly timeline = new SampleTimeline();
  private samplesSinceStatus = 0;
  private statusSince = Date.now();
  private streaming = false;
  private closed = false;
  private readonly statusThrottle = new Throttle(1000);
  private readonly errors: ErrorGate;
  private readonly user = {
    id: '',
    onContextState: (s: ContextState): void => this.onContextState(s),
  };

  constructor(
    private readonly RED: RedAPI,
    private readonly node: RedNode,
    private readonly cfg: IioContextNode,
    private readonly settings: CaptureSettings,
  ) {
    this.id = node.id;
    this.user.id = node.id;
    this.request = settings.request;
    this.errors = new ErrorGate(node);
  }

  start(): void {
    const node = this.node;
    this.cfg.handle.register(this.user);
    this.hub = this.cfg.handle.hub(this.settings.device);
    this.hub.subscribe(this);
    node.on('close', (_removed, done) => {
      this.closed = true;
      this.statusThrottle.cancel();
      const hub = this.hub;
      this.hub = undefined;
      (hub ? hub.unsubscribe(this) : Promise.resolve())
        .then(() => this.cfg.handle.deregister(this.user))
        .catch((err: unknown) => node.error(err))
        .finally(() => {
          node.status({});
          done();
        });
    });
  }

  private onContextState(s: ContextState): void {
    if (this.closed) return;
    if (s.kind === 'connected') {
      if (!this.streaming)
        this.node.status({
          fill: 'yellow',
          shape: 'ring',
          text: this.RED._('iio-capture.status.starting'),
        });
      return;
    }
    this.streaming = false;
    this.statusThrottle.cancel();
    this.node.status(contextStatus(this.RED, s));
  }

  onStarted(info: StreamInfo): void {
    const wanted = this.request.channels;
    const inBuffer = info.buffer.channels;
    this.channels = wanted.length
      ? wanted
          .map((w) => inBuffer.find((c) => c.id === w || c.name === w || c.label === w))
          .filter((c): c is Channel => c !== undefined)
      : [...inBuffer];
    this.meta = describeChannels(
      info,
      this.settings.output === 'buffer' ? undefined : this.channels,
    );
    this.streaming = true;
    this.timeline.reset();
    this.lastBlockAt = 0;
    this.statusSince = Date.now();
    this.samplesSinceStatus = 0;
    this.node.status({
      fill: 'green',
      shape: 'dot',
      text: this.RED._('iio-capture.status.streaming'),
    });
  }

  onStopped(): void {
    this.streaming = false;
  }

  onError(err: IioError): void {
    if (this.closed) return;
    this.streaming = false;
    this.statusThrottle.cancel();
    this.node.status({ fill: 'red', shape: 'ring', text: shortText(err) });
    this.errors.report(err);
  }

  onBlock(block: HubBlock, info: StreamInfo): boolean {
    if (this.closed) return false;
    this.lost += block.lost;
    const spanMs = this.lastBlockAt ? block.receivedAt - this.lastBlockAt : 0;
    this.lastBlockAt = block.receivedAt;
    const chart = this.settings.output === 'chart';
    this.samplesSinceStatus += block.samples;
    const scanBytes = info.buffer.scanBytes;
    const per = this.request.samples;
    // The hub's block may be larger than ours (another node asked for more): slice it.
    for (let first = 0; first < block.samples; first += per) {
      const n = Math.min(per, block.samples - first);
      const data =
        n === block.samples
          ? block.data
          : block.data.subarray(first * scanBytes, (first + n) * scanBytes);
      // Every slice advances the chart clock, sent or not.
      const at = chart
        ? this.timeline.place(
            n,
            first === 0 ? block.lost : 0,
            block.receivedAt,
            info.samplingFrequency,
            spanMs * (n / block.samples),
          )
        : undefined;
      if (this.settings.intervalMs && block.receivedAt - this.lastSent < this.settings.intervalMs) {
        this.skipped++;
        continue;
      }
      if (this.inFlight >= this.settings.maxInFlight) {
        this.dropped++;
        continue;
      }
      // A Buffer payload is the block's memory: its share goes back when the flow calls
      // msg.iio.release(), else when the collector finds the payload unreachable.
      const release = this.settings.output === 'buffer' ? block.hold() : undefined;
      const msg = this.message(info, block, data, n, at, release);
      this.lastSent = block.receivedAt;
      this.inFlight++;
      this.node.send(msg);
      // Queued after the runtime's own delivery of msg (setImmediate is FIFO).
      setImmediate(() => this.inFlight--);
    }
    this.statusThrottle.run(() => this.showRate());
    return false;
  }

  private message(
    info: StreamInfo,
    block: HubBlock,
    data: Buffer,
    samples: number,
    at: { startMs: number; dtMs: number } | undefined,
    release: (() => void) | undefined,
  ): NodeMessage {
    const s = this.settings;
    let payload: unknown;
    if (s.output === 'buffer') payload = data;
    else if (s.output === 'channels') payload = perChannel(info, data, this.channels, s.si);
    else {
      const { startMs, dtMs } = at ?? { startMs: block.receivedAt, dtMs: 0 };
      payload = chartPoints(info, data, this.channels, s.si, s.chartPoints, startMs, dtMs);
    }
    const msg: NodeMessage = {
      topic: s.topic || info.device.name || info.device.id,
      payload,
      iio: {
        context: this.cfg.uri,
        device: info.device.id,
        ...(info.device.name ? { deviceName: info.device.name } : {}),
        channels: this.meta,
        scanBytes: info.buffer.scanBytes,
        samples,
        seq: block.seq,
        dropped: this.dropped,
        skipped: this.skipped,
        lost: this.lost,
        timestamp: block.receivedAt,
        ...(info.samplingFrequency !== undefined
          ? { samplingFrequency: info.samplingFrequency }
          : {}),
        ...(s.output === 'buffer' ? {} : { values: s.si ? 'si' : 'raw' }),
        ...(release ? { release } : {}),
      },
    };
    if (s.output === 'chart') msg.action = s.chartAction;
    return msg;
  }

  private showRate(): void {
    if (this.closed || !this.streaming) return;
    const now = Date.now();
    const secs = Math.max(0.001, (now - this.statusSince) / 1000);
    const rate = this.samplesSinceStatus / secs;
    this.statusSince = now;
    this.samplesSinceStatus = 0;
    const problems = this.dropped + this.lost;
    let text = formatRate(rate);
    if (this.dropped) text += ` ${this.dropped} dropped`;
    if (this.lost) text += ` ${this.lost} lost`;
    this.node.status({ fill: problems ? 'yellow' : 'green', shape: 'dot', text });
  }
}
