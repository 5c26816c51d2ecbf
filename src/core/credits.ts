/**
 * Prepaid credits as the limit stores hold them: per subject and metered
 * metric, a balance made of grants (src/db/credit-grants.ts), each with what
 * was granted, what was spent of it, and an optional expiry. A plan's
 * `credits: { covers }` names the quotas whose exhausted requests are
 * charged to this balance instead (Policy.credits).
 */

/** One grant as a limit store holds it. */
export interface CreditGrantState {
  /** The grant's id (credit_grants.id): names its ledger counter `g:<id>`. */
  readonly id: number;
  /** The metered metric whose credits these are (`search`). */
  readonly metric: string;
  /** Units granted; a positive integer. */
  readonly amount: number;
  /** Epoch ms from which the grant no longer counts; null: never expires. */
  readonly expiresAtMs: number | null;
  /** Units of it spent as far as the ledger knows (0 for a new grant); a store never lowers what it holds. */
  readonly used: number;
}

/** What a decision that involved credits reports about them. */
export interface CreditState {
  readonly metric: string;
  /** Units left in the balance after this decision (unexpired grants' amounts minus what was spent of them). */
  readonly balance: number;
  /** Units this decision charged to credits (0 when the covered quotas had room, or on a denial). */
  readonly charged: number;
}

/** The ledger counter of one grant's spent units: a lifetime counter (period start 0), `g:<grantId>`. */
export function grantCounterIdOf(grantId: number): string {
  return `g:${grantId}`;
}

/** The grant id of a `g:<grantId>` ledger counter, or undefined for any other counter. */
export function grantIdOfCounterId(counterId: string): number | undefined {
  if (!counterId.startsWith('g:')) return undefined;
  const id = Number(counterId.slice(2));
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

/** The ledger counter of a metric's credits spent per month (billing): `c:<metric>:month`. */
export function creditSpendCounterIdOf(metric: string): string {
  return `c:${metric}:month`;
}

/**
 * The order grants are spent in: soonest-expiring first, never-expiring
 * last, then oldest (lowest id) first. consume.lua sorts the same way.
 */
export function spendingOrder(a: CreditGrantState, b: CreditGrantState): number {
  const ea = a.expiresAtMs ?? Number.POSITIVE_INFINITY;
  const eb = b.expiresAtMs ?? Number.POSITIVE_INFINITY;
  if (ea !== eb) return ea < eb ? -1 : 1;
  return a.id - b.id;
}

/** Whether the grant can be spent at `nowMs` (not expired). */
export function grantInForce(grant: CreditGrantState, nowMs: number): boolean {
  return grant.expiresAtMs === null || grant.expiresAtMs > nowMs;
}

/** The metrics whose credits cover one of `policies` (Policy.credits), each once, in policy order. */
export function creditMetricsOf(policies: ReadonlyArray<{ readonly credits?: { readonly metric: string } }>): string[] {
  const metrics: string[] = [];
  for (const policy of policies) if (policy.credits !== undefined && !metrics.includes(policy.credits.metric)) metrics.push(policy.credits.metric);
  return metrics;
}

/** The subject's balance of each metric credits cover in `policies`, from `store` (the usage endpoints' `credits`). */
export async function creditBalancesOf(
  store: { creditBalance(subject: string, metric: string): Promise<number> },
  subject: string,
  policies: ReadonlyArray<{ readonly credits?: { readonly metric: string } }>,
): Promise<Array<{ metric: string; balance: number }>> {
  return Promise.all(creditMetricsOf(policies).map(async (metric) => ({ metric, balance: await store.creditBalance(subject, metric) })));
}

/**
 * How a refund of `units` credits goes back into the grants it was spent
 * from, as lua/refund.lua does it: to the grants in force at `nowMs` with
 * units spent, in the reverse of the spending order (never-expiring first,
 * highest id first, then the latest expiry), so that what went out last
 * comes back first; never below 0 spent, and nothing to an expired grant
 * (credits that expired stay expired). Returns each changed grant's new
 * spent count; the units not placed (grants spent less than `units`) are
 * dropped.
 */
export function creditsToGiveBack(
  grants: readonly CreditGrantState[],
  units: number,
  nowMs: number,
): Array<{ readonly id: number; readonly used: number }> {
  const spent = grants.filter((grant) => grant.used > 0 && grantInForce(grant, nowMs)).sort((a, b) => spendingOrder(b, a));
  const changed: Array<{ id: number; used: number }> = [];
  let left = units;
  for (const grant of spent) {
    if (left === 0) break;
    const back = Math.min(left, grant.used);
    left -= back;
    changed.push({ id: grant.id, used: grant.used - back });
  }
  return changed;
}
