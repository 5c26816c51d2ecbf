import type { Queryable } from './database.js';

/**
 * The usage ledger: absolute counts per subject, counter and calendar period,
 * copied from the limit store by the flusher and read back to rehydrate an
 * empty store. The flusher's writes only raise a count, so a flush that is
 * retried, duplicated or arrives late changes nothing; the one write that
 * lowers a count is an admin reset (resetUsage), which sets it to 0.
 */

/** A counter of one subject in one calendar period. */
export interface UsagePeriod {
  /** `w:hour`, `q:search:month`: the policy's counterId. */
  readonly counterId: string;
  /** Start of the calendar period (UTC). */
  readonly periodStart: Date;
}

export interface UsageCount extends UsagePeriod {
  readonly subjectId: string;
  /** Units used in the period, in cost units; a non-negative integer. */
  readonly count: number;
}

// One statement for the whole batch. DO UPDATE only when the count grows:
// GREATEST keeps the rule visible, the WHERE spares a row version when it
// would not change.
const UPSERT = `
INSERT INTO usage (subject_id, counter_id, period_start, count, updated_at)
SELECT subject_id, counter_id, period_start, count, now()
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[]) AS b (subject_id, counter_id, period_start, count)
ON CONFLICT (subject_id, counter_id, period_start) DO UPDATE
SET count = GREATEST(usage.count, EXCLUDED.count), updated_at = EXCLUDED.updated_at
WHERE usage.count < EXCLUDED.count`;
const SELECT_PERIODS = `
SELECT u.subject_id, u.counter_id, u.period_start, u.count
FROM usage u
JOIN unnest($2::text[], $3::timestamptz[]) AS p (counter_id, period_start)
  ON u.counter_id = p.counter_id AND u.period_start = p.period_start
WHERE u.subject_id = $1
ORDER BY u.counter_id, u.period_start`;

// Row locks on the periods reset: a concurrent flush's upsert of them waits
// for the reset's transaction and then applies GREATEST to the 0.
const RESET_PERIODS = `
UPDATE usage u SET count = 0, updated_at = now()
FROM unnest($2::text[], $3::timestamptz[]) AS p (counter_id, period_start)
WHERE u.subject_id = $1 AND u.counter_id = p.counter_id AND u.period_start = p.period_start AND u.count <> 0`;

const SELECT_SINCE = `
SELECT subject_id, counter_id, period_start, count
FROM usage
WHERE subject_id = $1 AND (period_start >= $2 OR period_start = 'epoch')
ORDER BY counter_id, period_start`;

/**
 * Stores the counts, in one statement: a new row, or a higher count than the
 * stored one; a lower or equal count changes nothing. Entries repeating one
 * subject, counter and period are merged to the highest count first.
 */
export async function upsertUsage(q: Queryable, counts: readonly UsageCount[]): Promise<void> {
  const merged = new Map<string, UsageCount>();
  for (const entry of counts) {
    if (!Number.isSafeInteger(entry.count) || entry.count < 0) {
      throw new RangeError(`usage count of ${entry.subjectId} ${entry.counterId} must be a non-negative integer, got ${entry.count}`);
    }
    const key = JSON.stringify([entry.subjectId, entry.counterId, entry.periodStart.getTime()]);
    const seen = merged.get(key);
    if (seen === undefined || seen.count < entry.count) merged.set(key, entry);
  }
  if (merged.size === 0) return;
  const rows = [...merged.values()];
  await q.query(UPSERT, [
    rows.map((row) => row.subjectId),
    rows.map((row) => row.counterId),
    rows.map((row) => row.periodStart.toISOString()),
    rows.map((row) => row.count),
  ]);
}

/**
 * The stored counts of one subject for the given periods (its current ones,
 * to rehydrate the store); a period with no row is absent from the result.
 */
export async function readUsage(q: Queryable, subjectId: string, periods: readonly UsagePeriod[]): Promise<UsageCount[]> {
  if (periods.length === 0) return [];
  const rows = await q.query<{ subject_id: string; counter_id: string; period_start: Date; count: number }>(SELECT_PERIODS, [
    subjectId,
    periods.map((period) => period.counterId),
    periods.map((period) => period.periodStart.toISOString()),
  ]);
  return rows.map((row) => ({ subjectId: row.subject_id, counterId: row.counter_id, periodStart: row.period_start, count: row.count }));
}

/**
 * Every stored count of one subject whose period starts at or after `since`
 * (the start of the current month, to rehydrate every current period at
 * once), and its lifetime counts (period start at the epoch). One statement,
 * served by the primary key.
 */
export async function readUsageSince(q: Queryable, subjectId: string, since: Date): Promise<UsageCount[]> {
  const rows = await q.query<{ subject_id: string; counter_id: string; period_start: Date; count: number }>(SELECT_SINCE, [
    subjectId,
    since.toISOString(),
  ]);
  return rows.map((row) => ({ subjectId: row.subject_id, counterId: row.counter_id, periodStart: row.period_start, count: row.count }));
}

/**
 * Sets the subject's stored counts of the given periods to 0 (an admin reset
 * of the store's counters): one statement; a period with no row gets none.
 * Run it in the reset's transaction, before the store's counters are
 * deleted: a flush of those periods that comes after it waits for the
 * transaction on the row locks, then raises the 0 to what the store holds.
 */
export async function resetUsage(q: Queryable, subjectId: string, periods: readonly UsagePeriod[]): Promise<void> {
  if (periods.length === 0) return;
  await q.query(RESET_PERIODS, [
    subjectId,
    periods.map((period) => period.counterId),
    periods.map((period) => period.periodStart.toISOString()),
  ]);
}
