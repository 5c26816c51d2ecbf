import type { Plan } from '../core/plan.js';
import { WINDOW_NAMES, type WindowLimit } from '../core/windows.js';
import type { GatewayConfig } from './schema.js';

/** The configured plans as the hot path uses them, windows shortest first. */
export function buildPlans(plans: GatewayConfig['plans']): ReadonlyMap<string, Plan> {
  const result = new Map<string, Plan>();
  for (const [name, plan] of Object.entries(plans)) {
    const windows: WindowLimit[] = [];
    for (const window of WINDOW_NAMES) {
      const limit = plan.limits[window];
      if (limit !== undefined) windows.push({ name: window, limit });
    }
    result.set(name, Object.freeze({ name, windows: Object.freeze(windows), upgradeUrl: plan.upgrade_url }));
  }
  return result;
}
