import type { AbuseRule } from './abuse.js';
import type { Meter, Policy, ThresholdSettings } from './policy.js';

/** A plan as the hot path uses it, resolved from gateway.yaml. */
export interface Plan {
  readonly name: string;
  /** Rate windows, shortest first; charged by every route. May be empty. */
  readonly windows: readonly Policy[];
  /**
   * Per metered metric: the windows followed by that metric's quotas — the
   * whole policy list of a route that names the metric. Precomputed so the
   * hot path allocates nothing.
   */
  readonly policiesByMetric: ReadonlyMap<string, readonly Policy[]>;
  /**
   * Counted with every admitted request, never limiting: the metered periods
   * (hour, day, month) that `windows` does not already count, so the ledger
   * holds every subject's usage at each of them (see metersBesides).
   */
  readonly meters: readonly Meter[];
  /** HTTP status of a quota denial: 429, or 402 for plans sold by usage. */
  readonly quotaStatus: 429 | 402;
  /** Some quota of the plan allows overage: only then do admissions look for overage units (X-Quotagate-Overage). */
  readonly allowsOverage: boolean;
  /** `mode: shadow`: would-be denials are forwarded and marked, not answered 429. */
  readonly shadow: boolean;
  /**
   * The plan's event thresholds, already applied to its policies; kept to
   * give a subject's overridden or added windows theirs (applyLimitOverrides).
   */
  readonly thresholds: ThresholdSettings;
  /** Where a denied caller can upgrade; echoed in denial bodies when set. */
  readonly upgradeUrl?: string;
  /** `limit_by: key`: each API key of a subject has its own counters (see core/counting-id.ts). */
  readonly limitByKey: boolean;
  /** `abuse`: the denial-spike rule, when the plan has one. */
  readonly abuse?: AbuseRule | undefined;
}

/** The policies a request on a route charging `metric` (if any) is checked against. */
export function policiesFor(plan: Plan, metric: string | undefined): readonly Policy[] {
  if (metric === undefined) return plan.windows;
  return plan.policiesByMetric.get(metric) ?? plan.windows;
}

/**
 * Every policy of the plan: its windows, then each metered metric's quotas
 * (what the usage endpoints report and an admin reset clears).
 */
export function allPolicies(plan: Plan): readonly Policy[] {
  const policies = [...plan.windows];
  for (const list of plan.policiesByMetric.values()) policies.push(...list.slice(plan.windows.length));
  return policies;
}
