import { beforeEach, describe, expect, it } from 'vitest';
import { insertCreditGrant, listCreditGrants, sumCredits } from '../../src/db/credit-grants.js';
import type { Database } from '../../src/db/database.js';
import { readUsage, readUsageSince, resetUsage, upsertUsage } from '../../src/db/usage.js';
import { DAY, HOUR, MONTH, T0 } from './db-fixtures.js';

/** The usage ledger and credit grants. Part of the database contract; `use()` gives the suite's migrated, emptied database. */
export function ledgerContract(use: () => Database): void {
  let db: Database;
  beforeEach(() => {
    db = use();
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

    it('at one version never lowers a count: a retried, duplicated or late flush changes nothing', async () => {
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 10 }]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 10 }]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 7 }]);
      expect(await readUsage(db, 'acme', [hour])).toEqual([{ subjectId: 'acme', ...hour, count: 10 }]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 12 }]);
      expect(await readUsage(db, 'acme', [hour])).toEqual([{ subjectId: 'acme', ...hour, count: 12 }]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 15, version: 4 }]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 9, version: 4 }]);
      expect(await readUsageSince(db, 'acme', new Date(HOUR))).toEqual([{ subjectId: 'acme', ...hour, count: 15, version: 4 }]);
    });

    it('a newer version replaces the count, also with a lower one (a refund after a flush)', async () => {
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 5, version: 3 }]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 3, version: 7 }]);
      expect(await readUsageSince(db, 'acme', new Date(HOUR))).toEqual([{ subjectId: 'acme', ...hour, count: 3, version: 7 }]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 0, version: 8 }]);
      expect(await readUsage(db, 'acme', [hour])).toEqual([{ subjectId: 'acme', ...hour, count: 0 }]);
    });

    it('ignores an older version whatever its count (a stale flush)', async () => {
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 3, version: 7 }]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 5, version: 6 }]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 1, version: 2 }]);
      expect(await readUsageSince(db, 'acme', new Date(HOUR))).toEqual([{ subjectId: 'acme', ...hour, count: 3, version: 7 }]);
    });

    it('merges repeats in one batch by the same rule: the newest version wins, then the higher count', async () => {
      await upsertUsage(db, [
        { subjectId: 'acme', ...hour, count: 9, version: 2 },
        { subjectId: 'acme', ...hour, count: 4, version: 5 },
        { subjectId: 'acme', ...hour, count: 6, version: 5 },
        { subjectId: 'acme', ...hour, count: 8, version: 3 },
      ]);
      expect(await readUsageSince(db, 'acme', new Date(HOUR))).toEqual([{ subjectId: 'acme', ...hour, count: 6, version: 5 }]);
    });

    it('refuses a negative or fractional version before writing', async () => {
      await expect(upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 1, version: -1 }])).rejects.toThrow(RangeError);
      await expect(upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 1, version: 0.5 }])).rejects.toThrow(RangeError);
      expect(await readUsage(db, 'acme', [hour])).toEqual([]);
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

    it('a reset without a store version sets the existing rows of the given periods to 0, one version up', async () => {
      const lastHour = { counterId: 'w:hour', periodStart: new Date(HOUR - 3_600_000) };
      await upsertUsage(db, [
        { subjectId: 'acme', ...hour, count: 10 },
        { subjectId: 'acme', ...lastHour, count: 9 },
        { subjectId: 'acme', ...searches, count: 4 },
        { subjectId: 'other', ...hour, count: 5 },
      ]);
      await db.transaction((tx) => resetUsage(tx, 'acme', [hour, searches, day]));
      expect(await readUsage(db, 'acme', [hour, lastHour, searches, day])).toEqual([
        { subjectId: 'acme', ...searches, count: 0 },
        { subjectId: 'acme', ...lastHour, count: 9 },
        { subjectId: 'acme', ...hour, count: 0 },
      ]);
      expect(await readUsage(db, 'other', [hour])).toEqual([{ subjectId: 'other', ...hour, count: 5 }]);
      // The old count at the old version cannot come back; a later flush (a newer version) raises the 0.
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 10 }]);
      expect(await readUsage(db, 'acme', [hour])).toEqual([{ subjectId: 'acme', ...hour, count: 0 }]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 2, version: 2 }]);
      expect(await readUsage(db, 'acme', [hour])).toEqual([{ subjectId: 'acme', ...hour, count: 2 }]);
    });

    it('a reset at a store version writes 0 rows at it, missing ones too, unless a newer version is there', async () => {
      await upsertUsage(db, [
        { subjectId: 'acme', ...hour, count: 10, version: 4 },
        { subjectId: 'acme', ...day, count: 30, version: 9 },
      ]);
      await db.transaction((tx) => resetUsage(tx, 'acme', [hour, day, searches], 6));
      expect(await readUsageSince(db, 'acme', new Date(MONTH))).toEqual([
        { subjectId: 'acme', ...searches, count: 0, version: 6 },
        { subjectId: 'acme', ...day, count: 30, version: 9 },
        { subjectId: 'acme', ...hour, count: 0, version: 6 },
      ]);
      // A flush read before the reset (older version) neither raises nor re-creates a row; one after it counts.
      await upsertUsage(db, [
        { subjectId: 'acme', ...hour, count: 12, version: 5 },
        { subjectId: 'acme', ...searches, count: 3, version: 5 },
      ]);
      await upsertUsage(db, [{ subjectId: 'acme', ...hour, count: 1, version: 7 }]);
      expect(await readUsage(db, 'acme', [hour, searches])).toEqual([
        { subjectId: 'acme', ...searches, count: 0 },
        { subjectId: 'acme', ...hour, count: 1 },
      ]);
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
}
