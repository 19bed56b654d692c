/**
 * `iio-event`: one message per kernel event of a device (thresholds, rate of change,
 * ...), decoded from its 64-bit code.
 */
import { IioError } from '../errors';
import type { IioEvent } from '../model/event';
import { configError, configNode, str, useContext, type ContextReporter } from './common';
import { resolveDevice, topicName } from './device-ref';
import { compactCount, errorStatus, fitStatus, statusKey, t } from './status';
import { trackRuntime } from './report';
import type { NodeConfig, NodeMessage, RedAPI, RedNode } from './red';

/** The JSON-safe payload of an event message (BigInts become strings). */
export interface EventPayload {
  /** `thresh`, `mag`, `roc`, ... */
  readonly type: string;
  /** `rising`, `falling`, `either`, ... */
  readonly direction: string;
  readonly channelType: string;
  readonly modifier: string;
  /** The channel id when the event names one of the device's channels. */
  readonly channel?: string;
  readonly channelIndex: number;
  readonly channel2: number;
  readonly differential: boolean;
  /** Event time in ms (from the kernel's ns timestamp, in the device's clock). */
  readonly timestamp: number;
  /** The exact kernel timestamp in ns, as a decimal string. */
  readonly timestampNs: string;
  /** The raw event code, `0x...`. */
  readonly code: string;
}

export function eventPayload(ev: IioEvent): EventPayload {
  return {
    type: ev.type,
    direction: ev.direction,
    channelType: ev.channelType,
    modifier: ev.modifier,
    ...(ev.channelObject ? { channel: ev.channelObject.id } : {}),
    channelIndex: ev.channel,
    channel2: ev.channel2,
    differential: ev.differential,
    timestamp: Number(ev.timestamp / 1000n) / 1000,
    timestampNs: ev.timestamp.toString(),
    code: `0x${ev.id.toString(16).padStart(16, '0')}`,
  };
}

const RETRY_MS = 5000;

export default function register(RED: RedAPI): void {
  trackRuntime(RED);
  RED.nodes.registerType('iio-event', function (this: RedNode, config: NodeConfig) {
    RED.nodes.createNode(this, config);
    setupEvent(RED, this, config);
  });
}

function setupEvent(RED: RedAPI, node: RedNode, config: NodeConfig): void {
  const cfg = configNode(RED, node, config.context);
  if (!cfg) return;
  const device = str(config, 'device');
  const hint = str(config, 'deviceId');
  const onlyType = str(config, 'eventType');
  const onlyDirection = str(config, 'direction');
  const onlyChannel = str(config, 'channel');
  if (!device) {
    configError(RED, node, new IioError('EINVAL', 'iio-event: no device selected'));
    return;
  }
  let iterator: AsyncIterableIterator<IioEvent> | undefined;
  let generation = 0;
  let retry: NodeJS.Timeout | undefined;
  let count = 0;
  let closed = false;
  let reporter: ContextReporter | undefined;

  const stop = async (): Promise<void> => {
    generation++;
    clearTimeout(retry);
    const it = iterator;
    iterator = undefined;
    if (it?.return) await it.return();
  };

  const listen = async (gen: number): Promise<void> => {
    const ctx = cfg.handle.context;
    if (!ctx || gen !== generation || closed) return;
    try {
      const dev = resolveDevice(ctx, { ref: device, hint });
      const name = topicName(ctx, dev);
      const it = dev.events();
      iterator = it;
      node.status({
        fill: 'green',
        shape: 'dot',
        text: statusKey('iio-event', 'status.listening'),
      });
      for (;;) {
        const r = await it.next();
        if (r.done || gen !== generation) break;
        const p = eventPayload(r.value);
        if (onlyType && p.type !== onlyType) continue;
        if (onlyDirection && p.direction !== onlyDirection) continue;
        if (onlyChannel && p.channel !== onlyChannel) continue;
        count++;
        const msg: NodeMessage = {
          topic: [name, p.channel ?? p.channelType, p.type, p.direction].join('/'),
          payload: p,
          iio: { context: cfg.uri, device: name, deviceId: dev.id },
        };
        node.send(msg);
        node.status({
          fill: 'green',
          shape: 'dot',
          text: fitStatus(t(RED, 'iio-event', 'status.events', { count: compactCount(count) })),
        });
      }
    } catch (err) {
      if (gen !== generation || closed) return;
      const e = IioError.wrap(err, { device, uri: cfg.uri });
      node.status(errorStatus(e));
      reporter?.errors.report(e, reporter.msg());
      await stop();
      const next = generation;
      retry = setTimeout(() => void listen(next), RETRY_MS);
    }
  };

  useContext(RED, node, cfg, {
    onState: (s, r) => {
      reporter = r;
      if (s.kind === 'connected') {
        void stop().then(() => listen(generation));
      } else {
        void stop();
      }
    },
    onClose: async () => {
      closed = true;
      await stop();
    },
  });
}
