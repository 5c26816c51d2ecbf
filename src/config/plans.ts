import type { Plan } from '../core/plan.js';
import { applyThresholds, coveredByCredits, metersBesides, type Policy, quotaPolicy, type ThresholdSettings, windowPolicy } from '../core/policy.js';
import { CALENDAR_WINDOW_NAMES, WINDOW_NAMES, type WindowName } from '../core/windows.js';
import { DEFAULT_THRESHOLDS, type GatewayConfig, type PlanConfig } from './schema.js';

type Limits = Partial<Record<WindowName, number>>;

function policiesOf(limits: Limits, make: (window: WindowName, limit: number) => Policy): Policy[] {
  const policies: Policy[] = [];
  for (const window of WINDOW_NAMES) {
    const limit = limits[window];
    if (limit !== undefined) policies.push(make(window, limit));
  }
  return policies;
}

/** The configured plans as the hot path uses them, windows shortest first. */
export function buildPlans(plans: GatewayConfig['plans']): ReadonlyMap<string, Plan> {
  const result = new Map<string, Plan>();
  for (const [name, plan] of Object.entries(plans)) {
    const thresholds = thresholdSettingsOf(plan.thresholds);
    const windows = Object.freeze(policiesOf(plan.limits, (window, limit) => applyThresholds(windowPolicy(window, limit), thresholds)));
    const policiesByMetric = new Map<string, readonly Policy[]>();
    for (const [metric, quota] of Object.entries(plan.quotas)) {
      // Overage goes past the quota's longest calendar window: its billing period.
      const overageWindow = quota.overage === undefined ? undefined : CALENDAR_WINDOW_NAMES.findLast((w) => quota[w] !== undefined);
      const covered = new Set(plan.credits?.covers ?? []);
      const quotas = policiesOf(quota, (window, limit) => {
        const policy = applyThresholds(quotaPolicy(metric, window, limit, window === overageWindow ? quota.overage?.max : undefined), thresholds);
        return covered.has(policy.name) ? coveredByCredits(policy, metric) : policy;
      });
      policiesByMetric.set(metric, Object.freeze([...windows, ...quotas]));
    }
    result.set(
      name,
      Object.freeze({
        name,
        windows,
        policiesByMetric,
        meters: metersBesides(windows),
        quotaStatus: plan.quota_status,
        shadow: plan.mode === 'shadow',
        allowsOverage: Object.values(plan.quotas).some((quota) => quota.overage !== undefined),
        thresholds,
        upgradeUrl: plan.upgrade_url,
        limitByKey: plan.limit_by === 'key',
        abuse:
          plan.abuse === undefined
            ? undefined
            : Object.freeze({ denialsPerMinute: plan.abuse.denials_per_minute, action: plan.abuse.action, blockMs: plan.abuse.block_seconds * 1000 }),
      }),
    );
  }
  return result;
}

/** A plan's `thresholds` (one list, or a mapping by policy name with `default`) as the policies get them. */
function thresholdSettingsOf(thresholds: PlanConfig['thresholds']): ThresholdSettings {
  if (Array.isArray(thresholds)) return Object.freeze({ default: Object.freeze([...thresholds]), byPolicy: new Map() });
  const byPolicy = new Map<string, readonly number[]>();
  for (const [policy, percents] of Object.entries(thresholds)) if (policy !== 'default') byPolicy.set(policy, Object.freeze([...percents]));
  return Object.freeze({ default: Object.freeze([...(thresholds.default ?? DEFAULT_THRESHOLDS)]), byPolicy });
}
