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
  captureMeta,
  chartPoints,
  describeChannels,
  MessageIds,
  perChannel,
  SampleTimeline,
  type CaptureOutput,
  type StreamLayout,
} from './capture-message';
import { parseChannelList } from './channel-list';
import { ContextReporter, configError, configNode, num, str, type IioContextNode } from './common';
import type { ContextState } from './context-handle';
import { trackRuntime } from './report';
import type { NodeConfig, NodeMessage, RedAPI, RedNode } from './red';
import { compactCount, contextStatus, errorStatus, fitStatus, statusKey, t } from './status';
import type { HubLink } from './hub-link';
import type { CaptureRequest, HubBlock, HubSubscriber, StreamInfo } from './stream-hub';

/** Status text for a rate: `12.3 kS/s`. */
export function formatRate(samplesPerSecond: number): string {
  if (samplesPerSecond >= 1e6) return `${(samplesPerSecond / 1e6).toFixed(2)} MS/s`;
  if (samplesPerSecond >= 1e3) return `${(samplesPerSecond / 1e3).toFixed(1)} kS/s`;
  return `${samplesPerSecond.toFixed(0)} S/s`;
}

interface CaptureSettings {
  readonly device: string;
  /** The id the device had when the flow was saved. */
  readonly deviceHint: string;
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
    deviceHint: str(config, 'deviceId'),
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
  trackRuntime(RED);
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
  // Topic: literal, or an environment variable (read once: a source node has no message).
  const topic =
    str(config, 'topicType') === 'env' && settings.topic
      ? String(RED.util.evaluateNodeProperty(settings.topic, 'env', node, {}) ?? '')
      : settings.topic;
  new CaptureRunner(RED, node, cfg, { ...settings, topic }).start();
}

/** Status refresh period (ms): the rate, and drops and losses of the last period. */
const STATUS_MS = 1000;

/** One capture node's state: its hub subscription, counters and status. */
class CaptureRunner implements HubSubscriber {
  readonly id: string;
  readonly request: CaptureRequest;
  private hub: HubLink | undefined;
  private channels: Channel[] = [];
  /** What every msg.iio of the running stream shares. */
  private layout: StreamLayout | undefined;
  private readonly ids = new MessageIds();
  private inFlight = 0;
  private dropped = 0;
  private skipped = 0;
  private lost = 0;
  private lastSent = 0;
  private lastBlockAt = 0;
  private readonly timeline = new SampleTimeline();
  private samplesSinceStatus = 0;
  /** Rate window: the arrival of its first block, and the scans of the blocks after it. */
  private windowStart = 0;
  private windowScans = 0;
  private droppedAtStatus = 0;
  private lostAtStatus = 0;
  private statusSince = Date.now();
  private stalled = false;
  private samplingFrequency: number | undefined;
  private streaming = false;
  private closed = false;
  private ticker: NodeJS.Timeout | undefined;
  /** An outage of the connection is under way (its lost scans come with the next block). */
  private outage: { since: number } | undefined;
  private readonly reporter: ContextReporter;
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
    this.reporter = new ContextReporter(RED, node, cfg.uri);
  }

  start(): void {
    const node = this.node;
    this.cfg.handle.register(this.user);
    this.hub = this.cfg.handle.hub(this.settings.device, this.settings.deviceHint || undefined);
    this.hub.subscribe(this);
    this.ticker = setInterval(() => this.showStatus(), STATUS_MS);
    this.ticker.unref?.();
    node.on('close', (_removed, done) => {
      this.closed = true;
      clearInterval(this.ticker);
      this.reporter.close();
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
    this.reporter.onState(s);
    if (s.kind === 'reconnecting' && s.cause && !this.outage && this.streaming) {
      // The stream waits for the connection (the library resumes it and counts the
      // scans the outage cost): the count comes with the first block after it.
      this.outage = { since: Date.now() };
    }
    if (s.kind === 'connected') {
      if (!this.streaming)
        this.node.status({
          fill: 'yellow',
          shape: 'ring',
          text: statusKey('iio-capture', 'status.starting'),
        });
      return;
    }
    this.streaming = false;
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
    const s = this.settings;
    this.layout = {
      context: this.cfg.uri,
      device: info.device.id,
      ...(info.device.name ? { deviceName: info.device.name } : {}),
      channels: describeChannels(info, s.output === 'buffer' ? undefined : this.channels),
      scanBytes: info.buffer.scanBytes,
      ...(info.samplingFrequency !== undefined
        ? { samplingFrequency: info.samplingFrequency }
        : {}),
      ...(s.output === 'buffer' ? {} : { values: s.si ? 'si' : 'raw' }),
    };
    this.streaming = true;
    this.stalled = false;
    this.samplingFrequency = info.samplingFrequency;
    this.timeline.reset();
    this.lastBlockAt = 0;
    this.statusSince = Date.now();
    this.samplesSinceStatus = 0;
    this.reporter.errors.clear();
    this.node.status({
      fill: 'green',
      shape: 'dot',
      text: statusKey('iio-capture', 'status.streaming'),
    });
  }

  onStopped(): void {
    this.streaming = false;
  }

  onError(err: IioError): void {
    if (this.closed) return;
    this.streaming = false;
    this.node.status(errorStatus(err));
    this.reporter.errors.report(err, this.reporter.msg());
  }

  onBlock(block: HubBlock, info: StreamInfo): boolean {
    if (this.closed) return false;
    this.lost += block.lost;
    if (this.outage) {
      // Back after an outage: one line in the log with what it cost (Catch heard of the
      // outage when it began; msg.iio.lost and the status carry the count).
      const secs = ((block.receivedAt - this.outage.since) / 1000).toFixed(1);
      this.node.warn(
        t(this.RED, 'iio-capture', 'log.resumed', { seconds: secs, lost: block.lost }),
      );
      this.outage = undefined;
    }
    if (!this.streaming) {
      this.streaming = true;
      this.statusSince = Date.now();
      this.samplesSinceStatus = 0;
    }
    const spanMs = this.lastBlockAt ? block.receivedAt - this.lastBlockAt : 0;
    this.lastBlockAt = block.receivedAt;
    if (this.windowStart === 0) this.windowStart = block.receivedAt;
    else this.windowScans += block.samples;
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
      _msgid: this.ids.next(),
      topic: s.topic || info.topicName,
      payload,
      iio: captureMeta(this.layout!, {
        samples,
        seq: block.seq,
        dropped: this.dropped,
        skipped: this.skipped,
        lost: this.lost,
        timestamp: block.receivedAt,
        release,
      }),
    };
    if (s.output === 'chart') msg.action = s.chartAction;
    return msg;
  }

  /**
   * Once a second while streaming: the rate of the last period, green; yellow with the
   * drops or losses of that period when there were some (a transient problem fades with
   * the next clean period); yellow "stalled" when blocks stop coming for longer than the
   * device's rate explains.
   */
  private showStatus(): void {
    if (this.closed || !this.streaming) return;
    const now = Date.now();
    const secs = Math.max(0.001, (now - this.statusSince) / 1000);
    const samples = this.samplesSinceStatus;
    const dropped = this.dropped - this.droppedAtStatus;
    const lost = this.lost - this.lostAtStatus;
    if (samples === 0 && dropped === 0 && lost === 0) {
      const blockMs = this.samplingFrequency
        ? (1000 * this.request.samples) / this.samplingFrequency
        : 0;
      const quietMs = now - (this.lastBlockAt || this.statusSince);
      if (!this.stalled && quietMs > Math.max(3000, 3 * blockMs)) {
        this.stalled = true;
        this.node.status({
          fill: 'yellow',
          shape: 'ring',
          text: statusKey('iio-capture', 'status.stalled'),
        });
      }
      // A slow device: keep the last rate until blocks are overdue.
      return;
    }
    this.stalled = false;
    this.statusSince = now;
    this.samplesSinceStatus = 0;
    this.droppedAtStatus = this.dropped;
    this.lostAtStatus = this.lost;
    // From block arrival to block arrival: a second holds 3 or 4 blocks of 256 scans at
    // 1 kHz, so scans per wall-clock second would swing between 768 and 1024.
    const spanMs = this.lastBlockAt - this.windowStart;
    const perSecond =
      this.windowScans > 0 && spanMs >= 100 ? (this.windowScans * 1000) / spanMs : samples / secs;
    this.windowStart = this.lastBlockAt;
    this.windowScans = 0;
    const rate = formatRate(perSecond);
    let text = rate;
    if (lost && dropped)
      text = t(this.RED, 'iio-capture', 'status.lost_and_dropped', {
        lost: compactCount(lost),
        dropped: compactCount(dropped),
      });
    else if (lost)
      text = t(this.RED, 'iio-capture', 'status.lost', { rate, n: compactCount(lost) });
    else if (dropped)
      text = t(this.RED, 'iio-capture', 'status.dropped', { rate, n: compactCount(dropped) });
    this.node.status({
      fill: lost || dropped ? 'yellow' : 'green',
      shape: 'dot',
      text: fitStatus(text),
    });
  }
}
