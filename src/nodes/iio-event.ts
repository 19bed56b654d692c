/**
 * `iio-event`: one message per kernel event of a device (thresholds, rate of change,
 * ...), decoded from its 64-bit code. Its dialog can also set the device's event
 * attributes (thresholds, enables) each time it starts listening, so an event can be
 * armed on real hardware without a shell.
 */
import { IioError } from '../errors';
import type { Context } from '../model/context';
import type { IioEvent } from '../model/event';
import type { AttrSelector } from './attr-select';
import { writeChecked } from './iio-attr-write';
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

/** One event attribute the dialog sets: a channel's (by id and direction) or the device's. */
export interface EventSetting {
  /** Channel id; '' for a device event attribute. */
  readonly channel: string;
  readonly isOutput: boolean;
  readonly attr: string;
  readonly value: string;
}

/** The dialog's `settings` (a list of `{channel, direction, attr, value}`), checked. */
export function readEventSettings(config: NodeConfig): EventSetting[] | string {
  const raw = config.settings;
  if (raw === undefined || raw === '') return [];
  if (!Array.isArray(raw)) return 'settings must be a list';
  const out: EventSetting[] = [];
  for (const x of raw as unknown[]) {
    const o = (x ?? {}) as Record<string, unknown>;
    const text = (k: string): string =>
      typeof o[k] === 'string' || typeof o[k] === 'number' ? String(o[k]).trim() : '';
    const attr = text('attr');
    if (!attr) return 'a setting has no attribute';
    const value = text('value');
    if (value === '') return `no value for ${[text('channel'), attr].filter(Boolean).join('/')}`;
    out.push({ channel: text('channel'), isOutput: text('direction') === 'out', attr, value });
  }
  return out;
}

/**
 * Writes the settings in order (each checked as iio-attr-write checks a value); resolves
 * with the errors of those that failed — the others are written all the same.
 */
export async function applyEventSettings(
  ctx: Context,
  device: { ref: string; hint: string },
  settings: readonly EventSetting[],
): Promise<IioError[]> {
  const failed: IioError[] = [];
  for (const st of settings) {
    const sel: AttrSelector = {
      device: device.ref,
      ...(device.hint ? { deviceHint: device.hint } : {}),
      channel: st.channel,
      isOutput: st.isOutput,
      kind: 'event',
      attr: st.attr,
    };
    try {
      await writeChecked(ctx, sel, st.value, true);
    } catch (err) {
      failed.push(IioError.wrap(err, { device: device.ref, uri: ctx.uri }));
    }
  }
  return failed;
}

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
  const settings = readEventSettings(config);
  if (typeof settings === 'string') {
    configError(RED, node, new IioError('EINVAL', `iio-event: ${settings}`));
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
      // Thresholds and enables first, so the events armed are those the dialog asks for;
      // a setting the driver refuses is reported, and the node listens all the same.
      const failed = await applyEventSettings(ctx, { ref: device, hint }, settings);
      if (gen !== generation || closed) return;
      for (const e of failed) reporter?.errors.report(e, reporter.msg());
      const it = dev.events();
      iterator = it;
      node.status(
        failed.length
          ? errorStatus(failed[0])
          : { fill: 'green', shape: 'dot', text: statusKey('iio-event', 'status.listening') },
      );
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
