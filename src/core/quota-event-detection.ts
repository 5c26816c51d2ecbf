import { createHash } from 'node:crypto';
import type { QuotaEvent, QuotaEventType } from './quota-events.js';

/**
 * The events a limiter detects inside its decision, built the way
 * lua/consume.lua builds them (same ids, same data), for the memory store.
 * The rules (when each is emitted) are in the Limiter contract and
 * consume.lua's header; this module only shapes them.
 */

/**
 * The id of one occurrence: `evt_` + SHA-1 hex of `<type>\n<subject>\n<source>`,
 * `source` naming what makes it unique (see the builders). Deterministic,
 * so a duplicate carries the same id; no subject text in it.
 */
export function quotaEventIdOf(type: QuotaEventType, subject: string, source: string): string {
  return `evt_${createHash('sha1').update(`${type}\n${subject}\n${source}`).digest('hex')}`;
}

/** One policy's period as the events name it. */
export interface EventPeriod {
  /** Epoch ms; 0 for a lifetime quota. */
  readonly startMs: number;
  /** Epoch ms; undefined for a lifetime quota (it never ends). */
  readonly endMs: number | undefined;
}

/** What a quota event says about its policy. */
export interface QuotaEventPolicy {
  readonly subject: string;
  readonly plan: string | undefined;
  /** The policy's RateLimit-Policy name (`search.month`). */
  readonly policy: string;
  readonly counterId: string;
  readonly limit: number;
  readonly period: EventPeriod;
}

function periodFields(period: EventPeriod): { period_start: string; period_end: string | null } {
  return {
    period_start: new Date(period.startMs).toISOString(),
    period_end: period.endMs === undefined ? null : new Date(period.endMs).toISOString(),
  };
}

/** `quota.threshold`: the policy's count `used` reached `percent` of its limit. Unique per subject, counter, period and percent. */
export function thresholdEvent(policy: QuotaEventPolicy, percent: number, used: number, nowMs: number): QuotaEvent {
  const source = `${policy.counterId}\n${Math.floor(policy.period.startMs / 1000)}\n${percent}`;
  return {
    id: quotaEventIdOf('quota.threshold', policy.subject, source),
    type: 'quota.threshold',
    timestampMs: nowMs,
    data: {
      subject: policy.subject,
      plan: policy.plan ?? null,
      policy: policy.policy,
      threshold: percent,
      used,
      limit: policy.limit,
      ...periodFields(policy.period),
    },
  };
}

/** `quota.exhausted`: the policy's first denial of the period, at count `used`. Unique per subject, counter and period. */
export function exhaustedEvent(policy: QuotaEventPolicy, used: number, nowMs: number): QuotaEvent {
  const source = `${policy.counterId}\n${Math.floor(policy.period.startMs / 1000)}\n`;
  return {
    id: quotaEventIdOf('quota.exhausted', policy.subject, source),
    type: 'quota.exhausted',
    timestampMs: nowMs,
    data: { subject: policy.subject, plan: policy.plan ?? null, policy: policy.policy, used, limit: policy.limit, ...periodFields(policy.period) },
  };
}

/** A subject's credits of one metric as a decision that spent some left them. */
export interface CreditsCrossing {
  readonly subject: string;
  readonly plan: string | undefined;
  readonly metric: string;
  /** Units of the unexpired grants (spent or not). */
  readonly granted: number;
  /** The ids of the unexpired grants: while they stay the same, the balance only falls, so they name the crossing. */
  readonly grantIds: readonly number[];
  /** The balance before and after the decision's spend. */
  readonly before: number;
  readonly after: number;
}

/** The balance at or below which credits are low: a tenth of the units granted, rounded up. */
export function creditsLowMarkOf(granted: number): number {
  return Math.ceil(granted / 10);
}

/**
 * The credits events of one spend (in order): `credits.low` when the
 * balance went from above the low mark to at or below it, then
 * `credits.exhausted` when it reached 0.
 */
export function creditsEvents(crossing: CreditsCrossing, nowMs: number): QuotaEvent[] {
  const low = creditsLowMarkOf(crossing.granted);
  const ids = [...crossing.grantIds].sort((a, b) => a - b).join(',');
  const head = { subject: crossing.subject, plan: crossing.plan ?? null, metric: crossing.metric, balance: crossing.after, granted: crossing.granted };
  const events: QuotaEvent[] = [];
  if (crossing.before > low && crossing.after <= low) {
    events.push({
      id: quotaEventIdOf('credits.low', crossing.subject, `${crossing.metric}\n${ids}\n${low}`),
      type: 'credits.low',
      timestampMs: nowMs,
      data: { ...head, threshold: low },
    });
  }
  if (crossing.after === 0 && crossing.before > 0) {
    events.push({
      id: quotaEventIdOf('credits.exhausted', crossing.subject, `${crossing.metric}\n${ids}\n0`),
      type: 'credits.exhausted',
      timestampMs: nowMs,
      data: head,
    });
  }
  return events;
}
