import { beforeEach, describe, expect, it } from 'vitest';
import {
  countLiveApiKeys,
  findApiKeyByHash,
  getApiKey,
  insertApiKey,
  listApiKeys,
  recordKeysUsed,
  revokeApiKey,
  rotateApiKey,
} from '../../src/db/api-keys.js';
import type { Database } from '../../src/db/database.js';
import { isUniqueViolation } from '../../src/db/errors.js';
import { createSubject, suspendSubject } from '../../src/db/subjects.js';
import { sha256, T0 } from './db-fixtures.js';

/** API keys. Part of the database contract; `use()` gives the suite's migrated, emptied database. */
export function apiKeysContract(use: () => Database): void {
  let db: Database;
  beforeEach(() => {
    db = use();
  });

  describe('API keys', () => {
    const newKey = (id: string, subjectId = 'acme') => ({
      id,
      subjectId,
      displayPrefix: `qg_${id}`,
      keyHash: sha256(id),
      name: `key ${id}`,
      scopes: ['read', 'write'],
    });

    beforeEach(async () => {
      await db.transaction(async (tx) => {
        await createSubject(tx, { id: 'acme', plan: 'pro', overrides: { limits: { day: 7 } } });
        await createSubject(tx, { id: 'other', plan: 'free' });
      });
    });

    it('stores a key by its hash and finds it with its subject in one query, never returning the hash', async () => {
      const stored = await db.transaction((tx) => insertApiKey(tx, { ...newKey('k1'), expiresAt: new Date(Date.UTC(2027, 0, 1)) }));
      expect(stored).toEqual({
        id: 'k1',
        subjectId: 'acme',
        displayPrefix: 'qg_k1',
        name: 'key k1',
        scopes: ['read', 'write'],
        createdAt: expect.any(Date),
        expiresAt: new Date(Date.UTC(2027, 0, 1)),
        revokedAt: null,
        lastUsedAt: null,
        replacesKeyId: null,
      });
      const before = db.queryCount;
      const found = await findApiKeyByHash(db, sha256('k1'));
      expect(db.queryCount - before).toBe(1);
      expect(found).toEqual({ key: stored, subject: { id: 'acme', plan: 'pro', overrides: { limits: { day: 7 } }, suspendedAt: null } });
      expect(JSON.stringify(found)).not.toContain(sha256('k1'));
      expect(await findApiKeyByHash(db, sha256('unknown'))).toBeUndefined();
    });

    it('defaults to no name, no scopes and no expiry', async () => {
      const stored = await db.transaction((tx) =>
        insertApiKey(tx, { id: 'bare', subjectId: 'acme', displayPrefix: 'qg_bare', keyHash: sha256('bare') }),
      );
      expect(stored).toMatchObject({ name: null, scopes: [], expiresAt: null });
    });

    it('stores nothing for a subject that does not exist', async () => {
      expect(await db.transaction((tx) => insertApiKey(tx, newKey('k1', 'nobody')))).toBeUndefined();
      expect(await getApiKey(db, 'k1')).toBeUndefined();
    });

    it('refuses a second key with the same hash as a unique violation', async () => {
      await db.transaction((tx) => insertApiKey(tx, newKey('k1')));
      const error = await db.transaction((tx) => insertApiKey(tx, { ...newKey('k2'), keyHash: sha256('k1') })).catch((e: unknown) => e);
      expect(isUniqueViolation(error)).toBe(true);
      expect(await getApiKey(db, 'k2')).toBeUndefined();
    });

    it("lists a subject's keys oldest first, revoked ones included, without hashes", async () => {
      await db.transaction(async (tx) => {
        await insertApiKey(tx, newKey('k1'));
        await insertApiKey(tx, newKey('k0'));
        await insertApiKey(tx, newKey('x1', 'other'));
      });
      await db.transaction((tx) => insertApiKey(tx, newKey('k2')));
      await db.transaction((tx) => revokeApiKey(tx, 'k0'));
      const keys = await listApiKeys(db, 'acme');
      // k0 and k1 share a created_at (one transaction): ties go by id.
      expect(keys.map((k) => k.id)).toEqual(['k0', 'k1', 'k2']);
      expect(keys[0]!.revokedAt).toBeInstanceOf(Date);
      expect(JSON.stringify(keys)).not.toMatch(/[0-9a-f]{64}/);
      expect(await listApiKeys(db, 'nobody')).toEqual([]);
    });

    it('counts live keys: neither revoked nor expired', async () => {
      await db.transaction(async (tx) => {
        await insertApiKey(tx, newKey('live'));
        await insertApiKey(tx, { ...newKey('later'), expiresAt: new Date(T0.getTime() + 1) });
        await insertApiKey(tx, { ...newKey('expired'), expiresAt: T0 });
        await insertApiKey(tx, newKey('revoked'));
        await insertApiKey(tx, newKey('elsewhere', 'other'));
        await revokeApiKey(tx, 'revoked');
      });
      expect(await countLiveApiKeys(db, 'acme', T0)).toBe(2);
      expect(await countLiveApiKeys(db, 'nobody', T0)).toBe(0);
    });

    it('revokes a key, keeping the first instant when revoked again; the lookup still finds it', async () => {
      await db.transaction((tx) => insertApiKey(tx, newKey('k1')));
      const revoked = await db.transaction((tx) => revokeApiKey(tx, 'k1'));
      expect(revoked?.revokedAt).toBeInstanceOf(Date);
      expect((await db.transaction((tx) => revokeApiKey(tx, 'k1')))?.revokedAt).toEqual(revoked?.revokedAt);
      expect((await findApiKeyByHash(db, sha256('k1')))?.key.revokedAt).toEqual(revoked?.revokedAt);
      expect(await db.transaction((tx) => revokeApiKey(tx, 'nobody'))).toBeUndefined();
    });

    it('shows a suspended subject through the key lookup', async () => {
      await db.transaction((tx) => insertApiKey(tx, newKey('k1')));
      await db.transaction((tx) => suspendSubject(tx, 'acme'));
      expect((await findApiKeyByHash(db, sha256('k1')))?.subject.suspendedAt).toBeInstanceOf(Date);
    });

    it('rotates: a new key for the same subject, the old one ending after the grace period', async () => {
      await db.transaction((tx) => insertApiKey(tx, newKey('old')));
      const result = await db.transaction((tx) =>
        rotateApiKey(tx, {
          keyId: 'old',
          replacement: { id: 'new', displayPrefix: 'qg_new', keyHash: sha256('new') },
          now: T0,
          graceMs: 3_600_000,
        }),
      );
      expect(result).toEqual({
        ok: true,
        key: expect.objectContaining({ id: 'new', subjectId: 'acme', name: 'key old', scopes: ['read', 'write'], expiresAt: null, replacesKeyId: 'old' }),
        replaced: expect.objectContaining({ id: 'old', expiresAt: new Date(T0.getTime() + 3_600_000), revokedAt: null }),
      });
      expect((await findApiKeyByHash(db, sha256('new')))?.key.replacesKeyId).toBe('old');
      expect((await findApiKeyByHash(db, sha256('old')))?.key.expiresAt).toEqual(new Date(T0.getTime() + 3_600_000));
    });

    it('keeps an earlier expiry of the rotated key, and takes the replacement name and scopes when given', async () => {
      const soon = new Date(T0.getTime() + 60_000);
      await db.transaction((tx) => insertApiKey(tx, { ...newKey('old'), expiresAt: soon }));
      const result = await db.transaction((tx) =>
        rotateApiKey(tx, {
          keyId: 'old',
          replacement: { id: 'new', displayPrefix: 'qg_new', keyHash: sha256('new'), name: null, scopes: [] },
          now: T0,
          graceMs: 3_600_000,
        }),
      );
      expect(result.ok && result.replaced.expiresAt).toEqual(soon);
      expect(result.ok && result.key).toMatchObject({ name: null, scopes: [] });
    });

    it('refuses to rotate an unknown, revoked, expired or already rotated key, writing nothing', async () => {
      await db.transaction(async (tx) => {
        await insertApiKey(tx, newKey('revoked'));
        await revokeApiKey(tx, 'revoked');
        await insertApiKey(tx, { ...newKey('expired'), expiresAt: T0 });
        await insertApiKey(tx, newKey('once'));
      });
      const rotate = (keyId: string, newId: string) =>
        db.transaction((tx) =>
          rotateApiKey(tx, { keyId, replacement: { id: newId, displayPrefix: 'qg_n', keyHash: sha256(newId) }, now: T0, graceMs: 1_000 }),
        );
      expect(await rotate('nobody', 'n1')).toEqual({ ok: false, reason: 'not_found' });
      expect(await rotate('revoked', 'n2')).toEqual({ ok: false, reason: 'revoked' });
      expect(await rotate('expired', 'n3')).toEqual({ ok: false, reason: 'expired' });
      expect((await rotate('once', 'n4')).ok).toBe(true);
      expect(await rotate('once', 'n5')).toEqual({ ok: false, reason: 'already_rotated' });
      expect((await listApiKeys(db, 'acme')).map((k) => k.id).sort()).toEqual(['expired', 'n4', 'once', 'revoked']);
    });

    it('records last use of many keys in one statement, never moving it back', async () => {
      await db.transaction(async (tx) => {
        for (const id of ['k1', 'k2', 'k3']) await insertApiKey(tx, newKey(id));
      });
      const later = new Date(T0.getTime() + 1_000);
      let before = db.queryCount;
      await recordKeysUsed(db, ['k1', 'k2', 'k1', 'gone'], later);
      expect(db.queryCount - before).toBe(1);
      await recordKeysUsed(db, ['k1', 'k3'], T0);
      const used = Object.fromEntries((await listApiKeys(db, 'acme')).map((k) => [k.id, k.lastUsedAt]));
      expect(used).toEqual({ k1: later, k2: later, k3: T0 });
      before = db.queryCount;
      await recordKeysUsed(db, [], later);
      expect(db.queryCount).toBe(before);
    });
  });
}
