import { buildPlans } from '../config/plans.js';
import type { GatewayConfig } from '../config/schema.js';
import { applyLimitOverrides, parseLimitOverrides } from '../core/limit-overrides.js';
import { allPolicies } from '../core/plan.js';
import type { Policy } from '../core/policy.js';
import type { JsonObject } from '../db/database.js';
import { validationError } from './admin-context.js';

/** Why `plan` is not a plan of gateway.yaml, or undefined when it is one. */
export function unknownPlanProblem(plans: GatewayConfig['plans'], plan: string): string | undefined {
  return Object.hasOwn(plans, plan) ? undefined : `unknown plan "${plan}" (defined: ${Object.keys(plans).join(', ') || 'none'})`;
}

/** Why credits of `metric` cannot be granted (no plan meters it), or undefined when some plan does. */
export function unmeteredMetricProblem(plans: GatewayConfig['plans'], metric: string): string | undefined {
  return Object.values(plans).some((plan) => Object.hasOwn(plan.quotas, metric)) ? undefined : `no plan meters "${metric}"`;
}

/** Throws validation_failed at `path` unless `plan` is a plan of gateway.yaml. */
export function checkPlan(plans: GatewayConfig['plans'], plan: string, path = 'plan'): void {
  const problem = unknownPlanProblem(plans, plan);
  if (problem !== undefined) throw validationError(path, problem);
}

/**
 * Every policy that applies to a subject on `planName` with its stored
 * `overrides` applied (as the limit step applies them): its windows, then
 * each metered quota. Undefined when the plan is not configured.
 */
export function policiesOfSubject(
  plans: GatewayConfig['plans'],
  planName: string,
  overrides: JsonObject | null,
): readonly Policy[] | undefined {
  const configured = buildPlans(plans).get(planName);
  if (configured === undefined) return undefined;
  const parsed = parseLimitOverrides(overrides);
  return allPolicies(parsed === undefined ? configured : applyLimitOverrides(configured, parsed));
}
