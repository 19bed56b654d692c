/**
 * Node status texts: short (Node-RED's guideline is about 20 characters), never cut in the
 * middle of a word, from locale keys. Fixed texts are handed to the editor as keys (it
 * translates them into the browser's language, as core nodes do with
 * `node-red:common.status.*`); texts with numbers are translated in the runtime. The full
 * sentence of an error goes to the log and to Catch, not into the status.
 */
import { IioError } from '../errors';
import type { ContextState } from './context-handle';
import type { NodeStatus, RedAPI } from './red';

/** The npm module name: the i18n namespace of a node type is `<module>/<type>`. */
export const MODULE = '@iiokit/node-red-iio';

/** Longest status text we make (Node-RED's style guide asks for about 20). */
export const STATUS_MAX = 22;

/** Cuts a text to `max` characters at a word boundary, marking the cut with "…". */
export function fitStatus(text: string, max = STATUS_MAX): string {
  const t = text.trim().replace(/\s+/g, ' ');
  if (t.length <= max) return t;
  const cut = t.lastIndexOf(' ', max - 1);
  // One long word (an errno code, a number): keep it whole rather than break it.
  if (cut <= 0) return t.split(' ')[0];
  return `${t.slice(0, cut).replace(/[,:;]$/, '')}…`;
}

/** 999, 12k, 3.4M: counts that fit in a status. */
export function compactCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1e6) return `${Math.round(n / 1000)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

/** A message from one of our catalogues (`iio-capture.status.x`), in the runtime's language. */
export function t(RED: RedAPI, type: string, key: string, subs?: Record<string, unknown>): string {
  const full = `${MODULE}/${type}:${type}.${key}`;
  const text = RED._(full, subs);
  // Outside a real runtime (the test helper) `_` echoes the key: show the short key.
  return text === full ? `${type}.${key}` : text;
}

/** A fixed status text the editor translates (`node-red:common.status.connected`, ours). */
export function statusKey(type: string, key: string): string {
  return `${MODULE}/${type}:${type}.${key}`;
}

/** Red ring with the errno code and what it concerns: `ENOENT scale`, `ECONNREFUSED`. */
export function errorStatus(err: unknown): NodeStatus {
  const e = IioError.wrap(err);
  const what = e.attr ?? e.channel ?? e.device ?? '';
  const text = what && e.code.length + what.length < STATUS_MAX ? `${e.code} ${what}` : e.code;
  return { fill: 'red', shape: 'ring', text: fitStatus(text) };
}

/** The status a user node shows for its context's state. */
export function contextStatus(RED: RedAPI, state: ContextState): NodeStatus {
  switch (state.kind) {
    case 'idle':
      return {};
    case 'connecting':
      return { fill: 'yellow', shape: 'ring', text: 'node-red:common.status.connecting' };
    case 'connected':
      return { fill: 'green', shape: 'dot', text: 'node-red:common.status.connected' };
    case 'reconnecting':
      return {
        fill: 'yellow',
        shape: 'ring',
        text: fitStatus(t(RED, 'iio-context', 'status.reconnecting', { attempt: state.attempt })),
      };
    case 'error':
      return errorStatus(state.error);
  }
}
