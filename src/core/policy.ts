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
