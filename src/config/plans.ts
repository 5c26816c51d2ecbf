import type { Plan } from '../core/plan.js';
import { metersBesides, type Policy, quotaPolicy, windowPolicy } from '../core/policy.js';
import { WINDOW_NAMES, type WindowName } from '../core/windows.js';
import type { GatewayConfig } from './schema.js';

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
    const windows = Object.freeze(policiesOf(plan.limits, windowPolicy));
    const policiesByMetric = new Map<string, readonly Policy[]>();
    for (const [metric, limits] of Object.entries(plan.quotas)) {
      const quotas = policiesOf(limits, (window, limit) => quotaPolicy(metric, window, limit));
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
        upgradeUrl: plan.upgrade_url,
      }),
    );
  }
  return result;
}
