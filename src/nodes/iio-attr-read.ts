/**
 * `iio-attr-read`: reads one context, device, channel, buffer or debug attribute on each
 * input message and/or every `interval` seconds.
 */
import { IioError } from '../errors';
import { isAvailableList } from '../model/attr';
import {
  autoValue,
  availableOf,
  availableValue,
  parseAvailable,
  readSelected,
  readSelector,
  topicOf,
  type AttrSelector,
} from './attr-select';
import {
  ErrorGate,
  configError,
  configNode,
  num,
  str,
  useContext,
  type IioContextNode,
} from './common';
import type { NodeConfig, NodeMessage, RedAPI, RedNode } from './red';

/** `auto` (number when the text is one number), `number`, `string`, `available` (parsed list/range). */
export type AttrOutput = 'auto' | 'number' | 'string' | 'available';

/** Reads the attribute and shapes `msg.payload` as configured. */
export async function readForMessage(
  cfg: IioContextNode,
  sel: AttrSelector,
  output: AttrOutput,
): Promise<{ payload: unknown; raw: string }> {
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
    return { payload: availableValue(parseAvailable(raw)), raw };
  }
  const raw = await readSelected(ctx, sel);
  if (output === 'string') return { payload: raw, raw };
  const v = autoValue(raw);
  if (output === 'number' && typeof v !== 'number') {
    throw new IioError('EINVAL', `value "${raw}" is not a number`, {
      device: sel.device || undefined,
      channel: sel.channel || undefined,
      attr: sel.attr,
      uri: ctx.uri,
    });
  }
  return { payload: v, raw };
}

export default function register(RED: RedAPI): void {
  RED.nodes.registerType('iio-attr-read', function (this: RedNode, config: NodeConfig) {
    RED.nodes.createNode(this, config);
    setupAttrRead(RED, this, config);
  });
}

function setupAttrRead(RED: RedAPI, node: RedNode, config: NodeConfig): void {
  const cfg = configNode(RED, node, config.context);
  if (!cfg) return;
  const sel = readSelector(config);
  const output = (str(config, 'output') || 'auto') as AttrOutput;
  const intervalS = num(config, 'interval', 0);
  if (typeof sel === 'string' || !['auto', 'number', 'string', 'available'].includes(output)) {
    const why = typeof sel === 'string' ? sel : `unknown output "${output}"`;
    configError(RED, node, new IioError('EINVAL', `iio-attr-read: ${why}`));
    return;
  }
  const errors = new ErrorGate(node);
  let timer: NodeJS.Timeout | undefined;
  let busy = false;

  const read = async (msg: NodeMessage): Promise<NodeMessage> => {
    const { payload, raw } = await readForMessage(cfg, sel, output);
    msg.payload = payload;
    msg.topic = str(config, 'topic') || topicOf(sel);
    msg.iio = {
      context: cfg.uri,
      ...(sel.device ? { device: sel.device } : {}),
      ...(sel.channel ? { channel: sel.channel, direction: sel.isOutput ? 'out' : 'in' } : {}),
      attr: sel.attr,
      raw,
    };
    return msg;
  };

  node.on('input', (msg, send, done) => {
    read(msg).then(
      (m) => {
        send(m);
        done();
      },
      (err: unknown) => done(IioError.wrap(err)),
    );
  });

  useContext(RED, node, cfg, {
    onState: (s) => {
      if (s.kind !== 'connected' || timer || !(intervalS > 0)) return;
      timer = setInterval(() => {
        // A slow context: skip a tick rather than pile up reads.
        if (busy) return;
        busy = true;
        read({})
          .then((m) => node.send(m))
          .catch((err: unknown) => errors.report(IioError.wrap(err)))
          .finally(() => (busy = false));
      }, intervalS * 1000);
    },
    onClose: () => {
      clearInterval(timer);
      timer = undefined;
    },
  });
}
