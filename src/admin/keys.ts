import { randomBytes } from 'node:crypto';
import { generateApiKey, hashApiKey } from '../core/api-key.js';
import { GatewayError } from '../core/errors.js';
import { countLiveApiKeys, insertApiKey, listApiKeys, revokeApiKey, rotateApiKey, type StoredApiKey } from '../db/api-keys.js';
import { appendAudit } from '../db/audit-log.js';
import { createSubject, lockSubject } from '../db/subjects.js';
import { type AdminContext, audited, keyNotFound, keyTarget, subjectNotFound, subjectTarget } from './admin-context.js';
import { checkPlan } from './plan-checks.js';
import { requireSubject } from './subjects.js';

/**
 * API keys: create and rotate (the only results that hold a plain key),
 * list (never the hash), revoke. Revoking or rotating a key tells the key
 * caches about its subject: the database never hands the hash back, and
 * dropping the subject drops the key with it.
 */

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

/** Every key of the subject, revoked and expired ones too, oldest first (404 `subject_not_found` for no such subject). */
export async function listSubjectKeys(ctx: Pick<AdminContext, 'db'>, subjectId: string): Promise<StoredApiKey[]> {
  await requireSubject(ctx, subjectId);
  return listApiKeys(ctx.db, subjectId);
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
  const rotated = await ctx.db.transaction(async (tx) => {
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
  await ctx.subjectChanged(rotated.key.subjectId);
  return rotated;
}

/** Revokes the key at once (404 `key_not_found`); revoking a revoked key keeps its first revocation time. */
export async function revokeKeyAudited(ctx: AdminContext, keyId: string): Promise<StoredApiKey> {
  const key = await audited(ctx, 'key.revoke', async (tx) => {
    const key = await revokeApiKey(tx, keyId);
    if (key === undefined) throw keyNotFound(keyId);
    return { result: key, target: keyTarget(keyId), subjectId: key.subjectId, details: { prefix: key.displayPrefix } };
  });
  await ctx.subjectChanged(key.subjectId);
  return key;
}
