import type { Queryable } from './database.js';

/**
 * The usage ledger: absolute counts per subject, counter and calendar period,
 * copied from the limit store by the flusher and read back to rehydrate an
 * empty store. Every row carries the subject's version of the change it
 * copies (the store's per-subject counter that only grows, see
 * lua/consume.lua): a write replaces a row only with a newer version, or, at
 * an equal version, a higher count. So a refund, a lower settled cost or a
 * reset reaches the ledger (a newer version with a lower count), and a flush
 * that is retried, duplicated or arrives late (an older or equal version)
 * changes nothing.
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

/** A count with the subject's version of the change it copies. */
export interface VersionedUsageCount extends UsageCount {
  /**
   * The store's version of the subject when the count was read (a
   * non-negative integer); 0 for rows older than versions, and for writes
   * that carry none.
   */
  readonly version: number;
}

// One statement for the whole batch. DO UPDATE only for a newer version, or
// an equal version with a higher count; the WHERE is the whole rule, and
// spares a row version when nothing would change.
const UPSERT = `
INSERT INTO usage (subject_id, counter_id, period_start, count, version, updated_at)
SELECT subject_id, counter_id, period_start, count, version, now()
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[])
  AS b (subject_id, counter_id, period_start, count, version)
ON CONFLICT (subject_id, counter_id, period_start) DO UPDATE
SET count = EXCLUDED.count, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
WHERE EXCLUDED.version > usage.version OR (EXCLUDED.version = usage.version AND EXCLUDED.count > usage.count)`;
const SELECT_PERIODS = `
SELECT u.subject_id, u.counter_id, u.period_start, u.count
FROM usage u
JOIN unnest($2::text[], $3::timestamptz[]) AS p (counter_id, period_start)
  ON u.counter_id = p.counter_id AND u.period_start = p.period_start
WHERE u.subject_id = $1
ORDER BY u.counter_id, u.period_start`;

// A reset at the store's version $4: every period gets a 0 row at that
// version (a missing row too, so that a flush read before the reset cannot
// insert its older count afterwards), unless a newer version is there
// already (a flush of a charge after the reset). Row locks: a concurrent
// flush's upsert of these rows waits for the reset's transaction, then
// compares versions with the 0.
const RESET_PERIODS_AT_VERSION = `
INSERT INTO usage (subject_id, counter_id, period_start, count, version, updated_at)
SELECT $1::text, counter_id, period_start, 0, $4::bigint, now()
FROM unnest($2::text[], $3::timestamptz[]) AS p (counter_id, period_start)
ON CONFLICT (subject_id, counter_id, period_start) DO UPDATE
SET count = 0, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
WHERE usage.version < EXCLUDED.version`;

// A reset without a store version (the store keeps none, or lost the
// subject): existing rows go to 0, one version up, so an equal-version
// write of their old count cannot raise them again.
const RESET_PERIODS = `
UPDATE usage u SET count = 0, version = u.version + 1, updated_at = now()
FROM unnest($2::text[], $3::timestamptz[]) AS p (counter_id, period_start)
WHERE u.subject_id = $1 AND u.counter_id = p.counter_id AND u.period_start = p.period_start AND u.count <> 0`;

const SELECT_SINCE = `
SELECT subject_id, counter_id, period_start, count, version
FROM usage
WHERE subject_id = $1 AND (period_start >= $2 OR period_start = 'epoch')
ORDER BY counter_id, period_start`;

/**
 * Stores the counts, in one statement: a new row; or over a stored one, a
 * newer version (whatever its count, so a count can go down), or the same
 * version with a higher count. An older version changes nothing. A count
 * without a version is at version 0. Entries repeating one subject, counter
 * and period are merged first by the same rule.
 */
export async function upsertUsage(q: Queryable, counts: ReadonlyArray<UsageCount & { readonly version?: number }>): Promise<void> {
  const merged = new Map<string, VersionedUsageCount>();
  for (const given of counts) {
    const entry = { ...given, version: given.version ?? 0 };
    if (!Number.isSafeInteger(entry.count) || entry.count < 0) {
      throw new RangeError(`usage count of ${entry.subjectId} ${entry.counterId} must be a non-negative integer, got ${entry.count}`);
    }
    if (!Number.isSafeInteger(entry.version) || entry.version < 0) {
      throw new RangeError(`usage version of ${entry.subjectId} ${entry.counterId} must be a non-negative integer, got ${entry.version}`);
    }
    const key = JSON.stringify([entry.subjectId, entry.counterId, entry.periodStart.getTime()]);
    const seen = merged.get(key);
    if (seen === undefined || replaces(entry, seen)) merged.set(key, entry);
  }
  if (merged.size === 0) return;
  const rows = [...merged.values()];
  await q.query(UPSERT, [
    rows.map((row) => row.subjectId),
    rows.map((row) => row.counterId),
    rows.map((row) => row.periodStart.toISOString()),
    rows.map((row) => row.count),
    rows.map((row) => row.version),
  ]);
}

/** The ledger's rule (UPSERT's WHERE): `next` replaces `stored` if newer, or as new and higher. */
function replaces(next: VersionedUsageCount, stored: VersionedUsageCount): boolean {
  return next.version > stored.version || (next.version === stored.version && next.count > stored.count);
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

/** A `usage` row as the queries below select it. */
interface VersionedUsageRow {
  subject_id: string;
  counter_id: string;
  period_start: Date;
  count: number;
  version: number;
}

function versionedCountOf(row: VersionedUsageRow): VersionedUsageCount {
  return { subjectId: row.subject_id, counterId: row.counter_id, periodStart: row.period_start, count: row.count, version: row.version };
}

/**
 * Every stored count of one subject whose period starts at or after `since`
 * (the start of the current month, to rehydrate every current period at
 * once), and its lifetime counts (period start at the epoch), with the
 * version each was written at: the highest of them seeds the store's
 * version of the subject. One statement, served by the primary key.
 */
export async function readUsageSince(q: Queryable, subjectId: string, since: Date): Promise<VersionedUsageCount[]> {
  const rows = await q.query<VersionedUsageRow>(
    SELECT_SINCE,
    [subjectId, since.toISOString()],
  );
  return rows.map(versionedCountOf);
}

const SELECT_ALL_SINCE = `
SELECT subject_id, counter_id, period_start, count, version
FROM usage
WHERE period_start >= $1 AND ($2::text IS NULL OR subject_id = $2)
ORDER BY subject_id, counter_id, period_start`;

/**
 * Every stored count whose period starts at or after `since`, of every
 * subject or of `subjectId` only, ordered by subject, counter and period
 * (`quotagate usage verify`; one statement, a scan of the periods since).
 */
export async function readAllUsageSince(q: Queryable, since: Date, subjectId?: string): Promise<VersionedUsageCount[]> {
  const rows = await q.query<VersionedUsageRow>(
    SELECT_ALL_SINCE,
    [since.toISOString(), subjectId ?? null],
  );
  return rows.map(versionedCountOf);
}

/**
 * Sets the subject's stored counts of the given periods to 0 (an admin reset
 * of the store's counters), in one statement.
 *
 * With `version` (the store's version of the subject taken by its reset,
 * after its counters were deleted): every period gets a 0 row at that
 * version, unless a newer one is there (a flush of a charge after the
 * reset); a flush read before the reset (an older version) can then neither
 * raise nor re-create the row. Without (the store keeps no versions, or had
 * lost the subject): existing rows go to 0 one version up; a period with no
 * row gets none. Run it in the reset's transaction, after the store's reset
 * (see admin/usage.ts resetUsageAudited).
 */
export async function resetUsage(q: Queryable, subjectId: string, periods: readonly UsagePeriod[], version?: number): Promise<void> {
  if (periods.length === 0) return;
  const params: unknown[] = [subjectId, periods.map((period) => period.counterId), periods.map((period) => period.periodStart.toISOString())];
  if (version === undefined) await q.query(RESET_PERIODS, params);
  else await q.query(RESET_PERIODS_AT_VERSION, [...params, version]);
}

/** One stored count of a subject's history: a counter in one period. */
export interface UsageHistoryRow {
  readonly counterId: string;
  readonly periodStart: Date;
  readonly count: number;
}

/** One page of a subject's history: the rows of up to `limit` periods, and whether more periods follow. */
export interface UsageHistoryPage {
  readonly rows: readonly UsageHistoryRow[];
  /** Start of the last period on this page when more follow (the next page starts after it). */
  readonly lastPeriodStart: Date | undefined;
}

// The periods of the page first (keyset on period_start), then every row of
// them: a period's counters (its quotas, their overage) never split across
// two pages. `suffix` is `:<window>`: the counters of that granularity.
const SELECT_HISTORY_PERIODS = `
SELECT DISTINCT period_start FROM usage
WHERE subject_id = $1 AND period_start >= $2 AND period_start < $3 AND right(counter_id, length($4)) = $4
ORDER BY period_start
LIMIT $5`;
const SELECT_HISTORY_ROWS = `
SELECT counter_id, period_start, count FROM usage
WHERE subject_id = $1 AND period_start = ANY($2::timestamptz[]) AND right(counter_id, length($3)) = $3
ORDER BY period_start, counter_id`;

/**
 * The subject's counts of the counters of one granularity (`hour`, `day`,
 * `month`: counter ids ending in `:<window>`) in periods starting in
 * [`from`, `to`), oldest first, `limit` periods a page. Two statements,
 * served by the primary key (subject_id leads it).
 */
export async function readUsageHistory(
  q: Queryable,
  subjectId: string,
  window: string,
  range: { readonly from: Date; readonly to: Date },
  limit: number,
): Promise<UsageHistoryPage> {
  const suffix = `:${window}`;
  const periods = await q.query<{ period_start: Date }>(SELECT_HISTORY_PERIODS, [
    subjectId,
    range.from.toISOString(),
    range.to.toISOString(),
    suffix,
    limit + 1,
  ]);
  const page = periods.slice(0, limit).map((row) => row.period_start);
  if (page.length === 0) return { rows: [], lastPeriodStart: undefined };
  const rows = await q.query<{ counter_id: string; period_start: Date; count: number }>(SELECT_HISTORY_ROWS, [
    subjectId,
    page.map((start) => start.toISOString()),
    suffix,
  ]);
  return {
    rows: rows.map((row) => ({ counterId: row.counter_id, periodStart: row.period_start, count: Number(row.count) })),
    lastPeriodStart: periods.length > limit ? page.at(-1) : undefined,
  };
}
