import { creditSpendCounterIdOf } from './credits.js';
import type { WindowName } from './windows.js';

/**
 * One limit a request is checked and charged against.
 *
 * - a **window** limits all traffic of a subject per calendar period (`hour`);
 * - a **quota** limits one metered metric per calendar period
 *   (`search.month`), charged only by routes that name the metric.
 *
 * Both are calendar-aligned in UTC and counted in cost units.
 */
export interface Policy {
  /** Name in headers and `violated-policies`: the window (`hour`) or `<metric>.<window>`. */
  readonly name: string;
  readonly kind: 'window' | 'quota';
  /** The calendar period the limit applies to. */
  readonly window: WindowName;
  /** Units admitted per period; at least 1. */
  readonly limit: number;
  /**
   * Identifies the counter within a subject: `w:hour`, `q:search:month`.
   * Stable across config reloads, so counters survive them.
   */
  readonly counterId: string;
  /**
   * Soft limit (a quota's `overage: { max }`): past `limit`, up to `max` more
   * units per period are admitted and counted as overage, recorded in the
   * ledger under `counterId` (`o:search:month`): the units of the period
   * past the limit. Absent: `limit` is hard.
   */
  readonly overage?: { readonly max: number; readonly counterId: string };
  /**
   * Covered by prepaid credits (a plan's `credits: { covers }`): when the
   * quota has no room for a request, its cost is charged to the subject's
   * credits of `metric` instead (the quota stays at its limit), in the same
   * atomic decision; `counterId` (`c:search:month`) counts the credits spent
   * per month for billing. Absent: no credits apply.
   */
  readonly credits?: { readonly metric: string; readonly counterId: string };
  /**
   * Quota events are detected for this policy (a plan's `thresholds`; see
   * docs/events.md): each threshold is emitted once per subject and
   * period when the count reaches it (`quota.threshold`), and the first
   * denial by this policy in a period is emitted (`quota.exhausted`).
   * Absent: no events for this policy.
   */
  readonly thresholds?: PolicyThresholds;
}

/**
 * A policy's thresholds, compiled when the config loads so the store
 * compares integers: `units[k]` is `ceil(limit * percents[k] / 100)`.
 * Both lists are ascending, as long as each other, and not empty.
 */
export interface PolicyThresholds {
  /** Percent of the limit, integers 1..100, ascending, each once. */
  readonly percents: readonly number[];
  /** The count (cost units) at which each percent is reached; at least 1, ascending (two may be equal). */
  readonly units: readonly number[];
}

/**
 * `policy` with thresholds at `percents` of its limit (none for an empty
 * list: the policy detects no events). Called at config load and when a
 * subject's overrides change the limit, never per request.
 */
export function withThresholds(policy: Policy, percents: readonly number[]): Policy {
  // Without its previous thresholds (a reload or an override compiles afresh).
  const { thresholds: _previous, ...rest } = policy;
  if (percents.length === 0) return rest;
  const units = percents.map((percent) => thresholdUnitsOf(policy.limit, percent));
  return { ...rest, thresholds: Object.freeze({ percents: Object.freeze([...percents]), units: Object.freeze(units) }) };
}

/** The count at which `percent` (1..100) of `limit` is reached: the smallest integer at or above that share. */
export function thresholdUnitsOf(limit: number, percent: number): number {
  // Integer arithmetic: limit * percent stays below 2^53 (limit ≤ 10^12).
  return Math.max(1, Math.ceil((limit * percent) / 100));
}

/**
 * A plan's thresholds (`plans.<name>.thresholds`), by policy name: the
 * percents of a watched policy named in `byPolicy`, else `default`. An
 * empty list: no events for that policy.
 */
export interface ThresholdSettings {
  readonly default: readonly number[];
  readonly byPolicy: ReadonlyMap<string, readonly number[]>;
}

/** `policy` with the thresholds `settings` give it (none unless it is watched: watchesEvents). */
export function applyThresholds(policy: Policy, settings: ThresholdSettings): Policy {
  if (!watchesEvents(policy)) return policy;
  return withThresholds(policy, settings.byPolicy.get(policy.name) ?? settings.default);
}

/**
 * Whether a plan's thresholds apply to a policy: every window of a metered
 * quota, and the month window (the billing period). Shorter rate windows
 * (second … day) are rate limits, not budgets, and detect no events.
 */
export function watchesEvents(policy: Pick<Policy, 'kind' | 'window'>): boolean {
  return policy.kind === 'quota' || policy.window === 'month';
}

export function windowPolicy(window: WindowName, limit: number): Policy {
  return { name: window, kind: 'window', window, limit, counterId: `w:${window}` };
}

export function quotaPolicy(metric: string, window: WindowName, limit: number, overageMax?: number): Policy {
  const policy: Policy = { name: `${metric}.${window}`, kind: 'quota', window, limit, counterId: `q:${metric}:${window}` };
  if (overageMax === undefined) return policy;
  return { ...policy, overage: { max: overageMax, counterId: overageCounterIdOf(metric, window) } };
}

/** `policy` (a quota of `metric`) covered by the subject's credits of `metric` (a plan's `credits: { covers }`). */
export function coveredByCredits(policy: Policy, metric: string): Policy {
  return { ...policy, credits: { metric, counterId: creditSpendCounterIdOf(metric) } };
}

/** The counter of a metric's lifetime quota, which a route's `release` gives back to. */
export function lifetimeCounterIdOf(metric: string): string {
  return `q:${metric}:lifetime`;
}

/** The ledger counter of a quota's overage units: `o:<metric>:<window>`. */
export function overageCounterIdOf(metric: string, window: WindowName): string {
  return `o:${metric}:${window}`;
}

/** Whether a ledger counter id is a quota's overage (derived from its counter, never restored on its own). */
export function isOverageCounterId(counterId: string): boolean {
  return counterId.startsWith('o:');
}

/**
 * A counter charged with every admitted request of a subject but never
 * limiting it: usage the ledger records for billing at hour, day and month
 * granularity whatever the plan limits. It counts what a window policy of
 * the same period would (the counterId is the same, `w:month`), so the
 * ledger rows continue unchanged when a plan gains or drops that limit. Not
 * shown in rate-limit headers, never a reason for a denial.
 */
export interface Meter {
  readonly window: WindowName;
  readonly counterId: string;
}

/** The periods usage is always recorded at. */
const METERED_WINDOWS = ['hour', 'day', 'month'] as const satisfies readonly WindowName[];

const METERS: ReadonlyMap<WindowName, Meter> = new Map(
  METERED_WINDOWS.map((window) => [window, Object.freeze({ window, counterId: `w:${window}` })]),
);

/**
 * The meters a subject limited by `windows` also needs: one per metered
 * period that no window policy already counts, longest last.
 */
export function metersBesides(windows: readonly Policy[]): readonly Meter[] {
  const meters: Meter[] = [];
  for (const [window, meter] of METERS) {
    if (!windows.some((policy) => policy.kind === 'window' && policy.window === window)) meters.push(meter);
  }
  return Object.freeze(meters);
}
