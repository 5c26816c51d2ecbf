import type { Plan } from './plan.js';
import { applyThresholds, coveredByCredits, metersBesides, type Policy, quotaPolicy, windowPolicy } from './policy.js';
import { WINDOW_NAMES, type WindowName, isWindowName } from './windows.js';

/**
 * Per-subject limits that replace (or add to) those of the subject's plan,
 * stored in `subjects.overrides` and shaped like a plan in gateway.yaml:
 * `{ "limits": { "hour": 5000 }, "quotas": { "search": { "month": 20000 } } }`.
 * A window or quota named here takes this limit; the others keep the plan's.
 */
export interface LimitOverrides {
  readonly limits: Readonly<Partial<Record<WindowName, number>>>;
  readonly quotas: Readonly<Record<string, Readonly<Partial<Record<WindowName, number>>>>>;
}

const METRIC_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function limitsOf(value: unknown): Partial<Record<WindowName, number>> {
  const limits: Partial<Record<WindowName, number>> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return limits;
  for (const [window, limit] of Object.entries(value)) {
    if (isWindowName(window) && Number.isSafeInteger(limit) && (limit as number) >= 1) limits[window] = limit as number;
  }
  return limits;
}

/**
 * The overrides in a stored jsonb value, or undefined when it holds none.
 * Entries that are not a window name (or metric name) with a positive
 * integer limit are ignored: a bad row never lifts a limit. The admin API
 * validates what it stores.
 */
export function parseLimitOverrides(json: unknown): LimitOverrides | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const { limits: rawLimits, quotas: rawQuotas } = json as { limits?: unknown; quotas?: unknown };
  const limits = limitsOf(rawLimits);
  // Only a quota has a lifetime window.
  delete limits.lifetime;
  const quotas: Record<string, Partial<Record<WindowName, number>>> = {};
  if (typeof rawQuotas === 'object' && rawQuotas !== null && !Array.isArray(rawQuotas)) {
    for (const [metric, value] of Object.entries(rawQuotas)) {
      const metricLimits = limitsOf(value);
      if (METRIC_NAME.test(metric) && Object.keys(metricLimits).length > 0) quotas[metric] = metricLimits;
    }
  }
  if (Object.keys(limits).length === 0 && Object.keys(quotas).length === 0) return undefined;
  return Object.freeze({ limits: Object.freeze(limits), quotas: Object.freeze(quotas) });
}

function merged(base: readonly Policy[], kind: Policy['kind'], override: Partial<Record<WindowName, number>> | undefined, make: (window: WindowName, limit: number) => Policy): Policy[] {
  const result: Policy[] = [];
  for (const window of WINDOW_NAMES) {
    const limit = override?.[window] ?? base.find((policy) => policy.kind === kind && policy.window === window)?.limit;
    if (limit !== undefined) result.push(make(window, limit));
  }
  return result;
}

/**
 * `plan` with `overrides` applied: each overridden window or quota takes the
 * override's limit, one the plan lacks is added, the rest stay. Pure; the
 * plan keeps its name, quota status and upgrade URL.
 */
export function applyLimitOverrides(plan: Plan, overrides: LimitOverrides): Plan {
  // Thresholds are percents: an overridden limit gets its own threshold units.
  const windows = Object.freeze(merged(plan.windows, 'window', overrides.limits, (window, limit) => applyThresholds(windowPolicy(window, limit), plan.thresholds)));
  const metrics = new Set([...plan.policiesByMetric.keys(), ...Object.keys(overrides.quotas)]);
  const policiesByMetric = new Map<string, readonly Policy[]>();
  for (const metric of metrics) {
    const base = (plan.policiesByMetric.get(metric) ?? []).filter((policy) => policy.kind === 'quota');
    // An overridden limit keeps the plan's overage allowance on that window.
    const overageOf = (window: WindowName) => base.find((policy) => policy.window === window)?.overage?.max;
    // …and its coverage by credits.
    const coveredOn = (window: WindowName) => base.some((policy) => policy.window === window && policy.credits !== undefined);
    const quotas = merged(base, 'quota', overrides.quotas[metric], (window, limit) => {
      const policy = applyThresholds(quotaPolicy(metric, window, limit, overageOf(window)), plan.thresholds);
      return coveredOn(window) ? coveredByCredits(policy, metric) : policy;
    });
    policiesByMetric.set(metric, Object.freeze([...windows, ...quotas]));
  }
  return Object.freeze({ ...plan, windows, policiesByMetric, meters: metersBesides(windows) });
}
