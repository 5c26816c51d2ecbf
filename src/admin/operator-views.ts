import { buildPlans } from '../config/plans.js';
import { periodOf } from '../core/calendar.js';
import { parseCountingId } from '../core/counting-id.js';
import { allPolicies } from '../core/plan.js';
import { isWindowName, type WindowName } from '../core/windows.js';
import { readDenialTotals } from '../db/denials.js';
import { type PlanCounterLimit, readNearLimits, readTopConsumers } from '../db/usage-views.js';
import type { AdminContext } from './admin-context.js';
import { validationError } from './admin-context.js';

/**
 * The operator views: who is near a limit, who consumes most, who is denied
 * most. Read from the database only — the usage ledger, at most one flush
 * interval (`usage.flush_interval_ms`) behind the limit store, and the
 * denials table, at most a second or two behind the gateways — so a view
 * costs the store nothing, and answers while it is down.
 *
 * Every item names its subject and, for a plan with `limit_by: key`, the
 * key it counts (`key_id`; null for the subject's own counters). Pages are
 * keyset cursors: opaque, stable under concurrent writes (an item may move
 * between pages as its count changes, never repeat within one listing of
 * unchanged data).
 */

type Ctx = Pick<AdminContext, 'db' | 'plans' | 'clock'>;

/** The windows the near-limits view reads: those the ledger keeps long enough to matter. */
const NEAR_LIMIT_WINDOWS: readonly WindowName[] = ['hour', 'day', 'month', 'lifetime'];

/** One page of a view. */
export interface ViewPage<T> {
  readonly items: readonly T[];
  readonly nextCursor: string | undefined;
}

/** A policy of a counting id at or over the threshold. */
export interface PolicyNearLimit {
  /** The RateLimit-Policy name: `hour`, `search.month`. */
  readonly name: string;
  readonly used: number;
  readonly limit: number;
  /** used / limit × 100, rounded to two decimals. */
  readonly percent: number;
}

export interface NearLimitItem {
  readonly subject: string;
  readonly keyId: string | undefined;
  readonly plan: string;
  /** Highest percent first. */
  readonly policies: readonly PolicyNearLimit[];
}

export interface NearLimitsQuery {
  /** Percent of a limit, 1–1000 (over 100: past it, with overage). */
  readonly thresholdPercent: number;
  readonly plan?: string | undefined;
  readonly cursor?: string | undefined;
  readonly limit: number;
}

/** A cursor: the sort key and counting id of the page's last item, base64url JSON. */
function encodeCursor(kind: string, key: number, id: string): string {
  return Buffer.from(JSON.stringify([kind, key, id])).toString('base64url');
}

/** The sort key and id a cursor names; 400 at `cursor` for one this view did not hand out. */
function decodeCursor(kind: string, cursor: string): { key: number; id: string } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (!Array.isArray(value) || value.length !== 3 || value[0] !== kind || !Number.isSafeInteger(value[1]) || typeof value[2] !== 'string') {
    throw validationError('cursor', 'not a cursor this API handed out');
  }
  return { key: value[1] as number, id: value[2] as string };
}

/** A counter id's policy name: `w:hour` → `hour`, `q:search:month` → `search.month`. */
function policyNameOf(counterId: string): string {
  const parts = counterId.split(':');
  return parts[0] === 'w' ? parts[1]! : `${parts[1]}.${parts[2]}`;
}

/** Every configured plan's limit of each of its counters. */
function planCounterLimits(plans: AdminContext['plans']): PlanCounterLimit[] {
  const limits: PlanCounterLimit[] = [];
  for (const plan of buildPlans(plans).values()) {
    for (const policy of allPolicies(plan)) limits.push({ plan: plan.name, counterId: policy.counterId, limit: policy.limit });
  }
  return limits;
}

/**
 * Counting ids (subjects, or their keys under `limit_by: key`) at or over
 * `thresholdPercent` of some policy of their plan in its current hour,
 * day, month or lifetime period, from the ledger's rows against the plan's
 * limits and the subject's overrides; highest percent first. Only subjects
 * the database knows have a plan to compare with. `plan` must be a plan of
 * gateway.yaml (400 at `plan` otherwise).
 */
export async function nearLimits(ctx: Ctx, query: NearLimitsQuery): Promise<ViewPage<NearLimitItem>> {
  if (query.plan !== undefined && !Object.hasOwn(ctx.plans, query.plan)) throw validationError('plan', `unknown plan "${query.plan}"`);
  const after = query.cursor === undefined ? undefined : decodeCursor('near', query.cursor);
  const nowMs = ctx.clock.now();
  const rows = await readNearLimits(ctx.db, {
    periods: NEAR_LIMIT_WINDOWS.map((window) => ({ window, start: new Date(periodOf(window, nowMs).startMs) })),
    limits: planCounterLimits(ctx.plans),
    plan: query.plan,
    thresholdPercent: query.thresholdPercent,
    after: after === undefined ? undefined : { topPpm: after.key, countingId: after.id },
    limit: query.limit + 1,
  });
  const page = rows.slice(0, query.limit);
  const last = rows.length > query.limit ? page.at(-1) : undefined;
  return {
    items: page.map((row) => ({
      subject: row.subjectId,
      keyId: parseCountingId(row.countingId).keyId,
      plan: row.plan,
      policies: row.counters.map((counter) => ({
        name: policyNameOf(counter.counterId),
        used: counter.used,
        limit: counter.limit,
        percent: Math.round((counter.used / counter.limit) * 10_000) / 100,
      })),
    })),
    nextCursor: last === undefined ? undefined : encodeCursor('near', last.topPpm, last.countingId),
  };
}

export interface TopConsumersQuery {
  /** A window (`month`: all traffic) or a quota (`search.month`). */
  readonly policy: string;
  /** `current`, or the start of a period of the policy's window. */
  readonly period: 'current' | Date;
  readonly cursor?: string | undefined;
  readonly limit: number;
}

export interface ConsumerItem {
  readonly subject: string;
  readonly keyId: string | undefined;
  readonly used: number;
}

/** The counter a policy name reads (`month` → `w:month`, `search.month` → `q:search:month`), and its window; 400 at `policy` otherwise. */
function counterOfPolicy(policy: string): { counterId: string; window: WindowName } {
  const dot = policy.indexOf('.');
  if (dot === -1) {
    if (!isWindowName(policy) || policy === 'lifetime') throw validationError('policy', 'expected a window (hour, day, month…) or a quota (<metric>.<window>)');
    return { counterId: `w:${policy}`, window: policy };
  }
  const metric = policy.slice(0, dot);
  const window = policy.slice(dot + 1);
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(metric) || !isWindowName(window)) {
    throw validationError('policy', 'expected a window (hour, day, month…) or a quota (<metric>.<window>)');
  }
  return { counterId: `q:${metric}:${window}`, window };
}

/**
 * Counting ids by units used of one policy in one period, most first, from
 * the ledger. `period` given as an instant must start a period of the
 * policy's window (400 at `period` otherwise).
 */
export async function topConsumers(ctx: Ctx, query: TopConsumersQuery): Promise<ViewPage<ConsumerItem> & { periodStartMs: number; periodEndMs: number }> {
  const { counterId, window } = counterOfPolicy(query.policy);
  const nowMs = ctx.clock.now();
  const period = periodOf(window, query.period === 'current' ? nowMs : query.period.getTime());
  if (query.period !== 'current' && period.startMs !== query.period.getTime()) {
    throw validationError('period', `expected "current" or the start of a ${window} period, e.g. ${new Date(period.startMs).toISOString()}`);
  }
  const after = query.cursor === undefined ? undefined : decodeCursor('top', query.cursor);
  const rows = await readTopConsumers(ctx.db, {
    counterId,
    periodStart: new Date(period.startMs),
    after: after === undefined ? undefined : { used: after.key, countingId: after.id },
    limit: query.limit + 1,
  });
  const page = rows.slice(0, query.limit);
  const last = rows.length > query.limit ? page.at(-1) : undefined;
  return {
    items: page.map((row) => {
      const { subject, keyId } = parseCountingId(row.countingId);
      return { subject, keyId, used: row.used };
    }),
    nextCursor: last === undefined ? undefined : encodeCursor('top', last.used, last.countingId),
    periodStartMs: period.startMs,
    periodEndMs: period.endMs,
  };
}

export interface DenialsQuery {
  /** The span, in minutes back from the current one (1–1440); the current minute is included. */
  readonly windowMinutes: number;
  readonly subject?: string | undefined;
  readonly cursor?: string | undefined;
  readonly limit: number;
}

export interface DenialItem {
  readonly subject: string;
  readonly denials: number;
  readonly lastMinuteMs: number;
}

/**
 * Subjects by denials (429, 402 and local denials; not shadow-mode
 * would-be denials) in the last `windowMinutes` minutes, most first, as
 * the gateways counted and flushed them (each second).
 */
export async function denialTotals(ctx: Ctx, query: DenialsQuery): Promise<ViewPage<DenialItem> & { sinceMs: number }> {
  const after = query.cursor === undefined ? undefined : decodeCursor('denials', query.cursor);
  const currentMinuteMs = Math.floor(ctx.clock.now() / 60_000) * 60_000;
  const sinceMs = currentMinuteMs - (query.windowMinutes - 1) * 60_000;
  const rows = await readDenialTotals(ctx.db, {
    since: new Date(sinceMs),
    subjectId: query.subject,
    after: after === undefined ? undefined : { denials: after.key, subjectId: after.id },
    limit: query.limit + 1,
  });
  const page = rows.slice(0, query.limit);
  const last = rows.length > query.limit ? page.at(-1) : undefined;
  return {
    items: page.map((row) => ({ subject: row.subjectId, denials: row.denials, lastMinuteMs: row.lastMinute.getTime() })),
    nextCursor: last === undefined ? undefined : encodeCursor('denials', last.denials, last.subjectId),
    sinceMs,
  };
}
