/**
 * `iio-attr-read`: reads one context, device, channel, buffer or debug attribute on each
 * input message and/or every `interval` seconds.
 */
import { IioError } from '../errors';
import { isAvailableList } from '../model/attr';
import type { Context } from '../model/context';
import {
  autoValue,
  availableOf,
  availableValue,
  checkSelected,
  isStatic,
  parseAvailable,
  readSelected,
  readSelector,
  selectedDevice,
  selectorFor,
  topicOf,
  type AttrSelector,
} from './attr-select';
import {
  configError,
  configNode,
  evaluate,
  num,
  str,
  useContext,
  type IioContextNode,
} from './common';
import { topicName } from './device-ref';
import { readable, trackRuntime } from './report';
import type { NodeConfig, NodeMessage, RedAPI, RedNode } from './red';
import { errorStatus } from './status';

/** `auto` (number when the text is one number), `number`, `string`, `available` (parsed list/range). */
export type AttrOutput = 'auto' | 'number' | 'string' | 'available';

/** Reads the attribute and shapes `msg.payload` as configured. */
export async function readForMessage(
  cfg: IioContextNode,
  sel: AttrSelector,
  output: AttrOutput,
): Promise<{ payload: unknown; raw: string; ctx: Context }> {
  const ctx = await cfg.handle.ready();
  if (output === 'available') {
    const isList = isAvailableList(sel.attr);
    const source = isList ? undefined : availableOf(ctx, sel);
    if (!source && !isList) {
      throw new IioError('ENOENT', `attribute "${sel.attr}" has no ${sel.attr}_available list`, {
        device: sel.device || undefined,
        channel: sel.channel || undefined,
        attr: sel.attr,
        uri: ctx.uri,
      });
    }
    const raw = source ? await source.read() : await readSelected(ctx, sel);
    return { payload: availableValue(parseAvailable(raw)), raw, ctx };
  }
  const raw = await readSelected(ctx, sel);
  if (output === 'string') return { payload: raw, raw, ctx };
  const v = autoValue(raw);
  if (output === 'number' && typeof v !== 'number') {
    throw new IioError('EINVAL', `value "${raw}" is not a number`, {
      device: sel.device || undefined,
      channel: sel.channel || undefined,
      attr: sel.attr,
      uri: ctx.uri,
    });
  }
  return { payload: v, raw, ctx };
}

/** `msg.iio` of an attribute message: where the value came from. */
export function attrMeta(ctx: Context, uri: string, sel: AttrSelector): Record<string, unknown> {
  let device: Record<string, unknown> = {};
  let isOutput = sel.isOutput === true;
  if (sel.device) {
    const d = selectedDevice(ctx, sel);
    device = { device: topicName(ctx, d), deviceId: d.id };
    // A channel from a message without a direction: say which one was used.
    if (sel.channel) isOutput = d.findChannel(sel.channel, sel.isOutput)?.isOutput ?? isOutput;
  }
  return {
    context: uri,
    ...device,
    ...(sel.channel ? { channel: sel.channel, direction: isOutput ? 'out' : 'in' } : {}),
    ...(sel.kind ? { kind: sel.kind } : {}),
    attr: sel.attr,
  };
}

export default function register(RED: RedAPI): void {
  trackRuntime(RED);
  RED.nodes.registerType('iio-attr-read', function (this: RedNode, config: NodeConfig) {
    RED.nodes.createNode(this, config);
    setupAttrRead(RED, this, config);
  });
}

function setupAttrRead(RED: RedAPI, node: RedNode, config: NodeConfig): void {
  const cfg = configNode(RED, node, config.context);
  if (!cfg) return;
  const configured = readSelector(config);
  const output = (str(config, 'output') || 'auto') as AttrOutput;
  const intervalS = num(config, 'interval', 0);
  const topic = str(config, 'topic');
  const topicType = str(config, 'topicType') || 'str';
  let why: string | undefined;
  if (typeof configured === 'string') why = configured;
  else if (!['auto', 'number', 'string', 'available'].includes(output))
    why = `unknown output "${output}"`;
  else if (intervalS > 0 && !isStatic(configured))
    why = 'reading on an interval needs the attribute set in the node (there is no msg.attribute)';
  if (why !== undefined || typeof configured === 'string') {
    configError(RED, node, new IioError('EINVAL', `iio-attr-read: ${why ?? ''}`));
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  let busy = false;

  const read = async (msg: NodeMessage): Promise<NodeMessage> => {
    const sel = selectorFor(configured, msg);
    const { payload, raw, ctx } = await readForMessage(cfg, sel, output);
    msg.payload = payload;
    const t = topic ? await evaluate(RED, node, topic, topicType, msg) : undefined;
    msg.topic = t !== undefined && t !== '' ? String(t) : topicOf(ctx, sel);
    msg.iio = { ...attrMeta(ctx, cfg.uri, sel), raw };
    return msg;
  };

  node.on('input', (msg, send, done) => {
    read(msg).then(
      (m) => {
        send(m);
        done();
      },
      (err: unknown) => done(readable(IioError.wrap(err))),
    );
  });

  useContext(RED, node, cfg, {
    onState: (s, reporter) => {
      if (s.kind !== 'connected') return;
      // What the dialog names must exist: say so at deploy, not at the first read.
      if (isStatic(configured)) {
        const ctx = cfg.handle.context;
        try {
          if (ctx) checkSelected(ctx, selectorFor(configured));
        } catch (err) {
          const e = IioError.wrap(err, { uri: cfg.uri });
          node.status(errorStatus(e));
          reporter.errors.report(e, reporter.msg());
          return;
        }
      }
      if (timer || !(intervalS > 0)) return;
      timer = setInterval(() => {
        // A slow context: skip a tick rather than pile up reads.
        if (busy) return;
        busy = true;
        read({})
          .then((m) => node.send(m))
          .catch((err: unknown) => reporter.errors.report(IioError.wrap(err), reporter.msg()))
          .finally(() => (busy = false));
      }, intervalS * 1000);
    },
    onClose: () => {
      clearInterval(timer);
      timer = undefined;
    },
  });
}
