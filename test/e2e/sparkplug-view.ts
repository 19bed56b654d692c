/**
 * What the test host (a Sparkplug subscriber) knows about one edge node, as an HTML page:
 * the README's screenshot of a subscriber's view is chromium's picture of it.
 */
import { DT } from '../helpers/sparkplug-codec';
import type { HostEdge, HostMetric, LoggedMessage } from '../helpers/sparkplug-host';

const TYPE_NAMES = new Map<number, string>(Object.entries(DT).map(([k, v]) => [v, k]));

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function show(m: HostMetric): string {
  if (m.value === null) return '<i>null</i>';
  if (typeof m.value === 'number' && !Number.isInteger(m.value)) return m.value.toPrecision(6);
  return esc(String(m.value));
}

function row(m: HostMetric): string {
  return (
    `<tr><td>${esc(m.name)}</td><td class="t">${TYPE_NAMES.get(m.datatype) ?? m.datatype}</td>` +
    `<td class="v">${show(m)}</td><td>${esc(String(m.properties.engUnit ?? ''))}</td>` +
    `<td class="t">${m.alias ?? ''}</td></tr>`
  );
}

function table(title: string, online: boolean, metrics: Map<string, HostMetric>): string {
  const all = [...metrics.values()];
  const isAttr = (m: HostMetric): boolean => m.name.includes('Attributes/');
  const measured = all.filter((m) => !isAttr(m) && !m.name.startsWith('Device/'));
  // Devices with measurements show those; the attributes (settings) are summed up in a line,
  // except on devices that have nothing else (a DAC, a trigger).
  const hasInputs = measured.some((m) => m.name.startsWith('Inputs/'));
  const shown = hasInputs
    ? measured
    : all.filter((m) => !m.name.endsWith('_available') && !m.name.startsWith('Device/'));
  const hidden = all.length - shown.length;
  const id = metrics.get('Device/Id')?.value;
  return (
    `<section><h2>${esc(title)} <span class="${online ? 'on' : 'off'}">${online ? 'online' : 'offline'}</span>` +
    `${id ? ` <span class="t">${esc(String(id))}</span>` : ''}</h2>` +
    `<table><tr><th>metric</th><th>type</th><th>value</th><th>unit</th><th>alias</th></tr>${shown.map(row).join('')}</table>` +
    (hidden ? `<div class="t">+ ${hidden} more metrics (attributes, device info)</div>` : '') +
    `</section>`
  );
}

export function hostViewHtml(e: HostEdge, log: readonly LoggedMessage[], broker: string): string {
  const mine = log.filter((m) => m.group === e.group && m.edge === e.edge);
  const counts = new Map<string, number>();
  for (const m of mine) counts.set(m.verb, (counts.get(m.verb) ?? 0) + 1);
  const summary = [...counts.entries()].map(([k, v]) => `${k} ${v}`).join(' · ');
  const devices = [...e.devices.entries()]
    .map(([id, d]) => table(`device ${id}`, d.online, d.metrics))
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><style>
body{font:11px/1.3 system-ui,sans-serif;margin:12px;background:#f6f7f9;color:#222}
h1{font-size:16px;margin:0 0 4px} .sub{color:#555;margin-bottom:10px}
.grid{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:10px;align-items:start}
section{background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px;overflow:hidden}
h2{font-size:13px;margin:0 0 4px} table{border-collapse:collapse;width:100%}
td,th{padding:1px 4px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
td.v{text-align:right;font-family:ui-monospace,monospace} td.t,th,.t{color:#777}
.on{color:#fff;background:#2a2;border-radius:3px;padding:0 4px;font-size:11px}
.off{color:#fff;background:#a22;border-radius:3px;padding:0 4px;font-size:11px}
</style></head><body>
<h1>Sparkplug host view: spBv1.0/${esc(e.group)}/${esc(e.edge)}</h1>
<div class="sub">subscribed to spBv1.0/# on ${esc(broker)} · bdSeq ${e.bdSeq ?? '–'} · last seq ${e.seq ?? '–'} · ${esc(summary)}</div>
<div class="grid">${table('edge node', e.online, e.metrics)}${devices}</div>
</body></html>`;
}
