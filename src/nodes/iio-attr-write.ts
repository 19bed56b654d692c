/**
 * `iio-attr-write`: writes `msg.payload` (or a configured value) to one attribute,
 * checked first against the attribute's `_available` list or range when it has one.
 */
import { IioError, type IioErrorContext } from '../errors';
import { formatAttrValue } from '../model/attr';
import type { Context } from '../model/context';
import {
  autoValue,
  availableOf,
  checkAvailable,
  checkNumeric,
  checkSelected,
  isStatic,
  parseAvailable,
  readSelector,
  resolveAttr,
  selectorFor,
  topicOf,
  type AttrSelector,
} from './attr-select';
import {
  bool,
  configError,
  configNode,
  evaluate,
  str,
  useContext,
  type IioContextNode,
} from './common';
import { attrMeta } from './iio-attr-read';
import { readable, trackRuntime } from './report';
import type { NodeConfig, NodeMessage, RedAPI, RedNode } from './red';
import { errorStatus, fitStatus } from './status';

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

/**
 * Validates and writes; resolves with what the attribute reads back (if readable).
 * Validation refuses (EINVAL, before anything is written) a value outside the attribute's
 * `_available` list or `[min step max]` range, and a value of the wrong type for what the
 * attribute holds (text for a number, a fraction for an integer).
 */
export async function writeSelected(
  cfg: IioContextNode,
  sel: AttrSelector,
  value: unknown,
  validate: boolean,
): Promise<{ written: string; readBack?: string; ctx: Context }> {
  const ctx = await cfg.handle.ready();
  if (!sel.device)
    throw new IioError('EPERM', 'context attributes are read-only', whereOf(ctx, sel));
  return writeChecked(ctx, sel, value, validate);
}

function whereOf(ctx: Context, sel: AttrSelector): IioErrorContext {
  return {
    device: sel.device || undefined,
    channel: sel.channel || undefined,
    attr: sel.attr,
    uri: ctx.uri,
  };
}

/**
 * The write every node makes (iio-attr-write, Sparkplug commands): the value as attribute
 * text, refused before anything is written when `validate` and it falls outside the
 * `_available` list/range; resolves with what the attribute reads back (if readable).
 */
export async function writeChecked(
  ctx: Context,
  sel: AttrSelector,
  value: unknown,
  validate: boolean,
): Promise<{ written: string; readBack?: string; ctx: Context }> {
  const where = whereOf(ctx, sel);
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
    // Write-only attributes (some debug ones) have no current value to compare with.
    const current = await attr.read().catch(() => undefined);
    const why = current === undefined ? undefined : checkNumeric(text, current);
    if (why) throw new IioError('EINVAL', `refused: ${why}`, where);
  }
  await attr.write(text);
  try {
    return { written: text, readBack: await attr.read(), ctx };
  } catch {
    // Write-only attributes (e.g. some debug attributes) cannot be read back.
    return { written: text, ctx };
  }
}

export default function register(RED: RedAPI): void {
  trackRuntime(RED);
  RED.nodes.registerType('iio-attr-write', function (this: RedNode, config: NodeConfig) {
    RED.nodes.createNode(this, config);
    setupAttrWrite(RED, this, config);
  });
}

function setupAttrWrite(RED: RedAPI, node: RedNode, config: NodeConfig): void {
  const cfg = configNode(RED, node, config.context);
  if (!cfg) return;
  const configured = readSelector(config);
  if (typeof configured === 'string') {
    configError(RED, node, new IioError('EINVAL', `iio-attr-write: ${configured}`));
    return;
  }
  // Older flows: no type, a blank value meaning msg.payload and any other a literal.
  const fixed = str(config, 'value');
  const valueType = str(config, 'valueType') || (fixed === '' ? 'msg' : 'str');
  const valueProp = valueType === 'msg' && fixed === '' ? 'payload' : fixed;
  const validate = config.validate === undefined ? true : bool(config, 'validate');
  // Writes go out in arrival order, one at a time.
  let queue: Promise<void> = Promise.resolve();

  node.on('input', (msg: NodeMessage, send, done) => {
    queue = queue.then(async () => {
      try {
        const sel = selectorFor(configured, msg);
        const value = await evaluate(RED, node, valueProp, valueType, msg);
        const r = await writeSelected(cfg, sel, value, validate);
        msg.topic = msg.topic ?? topicOf(r.ctx, sel);
        msg.iio = {
          ...attrMeta(r.ctx, cfg.uri, sel),
          written: r.written,
          ...(r.readBack !== undefined ? { readBack: autoValue(r.readBack) } : {}),
        };
        node.status({
          fill: 'green',
          shape: 'dot',
          text: fitStatus(`${sel.attr} = ${r.readBack ?? r.written}`),
        });
        send(msg);
        done();
      } catch (err) {
        const e = IioError.wrap(err);
        node.status(errorStatus(e));
        done(readable(e));
      }
    });
  });

  useContext(RED, node, cfg, {
    onState: (s, reporter) => {
      if (s.kind !== 'connected' || !isStatic(configured)) return;
      // What the dialog names must exist: say so at deploy, not at the first write.
      const ctx = cfg.handle.context;
      try {
        if (ctx) checkSelected(ctx, selectorFor(configured));
      } catch (err) {
        const e = IioError.wrap(err, { uri: cfg.uri });
        node.status(errorStatus(e));
        reporter.errors.report(e, reporter.msg());
      }
    },
    onClose: () => queue,
  });
}
