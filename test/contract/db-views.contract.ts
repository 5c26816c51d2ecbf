import { beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { addDenials, pruneDenials, readDenialTotals } from '../../src/db/denials.js';
import { createSubject } from '../../src/db/subjects.js';
import { upsertUsage } from '../../src/db/usage.js';
import { readNearLimits, readTopConsumers } from '../../src/db/usage-views.js';
import { DAY, HOUR, MONTH } from './db-fixtures.js';

/** The operator views' reads (near limits, top consumers) and the denials table. Part of the database contract. */
export function viewsContract(use: () => Database): void {
  let db: Database;
  beforeEach(() => {
    db = use();
  });

  const periods = [
    { window: 'hour', start: new Date(HOUR) },
    { window: 'day', start: new Date(DAY) },
    { window: 'month', start: new Date(MONTH) },
    { window: 'lifetime', start: new Date(0) },
  ];
  const limits = [
    { plan: 'small', counterId: 'w:hour', limit: 100 },
    { plan: 'small', counterId: 'q:search:month', limit: 10 },
    { plan: 'pro', counterId: 'w:hour', limit: 1000 },
  ];

  describe('near limits', () => {
    beforeEach(async () => {
      await db.transaction(async (tx) => {
        await createSubject(tx, { id: 'acme', plan: 'small' });
        await createSubject(tx, { id: 'beta', plan: 'small', overrides: { limits: { hour: 50 } } });
        await createSubject(tx, { id: 'gamma', plan: 'pro' });
        await createSubject(tx, { id: 'keyed', plan: 'small' });
      });
      await upsertUsage(db, [
        // acme: 90 of 100 an hour, 9 of 10 searches this month; an older hour at 100 does not count.
        { subjectId: 'acme', counterId: 'w:hour', periodStart: new Date(HOUR), count: 90 },
        { subjectId: 'acme', counterId: 'w:hour', periodStart: new Date(HOUR - 3_600_000), count: 100 },
        { subjectId: 'acme', counterId: 'q:search:month', periodStart: new Date(MONTH), count: 9 },
        // beta: 45 of its overridden 50 (of the plan's 100 it would be 45 %); a meter (w:day) limits nothing.
        { subjectId: 'beta', counterId: 'w:hour', periodStart: new Date(HOUR), count: 45 },
        { subjectId: 'beta', counterId: 'w:day', periodStart: new Date(DAY), count: 5000 },
        // gamma: 700 of 1000.
        { subjectId: 'gamma', counterId: 'w:hour', periodStart: new Date(HOUR), count: 700 },
        // keyed: one key at 100 %, the other at 10 %; an unknown subject's rows are not read.
        { subjectId: 'keyed/key:k_a', counterId: 'w:hour', periodStart: new Date(HOUR), count: 100 },
        { subjectId: 'keyed/key:k_b', counterId: 'w:hour', periodStart: new Date(HOUR), count: 10 },
        { subjectId: 'stranger', counterId: 'w:hour', periodStart: new Date(HOUR), count: 99_999 },
      ]);
    });

    it('lists the counting ids at or over the threshold, highest first, each with its counters over it', async () => {
      const rows = await readNearLimits(db, { periods, limits, thresholdPercent: 80, limit: 10 });
      expect(rows).toEqual([
        { countingId: 'keyed/key:k_a', subjectId: 'keyed', plan: 'small', topPpm: 1_000_000, counters: [{ counterId: 'w:hour', used: 100, limit: 100 }] },
        {
          countingId: 'acme',
          subjectId: 'acme',
          plan: 'small',
          topPpm: 900_000,
          counters: [
            { counterId: 'q:search:month', used: 9, limit: 10 },
            { counterId: 'w:hour', used: 90, limit: 100 },
          ],
        },
        { countingId: 'beta', subjectId: 'beta', plan: 'small', topPpm: 900_000, counters: [{ counterId: 'w:hour', used: 45, limit: 50 }] },
      ]);
    });

    it('filters by plan and threshold, and pages after a sort key', async () => {
      expect((await readNearLimits(db, { periods, limits, thresholdPercent: 70, plan: 'pro', limit: 10 })).map((r) => r.countingId)).toEqual(['gamma']);
      expect((await readNearLimits(db, { periods, limits, thresholdPercent: 95, limit: 10 })).map((r) => r.countingId)).toEqual(['keyed/key:k_a']);
      const first = await readNearLimits(db, { periods, limits, thresholdPercent: 80, limit: 2 });
      expect(first.map((r) => r.countingId)).toEqual(['keyed/key:k_a', 'acme']);
      const after = { topPpm: first[1]!.topPpm, countingId: first[1]!.countingId };
      expect((await readNearLimits(db, { periods, limits, thresholdPercent: 80, limit: 2, after })).map((r) => r.countingId)).toEqual(['beta']);
    });
  });

  describe('top consumers', () => {
    it('lists the counting ids of one counter and period by count, largest first, paged', async () => {
      await upsertUsage(db, [
        { subjectId: 'a', counterId: 'w:month', periodStart: new Date(MONTH), count: 5 },
        { subjectId: 'b', counterId: 'w:month', periodStart: new Date(MONTH), count: 50 },
        { subjectId: 'c', counterId: 'w:month', periodStart: new Date(MONTH), count: 5 },
        { subjectId: 'd', counterId: 'w:month', periodStart: new Date(MONTH), count: 0 },
        { subjectId: 'b', counterId: 'w:month', periodStart: new Date(MONTH - 30 * 86_400_000), count: 999 },
        { subjectId: 'e', counterId: 'q:search:month', periodStart: new Date(MONTH), count: 500 },
      ]);
      const all = await readTopConsumers(db, { counterId: 'w:month', periodStart: new Date(MONTH), limit: 10 });
      expect(all).toEqual([
        { countingId: 'b', used: 50 },
        { countingId: 'a', used: 5 },
        { countingId: 'c', used: 5 },
      ]);
      const next = await readTopConsumers(db, { counterId: 'w:month', periodStart: new Date(MONTH), limit: 10, after: { used: 5, countingId: 'a' } });
      expect(next).toEqual([{ countingId: 'c', used: 5 }]);
    });
  });

  describe('denials', () => {
    const minute = (m: number) => new Date(HOUR + m * 60_000);

    it('adds counts of one subject and minute from several writes, and sums a span per subject, most denied first', async () => {
      await addDenials(db, [
        { subjectId: 'acme', minute: minute(1), count: 2 },
        { subjectId: 'acme', minute: minute(1), count: 3 },
        { subjectId: 'beta', minute: minute(2), count: 4 },
      ]);
      await addDenials(db, [
        { subjectId: 'acme', minute: minute(2), count: 1 },
        { subjectId: 'beta', minute: minute(2), count: 2 },
        { subjectId: 'old', minute: minute(-90), count: 100 },
      ]);
      await addDenials(db, []);
      expect(await readDenialTotals(db, { since: minute(-59), limit: 10 })).toEqual([
        { subjectId: 'acme', denials: 6, lastMinute: minute(2) },
        { subjectId: 'beta', denials: 6, lastMinute: minute(2) },
      ]);
      expect(await readDenialTotals(db, { since: minute(-59), limit: 10, after: { denials: 6, subjectId: 'acme' } })).toEqual([
        { subjectId: 'beta', denials: 6, lastMinute: minute(2) },
      ]);
      expect(await readDenialTotals(db, { since: minute(-120), subjectId: 'old', limit: 10 })).toEqual([{ subjectId: 'old', denials: 100, lastMinute: minute(-90) }]);
      await pruneDenials(db, minute(-60));
      expect(await readDenialTotals(db, { since: minute(-120), subjectId: 'old', limit: 10 })).toEqual([]);
    });

    it('refuses a count that is not a positive integer', async () => {
      await expect(addDenials(db, [{ subjectId: 'acme', minute: minute(0), count: 0 }])).rejects.toThrow(RangeError);
    });
  });
}
