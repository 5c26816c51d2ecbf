import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
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
import { appendAudit, InvalidCursorError, listAudit } from '../../src/db/audit-log.js';
import { insertCreditGrant, listCreditGrants, sumCredits } from '../../src/db/credit-grants.js';
import type { Database } from '../../src/db/database.js';
import { isUniqueViolation } from '../../src/db/errors.js';
import { listAppliedMigrations, loadMigrations, type Migration, migrate, MigrationError } from '../../src/db/migrations.js';
import {
  createSubject,
  deleteSubject,
  getSubject,
  listSubjects,
  reactivateSubject,
  setSubjectOverrides,
  setSubjectPlan,
  suspendSubject,
} from '../../src/db/subjects.js';
import { readUsage, upsertUsage } from '../../src/db/usage.js';
import { within } from '../support/within.js';

/** Opens an empty database (no tables); the suite migrates it and closes it. */
export type EmptyDatabaseFactory = () => Promise<Database>;

const HOUR = Date.UTC(2026, 5, 15, 10);
const DAY = Date.UTC(2026, 5, 15);
const MONTH = Date.UTC(2026, 5, 1);
const T0 = new Date(Date.UTC(2026, 5, 15, 10, 30));

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Migrations 001… as shipped, plus extra ones written to a temp directory. */
function migrationsWith(extra: Record<string, string>): Migration[] {
  const dir = mkdtempSync(join(tmpdir(), 'quotagate-migrations-'));
  for (const migration of loadMigrations()) writeFileSync(join(dir, migration.fileName), migration.sql);
  for (const [file, sql] of Object.entries(extra)) writeFileSync(join(dir, file), sql);
  return loadMigrations(dir);
}

/**
 * The repository and migration contract. Every engine runs this suite and
 * must pass it identically: the same SQL, the same values back.
 */
export function databaseContract(name: string, openEmpty: EmptyDatabaseFactory): void {
  describe(`Database contract: ${name}`, () => {
    let db: Database;
    const shipped = loadMigrations();

    beforeAll(async () => {
      db = await openEmpty();
    });
    afterAll(async () => {
      await db?.close();
    });

    describe('migrations', () => {
      it('applies every migration to an empty database and records version, name and checksum', async () => {
        const report = await migrate(db, shipped);
        expect(report.applied.map((m) => m.fileName)).toEqual(shipped.map((m) => m.fileName));
        expect(report.alreadyApplied).toBe(0);
        const recorded = await listAppliedMigrations(db);
        expect(recorded.map(({ version, name, checksum }) => ({ version, name, checksum }))).toEqual(
          shipped.map(({ version, name, checksum }) => ({ version, name, checksum })),
        );
        expect(recorded[0]!.appliedAt).toBeInstanceOf(Date);
      });

      it('applies nothing when the database is up to date', async () => {
        const report = await migrate(db, shipped);
        expect(report).toEqual({ applied: [], alreadyApplied: shipped.length, unknown: [] });
      });

      it('applies a new migration once when two migrate calls race', async () => {
        const withExtra = migrationsWith({ '900_contract_extra.sql': 'CREATE TABLE contract_extra (id integer PRIMARY KEY);\n' });
        const reports = await within(Promise.all([migrate(db, withExtra), migrate(db, withExtra)]), 15_000, 'two migrate calls');
        expect(reports.map((r) => r.applied.map((m) => m.version)).sort()).toEqual([[], [900]]);
        expect((await listAppliedMigrations(db)).map((m) => m.version)).toEqual([...shipped.map((m) => m.version), 900]);
      });

      it('refuses to migrate when an applied migration changed, and applies nothing', async () => {
        const changed = migrationsWith({
          '900_contract_extra.sql': 'CREATE TABLE contract_extra (id bigint PRIMARY KEY);\n',
          '901_contract_more.sql': 'CREATE TABLE contract_more (id integer);\n',
        });
        await expect(migrate(db, changed)).rejects.toThrow(MigrationError);
        await expect(migrate(db, changed)).rejects.toThrow(/^migration 900_contract_extra\.sql was changed after it was applied \(checksum [0-9a-f]{12}… applied on /);
        expect((await listAppliedMigrations(db)).map((m) => m.version)).not.toContain(901);
        await expect(db.query('SELECT 1 FROM contract_more')).rejects.toThrow();
      });

      it('reports applied migrations that have no file, without failing', async () => {
        const report = await migrate(db, shipped);
        expect(report.applied).toEqual([]);
        expect(report.unknown.map((m) => ({ version: m.version, name: m.name }))).toEqual([{ version: 900, name: 'contract_extra' }]);
      });
    });

    describe('queries', () => {
      it('passes and returns values alike: jsonb, text[], timestamptz, int8, null', async () => {
        const rows = await db.query(
          'SELECT $1::jsonb AS doc, $2::text[] AS list, $3::timestamptz AS at, $4::bigint AS big, $5::text AS nothing, count(*) AS n FROM (VALUES (1), (2)) v (x)',
          [{ a: 1, nested: { b: [true, null] } }, ['x', 'y z', ''], T0, 2 ** 40, null],
        );
        expect(rows).toEqual([{ doc: { a: 1, nested: { b: [true, null] } }, list: ['x', 'y z', ''], at: T0, big: 2 ** 40, nothing: null, n: 2 }]);
        expect(Object.getPrototypeOf(rows)).toBe(Array.prototype);
      });

      it('counts every statement, inside transactions too', async () => {
        const before = db.queryCount;
        await db.query('SELECT 1');
        await db.transaction(async (tx) => {
          await tx.query('SELECT 1');
          await tx.query('SELECT 2');
        });
        expect(db.queryCount - before).toBe(3);
      });

      it('commits a transaction that resolves and rolls back one that rejects, rejecting with its error', async () => {
        await db.transaction((tx) => createSubject(tx, { id: 'kept', plan: 'free' }));
        const failure = new Error('changed my mind');
        await expect(
          db.transaction(async (tx) => {
            await createSubject(tx, { id: 'dropped', plan: 'free' });
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(await getSubject(db, 'kept')).toBeDefined();
        expect(await getSubject(db, 'dropped')).toBeUndefined();
      });

      it('refuses the Database itself inside one of its transactions rather than hanging', async () => {
        const attempt = db.transaction(async () => {
          await db.query('SELECT 1');
        });
        await expect(within(attempt, 5_000, 'a query inside a transaction')).rejects.toThrow(/inside its own transaction/);
        const nested = db.transaction(() => db.transaction(async () => undefined));
        await expect(within(nested, 5_000, 'a nested transaction')).rejects.toThrow(/inside its own transaction/);
      });
    });

    describe('repositories', () => {
      beforeEach(async () => {
        await db.query('TRUNCATE subjects, api_keys, usage, credit_grants, audit_log RESTART IDENTITY CASCADE');
      });

      describe('subjects', () => {
        it('creates a subject and reads it back', async () => {
          const created = await db.transaction((tx) =>
            createSubject(tx, { id: 'acme', plan: 'pro', overrides: { limits: { hour: 500 } }, metadata: { crm: 'A-17' } }),
          );
          expect(created).toEqual({
            id: 'acme',
            plan: 'pro',
            overrides: { limits: { hour: 500 } },
            metadata: { crm: 'A-17' },
            suspendedAt: null,
            createdAt: expect.any(Date),
            updatedAt: expect.any(Date),
          });
          expect(await getSubject(db, 'acme')).toEqual(created);
          expect(await getSubject(db, 'nobody')).toBeUndefined();
        });

        it('defaults to no overrides and empty metadata', async () => {
          const created = await db.transaction((tx) => createSubject(tx, { id: 'plain', plan: 'free' }));
          expect(created).toMatchObject({ overrides: null, metadata: {} });
        });

        it('leaves an existing subject alone and answers undefined on a second create', async () => {
          await db.transaction((tx) => createSubject(tx, { id: 'acme', plan: 'pro' }));
          expect(await db.transaction((tx) => createSubject(tx, { id: 'acme', plan: 'free' }))).toBeUndefined();
          expect((await getSubject(db, 'acme'))?.plan).toBe('pro');
        });

        it('lists subjects in byte order of id, page by page', async () => {
          const ids = ['b', 'a', 'B', 'a-2', 'Z', 'ä', 'c'];
          await db.transaction(async (tx) => {
            for (const id of ids) await createSubject(tx, { id, plan: 'free' });
          });
          const seen: string[][] = [];
          let cursor: string | undefined;
          do {
            const page = await listSubjects(db, { limit: 2, ...(cursor === undefined ? {} : { cursor }) });
            seen.push(page.items.map((s) => s.id));
            cursor = page.nextCursor;
          } while (cursor !== undefined);
          expect(seen).toEqual([['B', 'Z'], ['a', 'a-2'], ['b', 'c'], ['ä']]);
        });

        it('ends on a full last page without a cursor, and clamps the page size to 1–1000', async () => {
          await db.transaction(async (tx) => {
            for (const id of ['a', 'b']) await createSubject(tx, { id, plan: 'free' });
          });
          expect(await listSubjects(db, { limit: 2 })).toMatchObject({ nextCursor: undefined });
          expect((await listSubjects(db, { limit: 0 })).items.map((s) => s.id)).toEqual(['a']);
          expect((await listSubjects(db, { limit: 5_000 })).items).toHaveLength(2);
          expect(await listSubjects(db, { limit: 10, cursor: 'b' })).toEqual({ items: [], nextCursor: undefined });
        });

        it('sets the plan and the overrides, and removes the overrides', async () => {
          const created = (await db.transaction((tx) => createSubject(tx, { id: 'acme', plan: 'free' })))!;
          const upgraded = await db.transaction((tx) => setSubjectPlan(tx, 'acme', 'pro'));
          expect(upgraded).toMatchObject({ plan: 'pro', overrides: null });
          expect(upgraded!.updatedAt.getTime()).toBeGreaterThanOrEqual(created.updatedAt.getTime());
          const overrides = { limits: { hour: 10 }, quotas: { search: { month: 5 } } };
          expect(await db.transaction((tx) => setSubjectOverrides(tx, 'acme', overrides))).toMatchObject({ plan: 'pro', overrides });
          expect(await db.transaction((tx) => setSubjectOverrides(tx, 'acme', null))).toMatchObject({ overrides: null });
          expect(await db.transaction((tx) => setSubjectPlan(tx, 'nobody', 'pro'))).toBeUndefined();
          expect(await db.transaction((tx) => setSubjectOverrides(tx, 'nobody', {}))).toBeUndefined();
        });

        it('suspends (keeping the first instant when suspended again) and reactivates', async () => {
          await db.transaction((tx) => createSubject(tx, { id: 'acme', plan: 'free' }));
          const suspended = await db.transaction((tx) => suspendSubject(tx, 'acme'));
          expect(suspended?.suspendedAt).toBeInstanceOf(Date);
          const again = await db.transaction((tx) => suspendSubject(tx, 'acme'));
          expect(again?.suspendedAt).toEqual(suspended?.suspendedAt);
          expect(await db.transaction((tx) => reactivateSubject(tx, 'acme'))).toMatchObject({ suspendedAt: null });
          expect(await db.transaction((tx) => suspendSubject(tx, 'nobody'))).toBeUndefined();
          expect(await db.transaction((tx) => reactivateSubject(tx, 'nobody'))).toBeUndefined();
        });

        it('deletes a subject with its keys, keeping its usage, credits and audit rows', async () => {
          await db.transaction(async (tx) => {
            await createSubject(tx, { id: 'acme', plan: 'free' });
            await insertApiKey(tx, { id: 'k1', subjectId: 'acme', displayPrefix: 'qg_AAAA', keyHash: sha256('k1') });
            await insertCreditGrant(tx, { subjectId: 'acme', metric: 'search', amount: 5, grantedAt: T0 });
            await appendAudit(tx, { at: T0, actor: 'test', action: 'subject.create', target: 'subject:acme', subjectId: 'acme' });
          });
          await upsertUsage(db, [{ subjectId: 'acme', counterId: 'w:hour', periodStart: new Date(HOUR), count: 3 }]);
          expect(await db.transaction((tx) => deleteSubject(tx, 'acme'))).toBe(true);
          expect(await db.transaction((tx) => deleteSubject(tx, 'acme'))).toBe(false);
          expect(await getSubject(db, 'acme')).toBeUndefined();
          expect(await getApiKey(db, 'k1')).toBeUndefined();
          expect(await findApiKeyByHash(db, sha256('k1'))).toBeUndefined();
          expect(await readUsage(db, 'acme', [{ counterId: 'w:hour', periodStart: new Date(HOUR) }])).toHaveLength(1);
          expect(await sumCredits(db, 'acme', 'search', T0)).toBe(5);
          expect((await listAudit(db, { subjectId: 'acme', limit: 10 })).items).toHaveLength(1);
        });
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

      describe('usage ledger', () => {
        const hour = { counterId: 'w:hour', periodStart: new Date(HOUR) };
        const day = { counterId: 'w:day', periodStart: new Date(DAY) };
        const searches = { counterId: 'q:search:month', periodStart: new Date(MONTH) };

        it('stores absolute counts and reads back the requested periods only', async () => {
          await upsertUsage(db, [
            { subjectId: 'acme', ...hour, count: 3 },
            { subjectId: 'acme', ...day, count: 40 },
            { subjectId: 'acme', counterId: 'w:hour', periodStart: new Date(HOUR - 3_600_000), count: 9 },
            { subjectId: 'other', ...hour, count: 1 },
          ]);
          expect(await readUsage(db, 'acme', [hour, day, searches])).toEqual([
            { subjectId: 'acme', ...day, count: 40 },
            { subjectId: 'acme', ...hour, count: 3 },
          ]);
          expect(await readUsage(db, 'nobody', [hour])).toEqual([]);
          expect(await readUsage(db, 'acme', [])).toEqual([]);
        });

        it('never lowers a count: a retried, duplicated or late flush changes nothing', async () => {
          await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 10 }]);
          await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 10 }]);
          await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 7 }]);
          expect(await readUsage(db, 'acme', [hour])).toEqual([{ subjectId: 'acme', ...hour, count: 10 }]);
          await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 12 }]);
          expect(await readUsage(db, 'acme', [hour])).toEqual([{ subjectId: 'acme', ...hour, count: 12 }]);
        });

        it('writes a batch in one statement, merging repeats to their highest count', async () => {
          const before = db.queryCount;
          await upsertUsage(db, [
            { subjectId: 'acme', ...hour, count: 5 },
            { subjectId: 'acme', ...searches, count: 2 ** 40 },
            { subjectId: 'acme', ...hour, count: 8 },
            { subjectId: 'acme', ...hour, count: 6 },
          ]);
          expect(db.queryCount - before).toBe(1);
          expect(await readUsage(db, 'acme', [hour, searches])).toEqual([
            { subjectId: 'acme', ...searches, count: 2 ** 40 },
            { subjectId: 'acme', ...hour, count: 8 },
          ]);
          await upsertUsage(db, []);
          expect(db.queryCount - before).toBe(2);
        });

        it('refuses a negative or fractional count before writing', async () => {
          await expect(upsertUsage(db, [{ subjectId: 'acme', ...hour, count: -1 }])).rejects.toThrow(RangeError);
          await expect(upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 1.5 }])).rejects.toThrow(RangeError);
          expect(await readUsage(db, 'acme', [hour])).toEqual([]);
        });
      });

      describe('credit grants', () => {
        it('stores grants and sums those in force for one metric', async () => {
          const grant = await db.transaction((tx) =>
            insertCreditGrant(tx, { subjectId: 'acme', metric: 'search', amount: 3_000_000_000, grantedAt: T0, reason: 'prepaid' }),
          );
          expect(grant).toEqual({ id: 1, subjectId: 'acme', metric: 'search', amount: 3_000_000_000, grantedAt: T0, expiresAt: null, reason: 'prepaid' });
          const expiresAt = new Date(T0.getTime() + 1_000);
          await db.transaction(async (tx) => {
            await insertCreditGrant(tx, { subjectId: 'acme', metric: 'search', amount: 50, grantedAt: T0, expiresAt });
            await insertCreditGrant(tx, { subjectId: 'acme', metric: 'upload', amount: 7, grantedAt: T0 });
            await insertCreditGrant(tx, { subjectId: 'acme', metric: 'search', amount: 9, grantedAt: expiresAt });
          });
          expect(await sumCredits(db, 'acme', 'search', T0)).toBe(3_000_000_050);
          expect(await sumCredits(db, 'acme', 'search', expiresAt)).toBe(3_000_000_009);
          expect(await sumCredits(db, 'acme', 'upload', T0)).toBe(7);
          expect(await sumCredits(db, 'nobody', 'search', T0)).toBe(0);
          expect((await listCreditGrants(db, 'acme')).map((g) => g.amount)).toEqual([3_000_000_000, 50, 7, 9]);
        });

        it('refuses an amount that is not a positive integer', async () => {
          for (const amount of [0, -5, 2.5]) {
            await expect(
              db.transaction((tx) => insertCreditGrant(tx, { subjectId: 'acme', metric: 'search', amount, grantedAt: T0 })),
            ).rejects.toThrow(RangeError);
          }
        });
      });

      describe('audit log', () => {
        const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

        it('commits an audit row with its change, and neither when the transaction fails', async () => {
          await db.transaction(async (tx) => {
            await createSubject(tx, { id: 'acme', plan: 'free' });
            await appendAudit(tx, { at: T0, actor: 'admin-api', action: 'subject.create', target: 'subject:acme', subjectId: 'acme', details: { plan: 'free' } });
          });
          await expect(
            db.transaction(async (tx) => {
              await setSubjectPlan(tx, 'acme', 'pro');
              await appendAudit(tx, { at: T0, actor: 'admin-api', action: 'subject.set_plan', target: 'subject:acme', subjectId: 'acme' });
              await tx.query('SELECT 1/0');
            }),
          ).rejects.toThrow();
          const page = await listAudit(db, { limit: 10 });
          expect(page).toEqual({
            items: [
              { id: 1, at: T0, actor: 'admin-api', action: 'subject.create', target: 'subject:acme', subjectId: 'acme', details: { plan: 'free' } },
            ],
            nextCursor: undefined,
          });
          expect((await getSubject(db, 'acme'))?.plan).toBe('free');
        });

        it('filters by target, by subject and by time range, newest first', async () => {
          await db.transaction(async (tx) => {
            await appendAudit(tx, { at: at(0), actor: 'a', action: 'subject.create', target: 'subject:acme', subjectId: 'acme' });
            await appendAudit(tx, { at: at(1), actor: 'a', action: 'key.create', target: 'key:k1', subjectId: 'acme' });
            await appendAudit(tx, { at: at(2), actor: 'a', action: 'subject.create', target: 'subject:other', subjectId: 'other' });
            await appendAudit(tx, { at: at(3), actor: 'a', action: 'key.revoke', target: 'key:k1', subjectId: 'acme' });
            await appendAudit(tx, { at: at(4), actor: 'a', action: 'config.reload', target: 'config' });
          });
          const actions = async (options: Parameters<typeof listAudit>[1]) => (await listAudit(db, options)).items.map((e) => e.action);
          expect(await actions({ limit: 10 })).toEqual(['config.reload', 'key.revoke', 'subject.create', 'key.create', 'subject.create']);
          expect(await actions({ limit: 10, target: 'key:k1' })).toEqual(['key.revoke', 'key.create']);
          expect(await actions({ limit: 10, subjectId: 'acme' })).toEqual(['key.revoke', 'key.create', 'subject.create']);
          expect(await actions({ limit: 10, subjectId: 'acme', from: at(1), to: at(3) })).toEqual(['key.create']);
          expect(await actions({ limit: 10, from: at(3) })).toEqual(['config.reload', 'key.revoke']);
          expect(await actions({ limit: 10, to: at(0) })).toEqual([]);
          expect(await actions({ limit: 10, target: 'key:k1', subjectId: 'other' })).toEqual([]);
        });

        it('pages through entries that share an instant without skipping or repeating one', async () => {
          await db.transaction(async (tx) => {
            for (let i = 0; i < 7; i++) {
              await appendAudit(tx, { at: i < 5 ? at(0) : at(1), actor: 'a', action: `a${i}`, target: 'subject:acme', subjectId: 'acme' });
            }
          });
          const pages: string[][] = [];
          let cursor: string | undefined;
          do {
            const page = await listAudit(db, { target: 'subject:acme', limit: 3, ...(cursor === undefined ? {} : { cursor }) });
            pages.push(page.items.map((e) => e.action));
            cursor = page.nextCursor;
          } while (cursor !== undefined);
          expect(pages).toEqual([['a6', 'a5', 'a4'], ['a3', 'a2', 'a1'], ['a0']]);
        });

        it('refuses a cursor it did not hand out', async () => {
          for (const cursor of ['', 'abc', '12', '1.2.3', `${'9'.repeat(20)}.1`]) {
            await expect(listAudit(db, { limit: 10, cursor })).rejects.toThrow(InvalidCursorError);
          }
        });
      });
    });
  });
}
