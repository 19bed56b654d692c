/**
 * `iio-sparkplug`: publishes an `iio-context` as an Eclipse Sparkplug B edge node (the
 * context's IIO devices as Sparkplug devices) on an MQTT broker of its own configuration —
 * its own connection because the NDEATH will, with a bdSeq new for every CONNECT, belongs
 * to the connection (docs/decisions.md). The protocol lives in sparkplug/ (edge.ts); this file
 * reads the configuration, shows the status and sends one message per handled command.
 */
import { hostname } from 'node:os';
import { IioError } from '../errors';
import { configError, configNode, num, str, Throttle } from './common';
import type { NodeConfig, NodeStatus, RedAPI, RedNode } from './red';
import { SparkplugEdge, type EdgeOptions, type EdgeStatus } from './sparkplug/edge';
import { catalogueTranslate, type Translate } from './sparkplug/messages';
import { deviceIdOf, invalidId } from './sparkplug/topics';

interface Credentials {
  readonly username?: string;
  readonly password?: string;
}

/** The edge node's settings from the editor's, or the text of what is wrong (key + substitutions). */
export function readEdgeSettings(
  config: NodeConfig,
  t: Translate,
  credentials: Credentials = {},
): Omit<EdgeOptions, 't' | 'log' | 'onStatus' | 'onCommand'> | string {
  const brokerUrl = str(config, 'broker') || 'mqtt://localhost:1883';
  if (!/^(mqtts?|wss?):\/\/[^/]+/.test(brokerUrl)) return t('config.badBroker', { url: brokerUrl });
  const groupId = str(config, 'group') || 'IIO';
  const edgeNodeId = str(config, 'edgeNode') || deviceIdOf(hostname());
  for (const [what, id] of [
    [t('label.group'), groupId],
    [t('label.edgeNode'), edgeNodeId],
  ]) {
    const why = invalidId(id);
    if (why) return t('config.badId', { what, id, why });
  }
  const intervalMs = num(config, 'interval', 1000);
  if (!(intervalMs >= 10)) return t('config.badInterval', { value: str(config, 'interval') });
  const samples = num(config, 'samples', NaN);
  if (str(config, 'samples') !== '' && !(Number.isInteger(samples) && samples > 0))
    return t('config.badSamples', { value: str(config, 'samples') });
  const keepaliveS = num(config, 'keepalive', 30);
  if (!(keepaliveS >= 1)) return t('config.badKeepalive', { value: str(config, 'keepalive') });
  const devices = str(config, 'devices')
    .split(/[\s,]+/)
    .filter(Boolean);
  return {
    brokerUrl,
    clientId: str(config, 'clientId') || `iiokit-${groupId}-${edgeNodeId}`,
    keepaliveS,
    groupId,
    edgeNodeId,
    devices,
    intervalMs,
    ...(Number.isInteger(samples) && samples > 0 ? { samples } : {}),
    ...(credentials.username ? { username: credentials.username } : {}),
    ...(credentials.password ? { password: credentials.password } : {}),
    ...(config.tlsInsecure === true ? { rejectUnauthorized: false } : {}),
  };
}

/** `RED._` for this node, reading the catalogue itself where the runtime has none (test helper). */
function translator(RED: RedAPI): Translate {
  const own = catalogueTranslate();
  return (key, subs) => {
    const full = `iio-sparkplug.${key}`;
    const text = RED._(full, subs as Record<string, unknown> | undefined);
    return text === full ? own(key, subs) : text;
  };
}

export default function register(RED: RedAPI): void {
  RED.nodes.registerType(
    'iio-sparkplug',
    function (this: RedNode & { credentials?: Credentials }, config: NodeConfig) {
      RED.nodes.createNode(this, config);
      setup(RED, this, config);
    },
    { credentials: { username: { type: 'text' }, password: { type: 'password' } } },
  );
}

function setup(
  RED: RedAPI,
  node: RedNode & { credentials?: Credentials },
  config: NodeConfig,
): void {
  const cfg = configNode(RED, node, config.context);
  if (!cfg) return;
  const t = translator(RED);
  const settings = readEdgeSettings(config, t, node.credentials ?? {});
  if (typeof settings === 'string') {
    configError(RED, node, new IioError('EINVAL', `iio-sparkplug: ${settings}`));
    return;
  }
  const throttle = new Throttle(1000);
  let lastErrorAt = 0;
  const show = (s: EdgeStatus): void => {
    let status: NodeStatus;
    switch (s.kind) {
      case 'connecting':
        status = {
          fill: 'yellow',
          shape: 'ring',
          text:
            s.attempt > 0
              ? t('status.reconnecting', { attempt: s.attempt })
              : t('status.connecting'),
        };
        break;
      case 'online':
        status = {
          fill: 'green',
          shape: 'dot',
          text: t('status.online', { bdSeq: s.bdSeq, devices: s.devices }),
        };
        break;
      case 'error': {
        status = { fill: 'red', shape: 'ring', text: s.error.message.slice(0, 32) };
        // A broker that stays away would log every retry: once a minute is enough.
        const now = Date.now();
        if (now - lastErrorAt > 60000) {
          lastErrorAt = now;
          node.warn(t('log.broker', { url: settings.brokerUrl, error: s.error.message }));
        }
        break;
      }
      case 'stopped':
        status = {};
        break;
    }
    throttle.run(() => node.status(status));
  };
  const edge = new SparkplugEdge(cfg.handle, {
    ...settings,
    t,
    log: (level, text) => (level === 'warn' ? node.warn(text) : node.log(text)),
    onStatus: show,
    onCommand: (r) => {
      node.send({
        topic: `${r.verb}/${r.device ? `${r.device}/` : ''}${r.metric}`,
        payload: r,
      });
    },
  });
  edge.start();
  node.on('close', (_removed, done) => {
    throttle.cancel();
    edge
      .stop()
      .catch((err: unknown) => node.error(err))
      .finally(() => {
        node.status({});
        done();
      });
  });
}
