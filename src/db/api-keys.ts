import type { JsonObject, Queryable, Transaction } from './database.js';

/**
 * API keys, stored by the SHA-256 of the key: the plain key never reaches the
 * database, and no function here returns the hash. findApiKeyByHash is the
 * lookup on the request path (on the replica, when there is one), made only
 * when the key cache misses.
 */

export interface StoredApiKey {
  readonly id: string;
  readonly subjectId: string;
  /** The key's first characters, for people to recognise it (`qg_AbC1`). */
  readonly displayPrefix: string;
  readonly name: string | null;
  readonly scopes: readonly string[];
  readonly createdAt: Date;
  /** Refused at and after this instant; null: never expires. */
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
  /** Updated in batches (recordKeysUsed); may lag by one flush. */
  readonly lastUsedAt: Date | null;
  /** The key this one replaced by rotation. */
  readonly replacesKeyId: string | null;
}

/** What a lookup by hash finds: the key and what the gateway needs of its subject, in one query. */
export interface KeyLookup {
  readonly key: StoredApiKey;
  readonly subject: {
    readonly id: string;
    readonly plan: string;
    readonly overrides: JsonObject | null;
    readonly suspendedAt: Date | null;
  };
}

export interface NewApiKey {
  readonly id: string;
  readonly subjectId: string;
  readonly displayPrefix: string;
  /** Lowercase hex SHA-256 of the key. */
  readonly keyHash: string;
  readonly name?: string | null;
  readonly scopes?: readonly string[];
  readonly expiresAt?: Date | null;
}

export interface RotateApiKey {
  /** The key being replaced. */
  readonly keyId: string;
  /** The new key; name and scopes default to the old key's. */
  readonly replacement: Omit<NewApiKey, 'subjectId'>;
  /** The instant the rotation happens (from the caller's clock). */
  readonly now: Date;
  /** How long the old key keeps working after `now`, in ms; 0 ends it at once. */
  readonly graceMs: number;
}

export type RotateResult =
  | { readonly ok: true; readonly key: StoredApiKey; readonly replaced: StoredApiKey }
  | { readonly ok: false; readonly reason: 'not_found' | 'revoked' | 'expired' | 'already_rotated' };

interface ApiKeyRow {
  id: string;
  subject_id: string;
  display_prefix: string;
  name: string | null;
  scopes: string[];
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  replaces_key_id: string | null;
}

interface LookupRow extends ApiKeyRow {
  plan: string;
  overrides: JsonObject | null;
  suspended_at: Date | null;
}

/** Every column but key_hash: nothing here ever reads the hash back. */
const COLUMNS = 'id, subject_id, display_prefix, name, scopes, created_at, expires_at, revoked_at, last_used_at, replaces_key_id';
const K_COLUMNS = COLUMNS.split(', ').map((column) => `k.${column}`).join(', ');

// Inserts only when the subject exists: no row back means no such subject.
const INSERT = `
INSERT INTO api_keys (id, subject_id, display_prefix, key_hash, name, scopes, expires_at, replaces_key_id)
SELECT $1, s.id, $3, $4, $5, $6::text[], $7::timestamptz, $8 FROM subjects s WHERE s.id = $2
RETURNING ${COLUMNS}`;
const SELECT_BY_HASH = `
SELECT ${K_COLUMNS}, s.plan, s.overrides, s.suspended_at
FROM api_keys k JOIN subjects s ON s.id = k.subject_id
WHERE k.key_hash = $1`;
const SELECT_ONE = `SELECT ${COLUMNS} FROM api_keys WHERE id = $1`;
const SELECT_FOR_ROTATION = `
SELECT ${COLUMNS}, EXISTS (SELECT 1 FROM api_keys r WHERE r.replaces_key_id = api_keys.id) AS rotated
FROM api_keys WHERE id = $1 FOR UPDATE`;
const SELECT_BY_SUBJECT = `SELECT ${COLUMNS} FROM api_keys WHERE subject_id = $1 ORDER BY created_at, id`;
const COUNT_LIVE = `
SELECT count(*) AS live FROM api_keys
WHERE subject_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`;
// A second revoke keeps the first instant.
const REVOKE = `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`;
const END_AT = `
UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, $2::timestamptz), $2::timestamptz)
WHERE id = $1 RETURNING ${COLUMNS}`;
// GREATEST ignores NULL, and never moves last_used_at back (batches may arrive out of order).
const TOUCH = 'UPDATE api_keys SET last_used_at = GREATEST(last_used_at, $2::timestamptz) WHERE id = ANY($1::text[])';

/** Stores a key record; undefined when the subject does not exist. */
export async function insertApiKey(tx: Transaction, key: NewApiKey): Promise<StoredApiKey | undefined> {
  const rows = await tx.query<ApiKeyRow>(INSERT, insertParams(key, null));
  return rows[0] === undefined ? undefined : toApiKey(rows[0]);
}

/**
 * The key with this hash and its subject, whatever its state: the caller
 * tells revoked, expired and suspended apart. One query.
 */
export async function findApiKeyByHash(q: Queryable, keyHash: string): Promise<KeyLookup | undefined> {
  const row = (await q.query<LookupRow>(SELECT_BY_HASH, [keyHash]))[0];
  if (row === undefined) return undefined;
  return {
    key: toApiKey(row),
    subject: { id: row.subject_id, plan: row.plan, overrides: row.overrides, suspendedAt: row.suspended_at },
  };
}

export async function getApiKey(q: Queryable, id: string): Promise<StoredApiKey | undefined> {
  const row = (await q.query<ApiKeyRow>(SELECT_ONE, [id]))[0];
  return row === undefined ? undefined : toApiKey(row);
}

/** Every key of the subject, revoked and expired ones too, oldest first. */
export async function listApiKeys(q: Queryable, subjectId: string): Promise<StoredApiKey[]> {
  return (await q.query<ApiKeyRow>(SELECT_BY_SUBJECT, [subjectId])).map(toApiKey);
}

/** Keys of the subject neither revoked nor expired at `now`: what a plan's `max_keys` caps. */
export async function countLiveApiKeys(q: Queryable, subjectId: string, now: Date): Promise<number> {
  const rows = await q.query<{ live: number }>(COUNT_LIVE, [subjectId, now]);
  return rows[0]?.live ?? 0;
}

/** Revokes the key (revoking it again keeps the first instant); undefined when there is none. */
export async function revokeApiKey(tx: Transaction, id: string): Promise<StoredApiKey | undefined> {
  const row = (await tx.query<ApiKeyRow>(REVOKE, [id]))[0];
  return row === undefined ? undefined : toApiKey(row);
}

/**
 * Replaces a key: stores the new one for the same subject and ends the old
 * one at `now + graceMs` (or at its own expiry, if sooner). A key is rotated
 * at most once; a revoked or expired key is not rotated.
 */
export async function rotateApiKey(tx: Transaction, rotation: RotateApiKey): Promise<RotateResult> {
  const old = (await tx.query<ApiKeyRow & { rotated: boolean }>(SELECT_FOR_ROTATION, [rotation.keyId]))[0];
  if (old === undefined) return { ok: false, reason: 'not_found' };
  if (old.revoked_at !== null) return { ok: false, reason: 'revoked' };
  if (old.expires_at !== null && old.expires_at.getTime() <= rotation.now.getTime()) return { ok: false, reason: 'expired' };
  if (old.rotated) return { ok: false, reason: 'already_rotated' };
  const { replacement } = rotation;
  const inserted = await tx.query<ApiKeyRow>(
    INSERT,
    insertParams(
      {
        ...replacement,
        subjectId: old.subject_id,
        name: replacement.name === undefined ? old.name : replacement.name,
        scopes: replacement.scopes ?? old.scopes,
      },
      old.id,
    ),
  );
  const ended = await tx.query<ApiKeyRow>(END_AT, [old.id, new Date(rotation.now.getTime() + Math.max(0, rotation.graceMs))]);
  return { ok: true, key: toApiKey(inserted[0]!), replaced: toApiKey(ended[0]!) };
}

/**
 * Sets last_used_at of every key in `ids` to `usedAt` (never moving it back),
 * in one statement; ids of keys that no longer exist are ignored.
 */
export async function recordKeysUsed(q: Queryable, ids: readonly string[], usedAt: Date): Promise<void> {
  if (ids.length === 0) return;
  await q.query(TOUCH, [[...new Set(ids)], usedAt]);
}

function insertParams(key: NewApiKey, replacesKeyId: string | null): unknown[] {
  return [
    key.id,
    key.subjectId,
    key.displayPrefix,
    key.keyHash,
    key.name ?? null,
    [...(key.scopes ?? [])],
    key.expiresAt ?? null,
    replacesKeyId,
  ];
}

function toApiKey(row: ApiKeyRow): StoredApiKey {
  return {
    id: row.id,
    subjectId: row.subject_id,
    displayPrefix: row.display_prefix,
    name: row.name,
    scopes: row.scopes,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
    replacesKeyId: row.replaces_key_id,
  };
}
