/**
 * `iio-attr-write`: writes `msg.payload` (or a configured value) to one attribute,
 * checked first against the attribute's `_available` list or range when it has one.
 */
import { IioError } from '../errors';
import { formatAttrValue } from '../model/attr';
import {
  autoValue,
  availableOf,
  checkAvailable,
  parseAvailable,
  readSelector,
  resolveAttr,
  topicOf,
  type AttrSelector,
} from './attr-select';
import { bool, configError, configNode, str, useContext, type IioContextNode } from './common';
import type { NodeConfig, NodeMessage, RedAPI, RedNode } from './red';

/** Turns a message value into attribute text, or says why it cannot be written. */
export function valueText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean')
    return formatAttrValue(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  const what = v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
  throw new IioError(
    'EINVAL',
    `cannot write ${what} to an attribute: give a string, number or boolean`,
  );
}

/** Validates and writes; resolves with what the attribute reads back (if readable). */
export async function writeSelected(
  cfg: IioContextNode,
  sel: AttrSelector,
  value: unknown,
  validate: boolean,
): Promise<{ written: string; readBack?: string }> {
  const ctx = await cfg.handle.ready();
  const where = {
    device: sel.device || undefined,
    channel: sel.channel || undefined,
    attr: sel.attr,
    uri: ctx.uri,
  };
  if (!sel.device) throw new IioError('EPERM', 'context attributes are read-only', where);
  let text: string;
  try {
    text = valueText(value);
  } catch (err) {
    throw IioError.wrap(err, where);
  }
  const attr = resolveAttr(ctx, sel);
  if (validate) {
    const avail = availableOf(ctx, sel);
    // A list that cannot be read (a captured board's ERROR, a failing driver) says
    // nothing about the value: the driver decides.
    const list = avail ? await avail.read().catch(() => undefined) : undefined;
    if (list !== undefined) {
      const why = checkAvailable(text, parseAvailable(list));
      if (why) throw new IioError('EINVAL', `refused: ${why}`, where);
    }
  }
  await attr.write(text);
  try {
    return { written: text, readBack: await attr.read() };
  } catch {
    // Write-only attributes (e.g. some debug attributes) cannot be read back.
    return { written: text };
  }
}

export default function register(RED: RedAPI): void {
  RED.nodes.registerType('iio-attr-write', function (this: RedNode, config: NodeConfig) {
    RED.nodes.createNode(this, config);
    setupAttrWrite(RED, this, config);
  });
}

function setupAttrWrite(RED: RedAPI, node: RedNode, config: NodeConfig): void {
  const cfg = configNode(RED, node, config.context);
  if (!cfg) return;
  const sel = readSelector(config);
  if (typeof sel === 'string') {
    configError(RED, node, new IioError('EINVAL', `iio-attr-write: ${sel}`));
    return;
  }
  const fixed = str(config, 'value');
  const validate = config.validate === undefined ? true : bool(config, 'validate');
  // Writes go out in arrival order, one at a time.
  let queue: Promise<void> = Promise.resolve();

  node.on('input', (msg: NodeMessage, send, done) => {
    queue = queue.then(async () => {
      try {
        const value = fixed !== '' ? fixed : msg.payload;
        const r = await writeSelected(cfg, sel, value, validate);
        msg.topic = msg.topic ?? topicOf(sel);
        msg.iio = {
          context: cfg.uri,
          device: sel.device,
          ...(sel.channel ? { channel: sel.channel, direction: sel.isOutput ? 'out' : 'in' } : {}),
          attr: sel.attr,
          written: r.written,
          ...(r.readBack !== undefined ? { readBack: autoValue(r.readBack) } : {}),
        };
        node.status({
          fill: 'green',
          shape: 'dot',
          text: `${sel.attr}=${r.readBack ?? r.written}`.slice(0, 32),
        });
        send(msg);
        done();
      } catch (err) {
        const e = IioError.wrap(err);
        node.status({ fill: 'red', shape: 'ring', text: e.code });
        done(e);
      }
    });
  });

  useContext(RED, node, cfg, { onClose: () => queue });
}
