import { type Period, periodOf } from '../core/calendar.js';
import type { PolicyState } from '../core/decision.js';
import { creditBalancesOf } from '../core/credits.js';
import { GatewayError } from '../core/errors.js';
import type { Policy } from '../core/policy.js';
import { callUsageStore } from '../core/usage-store.js';
import { InvalidCursorError, listAudit, type AuditEntry, type ListAuditOptions } from '../db/audit-log.js';
import { type CreditGrant, insertCreditGrant } from '../db/credit-grants.js';
import type { Page } from '../db/database.js';
import type { Subject } from '../db/subjects.js';
import { lockSubject } from '../db/subjects.js';
import { readUsage, resetUsage } from '../db/usage.js';
import { listApiKeys } from '../db/api-keys.js';
import { buildPlans } from '../config/plans.js';
import { keyCountingId } from '../core/counting-id.js';
import { type AdminContext, audited, subjectNotFound, subjectTarget, validationError } from './admin-context.js';
import { policiesOfSubject, unmeteredMetricProblem } from './plan-checks.js';
import { requireSubject } from './subjects.js';

/**
 * A subject's usage — live from the limit store, or as the usage ledger
 * last recorded it —, counter resets, credit grants, and the audit log.
 */

/** A subject with every policy that applies to it (its plan's, with its overrides). */
export interface SubjectPolicies {
  readonly subject: Subject;
  readonly policies: readonly Policy[];
}

/** The subject and its policies; 404 `subject_not_found`, 500 when its stored plan is not configured. */
async function subjectPolicies(ctx: Pick<AdminContext, 'db' | 'plans'>, id: string): Promise<SubjectPolicies> {
  const subject = await requireSubject(ctx, id);
  const policies = policiesOfSubject(ctx.plans, subject.plan, subject.overrides);
  if (policies === undefined) throw new GatewayError('internal_error', `The subject's plan "${subject.plan}" is not configured.`);
  return { subject, policies };
}

/** One API key of a subject whose plan counts by key (`limit_by: key`), and the id its counters are kept under. */
export interface CountedKey {
  readonly keyId: string;
  readonly name: string | null;
  readonly countingId: string;
}

/**
 * The subject's keys when its plan counts by key (every key it holds,
 * revoked and expired ones too: they may have counts this period), else
 * none.
 */
async function countedKeysOf(ctx: Pick<AdminContext, 'db' | 'plans'>, subject: Subject): Promise<CountedKey[]> {
  if (buildPlans(ctx.plans).get(subject.plan)?.limitByKey !== true) return [];
  const keys = await listApiKeys(ctx.db, subject.id);
  return keys.map((key) => ({ keyId: key.id, name: key.name, countingId: keyCountingId(subject.id, key.id) }));
}

/** A key's state of each policy, beside the subject's own. */
export interface KeyUsage extends CountedKey {
  readonly states: readonly PolicyState[];
}

/**
 * The subject's state of each policy in the limit store, charging nothing
 * (503 `usage_unavailable` without a store answer). Under `limit_by: key`,
 * also each key's (`keys`); the subject's own states then count its callers
 * without a key id (JWT).
 */
export async function storeUsage(
  ctx: AdminContext,
  id: string,
): Promise<SubjectPolicies & { states: readonly PolicyState[]; credits: ReadonlyArray<{ metric: string; balance: number }>; keys: readonly KeyUsage[] }> {
  const { subject, policies } = await subjectPolicies(ctx, id);
  const counted = await countedKeysOf(ctx, subject);
  const [states, credits, keys] = await callUsageStore(ctx.usage, (usage) =>
    Promise.all([
      usage.peek(subject.id, policies),
      creditBalancesOf(usage, subject.id, policies),
      Promise.all(counted.map(async (key) => ({ ...key, states: await usage.peek(key.countingId, policies) }))),
    ]),
  );
  return { subject, policies, states, credits, keys };
}

/**
 * Deletes the subject's counters of every policy in the limit store (under
 * `limit_by: key`, each of its keys' too) and sets
 * the usage ledger's rows of their current periods to 0, with the audit row,
 * in one transaction; then tells the caches. Resolves to the policies reset.
 *
 * Order (docs/operations.md, "What an admin reset does to the usage
 * ledger"): inside the transaction, the store's reset first: one atomic
 * step deletes the counters, puts 0 for their periods into the usage marker
 * (replacing unflushed pre-reset counts) and takes a fresh version V of the
 * subject. Then the ledger's rows go to 0 at V (db/usage.ts resetUsage),
 * then the commit. Every count read before the store's reset carries a
 * version below V, so a flush of it, before, during (it waits on the row
 * locks) or after the transaction, cannot raise the 0; every charge after
 * it carries a version above V, so its flush replaces the 0 whenever it
 * lands (not lost). A store failure writes nothing to the ledger; a
 * database failure after the store's reset still leaves the 0 at V in the
 * usage marker, which the next flush writes.
 */
export async function resetUsageAudited(ctx: AdminContext, id: string): Promise<SubjectPolicies> {
  const { subject, policies } = await subjectPolicies(ctx, id);
  const nowMs = ctx.clock.now();
  // A quota's overage row goes to 0 with its counter (it is worked out from it).
  const periods = policies.flatMap((policy) => {
    const periodStart = new Date(periodOf(policy.window, nowMs).startMs);
    const counter = { counterId: policy.counterId, periodStart };
    return policy.overage === undefined ? [counter] : [counter, { counterId: policy.overage.counterId, periodStart }];
  });
  // Under `limit_by: key`, each key's counters too.
  const countingIds = [subject.id, ...(await countedKeysOf(ctx, subject)).map((key) => key.countingId)];
  // A counting id the store has not seen yet (a limit_by: key subject's own, never charged) is
  // hydrated from the ledger by its reset: reset once before the transaction, so that read is
  // not made while the transaction holds the embedded database's one connection.
  if (countingIds.length > 1) await callUsageStore(ctx.usage, (usage) => Promise.all(countingIds.map((id) => usage.reset(id, policies))));
  await audited(ctx, 'subject.reset', async (tx) => {
    for (const countingId of countingIds) {
      const version = await callUsageStore(ctx.usage, (usage) => usage.reset(countingId, policies));
      await resetUsage(tx, countingId, periods, version);
    }
    return {
      result: undefined,
      target: subjectTarget(subject.id),
      subjectId: subject.id,
      details: { policies: policies.map((policy) => policy.name), ...(countingIds.length > 1 ? { keys: countingIds.length - 1 } : {}) },
    };
  });
  await ctx.subjectChanged(subject.id);
  return { subject, policies };
}

export interface CreditInput {
  readonly metric: string;
  readonly amount: number;
  readonly expiresAt?: Date | undefined;
  readonly reason?: string | undefined;
}

/**
 * Grants credits of a metered metric (one some plan meters) to an existing
 * subject; after the commit the grant is added to the subject's balance in
 * the limit store (shared by every instance on Redis; a subject hydrated
 * later reads it from the database, and writing it twice counts it once),
 * then this instance forgets the subject's local denial, and the caches
 * are told (the other instances forget theirs).
 */
export async function grantCreditsAudited(ctx: AdminContext, subjectId: string, input: CreditInput): Promise<CreditGrant> {
  const problem = unmeteredMetricProblem(ctx.plans, input.metric);
  if (problem !== undefined) throw validationError('metric', problem);
  const grant = await audited(ctx, 'subject.grant_credits', async (tx) => {
    if ((await lockSubject(tx, subjectId)) === undefined) throw subjectNotFound(subjectId);
    const grant = await insertCreditGrant(tx, {
      subjectId,
      metric: input.metric,
      amount: input.amount,
      grantedAt: new Date(ctx.clock.now()),
      expiresAt: input.expiresAt ?? null,
      reason: input.reason ?? null,
    });
    return {
      result: grant,
      target: subjectTarget(subjectId),
      subjectId,
      details: { grant_id: grant.id, metric: grant.metric, amount: grant.amount, reason: grant.reason },
    };
  });
  // The grant is committed: a store that does not answer now gets it with the subject's next hydration.
  await ctx.usage
    ?.addCredits(subjectId, [{ id: grant.id, metric: grant.metric, amount: grant.amount, expiresAtMs: grant.expiresAt?.getTime() ?? null, used: 0 }])
    .catch(() => undefined);
  ctx.usage?.forget(subjectId);
  await ctx.subjectChanged(subjectId);
  return grant;
}

/** One page of the audit log, newest first; a cursor this service did not hand out is 400 at `cursor`. */
export async function listAuditPage(ctx: Pick<AdminContext, 'db'>, options: ListAuditOptions): Promise<Page<AuditEntry>> {
  try {
    return await listAudit(ctx.db, options);
  } catch (error) {
    if (error instanceof InvalidCursorError) throw validationError('cursor', 'not a cursor this API handed out');
    throw error;
  }
}

/** One policy of a subject with the ledger's count for its current period. */
export interface LedgerPolicyUsage {
  readonly policy: Policy;
  readonly period: Period;
  /** What the flusher last copied from the store for this period (0 when nothing was). */
  readonly used: number;
}

/**
 * The subject's count of each policy's current period at `nowMs`, as the
 * usage ledger holds it (at most one flush interval behind the store).
 * 404 `subject_not_found`; a subject whose plan is not configured has no
 * policies.
 */
export async function ledgerUsage(
  ctx: Pick<AdminContext, 'db' | 'plans'>,
  subjectId: string,
  nowMs: number,
): Promise<{ subject: Subject; usage: readonly LedgerPolicyUsage[] }> {
  const subject = await requireSubject(ctx, subjectId);
  const policies = policiesOfSubject(ctx.plans, subject.plan, subject.overrides) ?? [];
  const periods = policies.map((policy) => ({ policy, period: periodOf(policy.window, nowMs) }));
  const counts = await readUsage(
    ctx.db,
    subjectId,
    periods.map(({ policy, period }) => ({ counterId: policy.counterId, periodStart: new Date(period.startMs) })),
  );
  const usage = periods.map(({ policy, period }) => ({
    policy,
    period,
    used: counts.find((c) => c.counterId === policy.counterId && c.periodStart.getTime() === period.startMs)?.count ?? 0,
  }));
  return { subject, usage };
}
