import { randomBytes } from 'node:crypto';
import { buildPlans } from '../../../config/plans.js';
import type { GatewayConfig } from '../../../config/schema.js';
import { generateApiKey, hashApiKey } from '../../../core/api-key.js';
import type { Clock } from '../../../core/clock.js';
import { GatewayError } from '../../../core/errors.js';
import { applyLimitOverrides, parseLimitOverrides } from '../../../core/limit-overrides.js';
import type { Plan } from '../../../core/plan.js';
import type { Policy } from '../../../core/policy.js';
import { countLiveApiKeys, insertApiKey, revokeApiKey, rotateApiKey, type StoredApiKey } from '../../../db/api-keys.js';
import { appendAudit } from '../../../db/audit-log.js';
import { type CreditGrant, insertCreditGrant } from '../../../db/credit-grants.js';
import type { Database, JsonObject, Transaction } from '../../../db/database.js';
import {
  createSubject,
  deleteSubject,
  lockSubject,
  reactivateSubject,
  setSubjectOverrides,
  setSubjectPlan,
  type Subject,
  suspendSubject,
} from '../../../db/subjects.js';

/**
 * The writes of the admin API and the CLI, each in one transaction together
 * with its audit row: a write that fails leaves no row, and no change is
 * without one. Failures the caller caused are GatewayErrors with stable
 * codes; the plain key of a created or rotated key is returned once and is
 * never written anywhere (the database holds its SHA-256 only).
 */

/** Who writes, and what they write against. */
export interface AdminContext {
  readonly db: Database;
  readonly plans: GatewayConfig['plans'];
  /** The configured API key prefix (`auth.api_keys.prefix`). */
  readonly keyPrefix: string;
  readonly clock: Clock;
  /** The audit actor: `admin:<token hash prefix>`, `cli:<user>`. Never a secret. */
  readonly actor: string;
}

/** A key as created or rotated: the plain key, shown this once, and its record. */
export interface IssuedKey {
  readonly plainKey: string;
  readonly key: StoredApiKey;
}

export interface KeyOptions {
  readonly name?: string | undefined;
  readonly scopes?: readonly string[] | undefined;
  readonly expiresAt?: Date | undefined;
}

/** Characters of the plain key kept as its display prefix after `<prefix>_`. */
const DISPLAY_RANDOM_CHARS = 4;

export function validationError(path: string, message: string): GatewayError {
  return new GatewayError('validation_failed', `${path}: ${message}`, { errors: [{ path, message }] });
}

function subjectNotFound(id: string): GatewayError {
  return new GatewayError('subject_not_found', `There is no subject "${id}".`);
}

function keyNotFound(id: string): GatewayError {
  return new GatewayError('key_not_found', `There is no API key "${id}".`);
}

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

function subjectTarget(id: string): string {
  return `subject:${id}`;
}

function keyTarget(id: string): string {
  return `key:${id}`;
}

async function audited<T>(
  ctx: AdminContext,
  action: string,
  work: (tx: Transaction) => Promise<{ result: T; target: string; subjectId: string | null; details?: JsonObject }>,
): Promise<T> {
  return ctx.db.transaction(async (tx) => {
    const { result, target, subjectId, details } = await work(tx);
    await appendAudit(tx, { at: new Date(ctx.clock.now()), actor: ctx.actor, action, target, subjectId, details: details ?? {} });
    return result;
  });
}

export interface NewSubjectInput {
  readonly id: string;
  readonly plan: string;
  readonly metadata?: JsonObject | undefined;
  readonly overrides?: JsonObject | null | undefined;
}

/** Creates a subject; `subject_exists` (409) when the id is taken. */
export async function createSubjectAudited(ctx: AdminContext, input: NewSubjectInput): Promise<Subject> {
  checkPlan(ctx.plans, input.plan);
  return audited(ctx, 'subject.create', async (tx) => {
    const created = await createSubject(tx, {
      id: input.id,
      plan: input.plan,
      ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
      ...(input.overrides === undefined ? {} : { overrides: input.overrides }),
    });
    if (created === undefined) throw new GatewayError('subject_exists', `The subject "${input.id}" exists.`);
    return { result: created, target: subjectTarget(created.id), subjectId: created.id, details: { plan: created.plan } };
  });
}

/** Moves the subject to `plan`. */
export async function setPlanAudited(ctx: AdminContext, id: string, plan: string): Promise<Subject> {
  checkPlan(ctx.plans, plan);
  return audited(ctx, 'subject.set_plan', async (tx) => {
    const before = await lockSubject(tx, id);
    if (before === undefined) throw subjectNotFound(id);
    const updated = (await setSubjectPlan(tx, id, plan))!;
    return { result: updated, target: subjectTarget(id), subjectId: id, details: { from: before.plan, to: plan } };
  });
}

/** Replaces the subject's overrides (null removes them). */
export async function setOverridesAudited(ctx: AdminContext, id: string, overrides: JsonObject | null): Promise<Subject> {
  return audited(ctx, 'subject.set_overrides', async (tx) => {
    const updated = await setSubjectOverrides(tx, id, overrides);
    if (updated === undefined) throw subjectNotFound(id);
    return { result: updated, target: subjectTarget(id), subjectId: id, details: { overrides } };
  });
}

export async function suspendAudited(ctx: AdminContext, id: string): Promise<Subject> {
  return audited(ctx, 'subject.suspend', async (tx) => {
    const updated = await suspendSubject(tx, id);
    if (updated === undefined) throw subjectNotFound(id);
    return { result: updated, target: subjectTarget(id), subjectId: id };
  });
}

export async function reactivateAudited(ctx: AdminContext, id: string): Promise<Subject> {
  return audited(ctx, 'subject.reactivate', async (tx) => {
    const updated = await reactivateSubject(tx, id);
    if (updated === undefined) throw subjectNotFound(id);
    return { result: updated, target: subjectTarget(id), subjectId: id };
  });
}

/** Deletes the subject and its keys (its usage, credits and audit rows stay). */
export async function deleteSubjectAudited(ctx: AdminContext, id: string): Promise<void> {
  await audited(ctx, 'subject.delete', async (tx) => {
    if (!(await deleteSubject(tx, id))) throw subjectNotFound(id);
    return { result: undefined, target: subjectTarget(id), subjectId: id };
  });
}

function newKeyMaterial(prefix: string): { id: string; plainKey: string; keyHash: string; displayPrefix: string } {
  const plainKey = generateApiKey(prefix);
  return {
    id: `k_${randomBytes(12).toString('base64url')}`,
    plainKey,
    keyHash: hashApiKey(plainKey),
    displayPrefix: plainKey.slice(0, prefix.length + 1 + DISPLAY_RANDOM_CHARS),
  };
}

/**
 * Issues a key to the subject, within its plan's `max_keys` (409
 * `max_keys_reached`). With `createWithPlan`, a missing subject is created
 * on that plan first, in the same transaction (the CLI's `keys create`).
 */
export async function createKeyAudited(
  ctx: AdminContext,
  subjectId: string,
  options: KeyOptions,
  createWithPlan?: string,
): Promise<IssuedKey & { subjectCreated: boolean }> {
  if (createWithPlan !== undefined) checkPlan(ctx.plans, createWithPlan);
  const material = newKeyMaterial(ctx.keyPrefix);
  return ctx.db.transaction(async (tx) => {
    const at = new Date(ctx.clock.now());
    let subject = await lockSubject(tx, subjectId);
    let subjectCreated = false;
    if (subject === undefined && createWithPlan !== undefined) {
      subject = await createSubject(tx, { id: subjectId, plan: createWithPlan });
      if (subject === undefined) throw new GatewayError('subject_exists', `The subject "${subjectId}" was created concurrently; retry.`);
      subjectCreated = true;
      await appendAudit(tx, { at, actor: ctx.actor, action: 'subject.create', target: subjectTarget(subjectId), subjectId, details: { plan: createWithPlan } });
    }
    if (subject === undefined) throw subjectNotFound(subjectId);
    const maxKeys = ctx.plans[subject.plan]?.max_keys;
    if (maxKeys !== undefined) {
      const live = await countLiveApiKeys(tx, subjectId, at);
      if (live >= maxKeys) {
        throw new GatewayError(
          'max_keys_reached',
          `Plan "${subject.plan}" allows ${maxKeys} live key${maxKeys === 1 ? '' : 's'}; the subject holds ${live}. Revoke one first.`,
          { max_keys: maxKeys, live_keys: live },
        );
      }
    }
    const key = (await insertApiKey(tx, {
      id: material.id,
      subjectId,
      displayPrefix: material.displayPrefix,
      keyHash: material.keyHash,
      name: options.name ?? null,
      scopes: options.scopes ?? [],
      expiresAt: options.expiresAt ?? null,
    }))!;
    await appendAudit(tx, {
      at,
      actor: ctx.actor,
      action: 'key.create',
      target: keyTarget(key.id),
      subjectId,
      details: { prefix: key.displayPrefix, name: key.name, scopes: [...key.scopes], expires_at: key.expiresAt?.toISOString() ?? null },
    });
    return { plainKey: material.plainKey, key, subjectCreated };
  });
}

/**
 * Replaces a key: a new key for the same subject, and the old one ends
 * `graceMs` from now. 409 `key_not_rotatable` for a revoked, expired or
 * already rotated key.
 */
export async function rotateKeyAudited(
  ctx: AdminContext,
  keyId: string,
  graceMs: number,
): Promise<IssuedKey & { replaced: StoredApiKey }> {
  const material = newKeyMaterial(ctx.keyPrefix);
  return ctx.db.transaction(async (tx) => {
    const now = new Date(ctx.clock.now());
    const result = await rotateApiKey(tx, {
      keyId,
      now,
      graceMs,
      replacement: { id: material.id, displayPrefix: material.displayPrefix, keyHash: material.keyHash },
    });
    if (!result.ok) {
      if (result.reason === 'not_found') throw keyNotFound(keyId);
      throw new GatewayError('key_not_rotatable', `The API key "${keyId}" cannot be rotated: it is ${result.reason.replace('_', ' ')}.`, {
        reason: result.reason,
      });
    }
    await appendAudit(tx, {
      at: now,
      actor: ctx.actor,
      action: 'key.rotate',
      target: keyTarget(keyId),
      subjectId: result.key.subjectId,
      details: { new_key_id: result.key.id, new_prefix: result.key.displayPrefix, grace_ms: graceMs },
    });
    return { plainKey: material.plainKey, key: result.key, replaced: result.replaced };
  });
}

export async function revokeKeyAudited(ctx: AdminContext, keyId: string): Promise<StoredApiKey> {
  return audited(ctx, 'key.revoke', async (tx) => {
    const key = await revokeApiKey(tx, keyId);
    if (key === undefined) throw keyNotFound(keyId);
    return { result: key, target: keyTarget(keyId), subjectId: key.subjectId, details: { prefix: key.displayPrefix } };
  });
}

export interface CreditInput {
  readonly metric: string;
  readonly amount: number;
  readonly expiresAt?: Date | undefined;
  readonly reason?: string | undefined;
}

/** Grants credits of a metered metric (one some plan meters) to an existing subject. */
export async function grantCreditsAudited(ctx: AdminContext, subjectId: string, input: CreditInput): Promise<CreditGrant> {
  const problem = unmeteredMetricProblem(ctx.plans, input.metric);
  if (problem !== undefined) throw validationError('metric', problem);
  return audited(ctx, 'subject.grant_credits', async (tx) => {
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
}

/** Records a counter reset that already happened in the limit store. */
export async function recordResetAudited(ctx: AdminContext, subjectId: string, policies: readonly Policy[]): Promise<void> {
  await audited(ctx, 'subject.reset', async () => ({
    result: undefined,
    target: subjectTarget(subjectId),
    subjectId,
    details: { policies: policies.map((policy) => policy.name) },
  }));
}

/**
 * Every policy that applies to a subject on `planName` with its stored
 * `overrides` applied (as the limit middleware applies them): its windows,
 * then each metered quota. Undefined when the plan is not configured.
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

/** The plan's windows, then every metered quota. */
export function allPolicies(plan: Plan): readonly Policy[] {
  const policies = [...plan.windows];
  for (const list of plan.policiesByMetric.values()) policies.push(...list.slice(plan.windows.length));
  return policies;
}
