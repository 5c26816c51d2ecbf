import { beforeEach, describe, expect, it } from 'vitest';
import { appendAudit, InvalidCursorError, listAudit } from '../../src/db/audit-log.js';
import type { Database } from '../../src/db/database.js';
import { createSubject, getSubject, setSubjectPlan } from '../../src/db/subjects.js';
import { T0 } from './db-fixtures.js';

/** The audit log. Part of the database contract; `use()` gives the suite's migrated, emptied database. */
export function auditLogContract(use: () => Database): void {
  let db: Database;
  beforeEach(() => {
    db = use();
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
}
