import { beforeEach, describe, expect, it } from 'vitest';
import { getApiKey, findApiKeyByHash, insertApiKey } from '../../src/db/api-keys.js';
import { appendAudit, listAudit } from '../../src/db/audit-log.js';
import { insertCreditGrant, sumCredits } from '../../src/db/credit-grants.js';
import type { Database } from '../../src/db/database.js';
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
import { HOUR, sha256, T0 } from './db-fixtures.js';

/** Subjects. Part of the database contract; `use()` gives the suite's migrated, emptied database. */
export function subjectsContract(use: () => Database): void {
  let db: Database;
  beforeEach(() => {
    db = use();
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
}
