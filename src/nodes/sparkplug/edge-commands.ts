/**
 * The commands a Sparkplug edge node takes (NCMD, DCMD): queued, decoded, carried out, and
 * answered. Commands are handled one at a time, at most MAX_PENDING_COMMANDS queued (more are
 * dropped and counted); each answer is in the next DDATA (Last Command/Metric and /Result,
 * the counters, the attribute read back) or NDATA for NCMD and unknown devices. What a
 * command metric may carry is checked in commands.ts.
 */
import { IioError } from '../../errors';
import type { ContextHandle } from '../context-handle';
import { writeChecked } from '../iio-attr-write';
import { commandValue } from './commands';
import type { EdgeDevices } from './edge-devices';
import type { Translate } from './messages';
import { attrValue, type Metric, type MetricSet } from './metrics';
import { decodeCommand, type CommandPayload } from './payload';
import { parseCommandTopic } from './topics';

/** Commands waiting to be handled; beyond this they are dropped and counted. */
const MAX_PENDING_COMMANDS = 64;

/** One command metric handled (also the node's output message). */
export interface CommandResult {
  readonly verb: 'NCMD' | 'DCMD';
  readonly device?: string;
  readonly metric: string;
  readonly value?: unknown;
  readonly ok: boolean;
  readonly code?: string;
  readonly result: string;
  readonly readBack?: string;
}

/** What the commands need of the edge node's MQTT session (edge.ts). */
export interface CommandSession {
  stopping(): boolean;
  /** The node's own metrics: what an NCMD addresses. */
  readonly node: MetricSet;
  /** The node metrics an answer sets, and the one that asks for a rebirth. */
  readonly answer: {
    readonly rebirth: Metric;
    readonly lastMetric: Metric;
    readonly lastResult: Metric;
  };
  /** One more in EdgeStats and in the node metric of the same name. */
  count(what: 'commands' | 'refused' | 'dropped', now: number): void;
  /** Runs a step after the births, set-ups and commands queued before it. */
  enqueue(step: () => Promise<void>): void;
  /** NDATA of the node metrics that changed. */
  flushNode(): void;
  /** NBIRTH and every DBIRTH again, attributes re-read. */
  birth(): Promise<void>;
}

/** The options the commands read (part of EdgeOptions). */
export interface CommandOptions {
  readonly groupId: string;
  readonly edgeNodeId: string;
  readonly t: Translate;
  /** Each command metric handled, after its answer is set. */
  readonly onCommand?: (r: CommandResult) => void;
}

type Outcome = IioError | { readBack?: string };

export class EdgeCommands {
  private pending = 0;

  constructor(
    private readonly session: CommandSession,
    private readonly devices: Pick<EdgeDevices, 'get' | 'flush' | 'replan'>,
    private readonly handle: Pick<ContextHandle, 'context'>,
    private readonly o: CommandOptions,
  ) {}

  /** An MQTT message on the NCMD or DCMD subscription. */
  onMessage(topic: string, payload: Buffer): void {
    if (this.session.stopping()) return;
    const cmd = parseCommandTopic(topic, this.o.groupId, this.o.edgeNodeId);
    if (!cmd) return;
    if (this.pending >= MAX_PENDING_COMMANDS) {
      this.session.count('dropped', Date.now());
      return;
    }
    this.pending++;
    // Copy: the client may reuse its read buffer once this handler returns.
    const data = Buffer.from(payload);
    this.session.enqueue(async () => {
      try {
        if (cmd.verb === 'NCMD') await this.nodeCommand(data);
        else await this.deviceCommand(cmd.device, data);
      } finally {
        this.pending--;
      }
    });
  }

  private decode(data: Buffer): CommandPayload | IioError {
    try {
      const p = decodeCommand(data);
      if (p.metrics.length === 0) return new IioError('EINVAL', this.o.t('refuse.noMetrics'));
      return p;
    } catch (err) {
      return new IioError('EPROTO', this.o.t('refuse.malformed', { why: (err as Error).message }));
    }
  }

  private report(
    r: Omit<CommandResult, 'ok' | 'result' | 'code'>,
    outcome: Outcome,
    target: { lastMetric: Metric; lastResult: Metric; accepted?: Metric; refused?: Metric },
  ): void {
    const now = Date.now();
    const ok = !(outcome instanceof IioError);
    const result = ok ? this.o.t('result.ok') : outcome.message;
    this.session.count('commands', now);
    if (!ok) {
      this.session.count('refused', now);
      target.refused?.set(Number(target.refused.value ?? 0) + 1, now);
    } else {
      target.accepted?.set(Number(target.accepted.value ?? 0) + 1, now);
    }
    target.lastMetric.set(r.metric, now, true);
    target.lastResult.set(result, now, true);
    this.o.onCommand?.({
      ...r,
      ok,
      result,
      ...(ok ? {} : { code: outcome.code }),
      ...(ok && outcome.readBack !== undefined ? { readBack: outcome.readBack } : {}),
    });
  }

  /** Where an NCMD's answer (or a DCMD's to an unknown device) goes: node metrics, no counts. */
  private nodeTarget(): { lastMetric: Metric; lastResult: Metric } {
    const { lastMetric, lastResult } = this.session.answer;
    return { lastMetric, lastResult };
  }

  private async nodeCommand(data: Buffer): Promise<void> {
    const nm = this.session.answer;
    const p = this.decode(data);
    if (p instanceof IioError) {
      this.report({ verb: 'NCMD', metric: '' }, p, this.nodeTarget());
      this.session.flushNode();
      return;
    }
    let rebirth = false;
    for (const c of p.metrics) {
      const m = this.session.node.find(c.name, c.alias);
      const label = m?.name ?? c.name ?? `alias ${c.alias}`;
      let outcome: Outcome;
      if (m === nm.rebirth) {
        try {
          const v = commandValue('Boolean', m.name, c, this.o.t);
          if (v !== true) throw new IioError('EINVAL', this.o.t('refuse.rebirthFalse'));
          rebirth = true;
          outcome = {};
        } catch (err) {
          outcome = IioError.wrap(err);
        }
      } else if (m) {
        outcome = new IioError('EACCES', this.o.t('refuse.readOnly', { metric: label }));
      } else {
        outcome = new IioError(
          'ENOENT',
          this.o.t('refuse.noMetric', { metric: label, target: this.o.edgeNodeId }),
        );
      }
      this.report({ verb: 'NCMD', metric: label, value: c.value }, outcome, this.nodeTarget());
    }
    if (rebirth) await this.session.birth();
    else this.session.flushNode();
  }

  private async deviceCommand(spId: string, data: Buffer): Promise<void> {
    const d = this.devices.get(spId);
    if (!d) {
      // No such device here: the answer goes in NDATA.
      this.report(
        { verb: 'DCMD', device: spId, metric: '' },
        new IioError('ENODEV', this.o.t('refuse.noDevice', { device: spId })),
        this.nodeTarget(),
      );
      this.session.flushNode();
      return;
    }
    const m = d.metrics;
    const p = this.decode(data);
    if (p instanceof IioError) {
      this.report({ verb: 'DCMD', device: spId, metric: '' }, p, m);
    } else {
      let wroteFrequency = false;
      for (const c of p.metrics) {
        const target = m.set.find(c.name, c.alias);
        const label = target?.name ?? c.name ?? `alias ${c.alias}`;
        let outcome: Outcome;
        try {
          if (!target) {
            throw new IioError(
              'ENOENT',
              this.o.t('refuse.noMetric', { metric: label, target: spId }),
            );
          }
          const sel = target.options.attr;
          if (!sel) throw new IioError('EACCES', this.o.t('refuse.readOnly', { metric: label }));
          const value = commandValue(target.type, label, c, this.o.t);
          const ctx = this.handle.context;
          if (!ctx) throw new IioError('ENOTCONN', this.o.t('refuse.noContext'));
          const r = await writeChecked(ctx, sel, value, true);
          const now = Date.now();
          target.set(attrValue(r.readBack ?? r.written, target.type), now);
          if (sel.attr === 'sampling_frequency') wroteFrequency = true;
          outcome = r;
        } catch (err) {
          outcome = IioError.wrap(err);
        }
        this.report({ verb: 'DCMD', device: spId, metric: label, value: c.value }, outcome, m);
      }
      if (wroteFrequency) await this.devices.replan(d);
    }
    this.devices.flush(d, Date.now(), true);
    this.session.flushNode();
  }
}
