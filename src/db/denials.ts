import type { Queryable } from './database.js';

/**
 * Denials per subject and minute (the `denials` table, migration 004): what
 * the gateways counted in memory, added up across instances. A write adds to
 * the stored count (several instances count the same subject and minute);
 * a flush that is retried after a failure that did commit would count twice,
 * so the flusher retries only what it knows was not written.
 */

/** Denials of one subject in one minute. */
export interface DenialCount {
  readonly subjectId: string;
  /** Start of the minute (UTC, a whole minute). */
  readonly minute: Date;
  /** Denials counted; a positive integer. */
  readonly count: number;
}

const ADD = `
INSERT INTO denials (subject_id, minute, count)
SELECT subject_id, minute, count
FROM unnest($1::text[], $2::timestamptz[], $3::bigint[]) AS b (subject_id, minute, count)
ON CONFLICT (subject_id, minute) DO UPDATE SET count = denials.count + EXCLUDED.count`;

/** Adds the counts to the stored ones, in one statement; entries repeating a subject and minute are summed first. */
export async function addDenials(q: Queryable, counts: readonly DenialCount[]): Promise<void> {
  const merged = new Map<string, DenialCount>();
  for (const entry of counts) {
    if (!Number.isSafeInteger(entry.count) || entry.count < 1) {
      throw new RangeError(`denial count of ${entry.subjectId} must be a positive integer, got ${entry.count}`);
    }
    const key = `${entry.minute.getTime()} ${entry.subjectId}`;
    const seen = merged.get(key);
    merged.set(key, seen === undefined ? entry : { ...entry, count: seen.count + entry.count });
  }
  if (merged.size === 0) return;
  const rows = [...merged.values()];
  await q.query(ADD, [rows.map((row) => row.subjectId), rows.map((row) => row.minute.toISOString()), rows.map((row) => row.count)]);
}

/** Deletes the rows of minutes before `before` (the flusher keeps a day). */
export async function pruneDenials(q: Queryable, before: Date): Promise<void> {
  await q.query('DELETE FROM denials WHERE minute < $1', [before.toISOString()]);
}

/** One subject's denials over a span of minutes. */
export interface DenialTotal {
  readonly subjectId: string;
  readonly denials: number;
  /** The latest minute with a denial in the span. */
  readonly lastMinute: Date;
}

/** Where a page of totals starts: after this total and subject (keyset). */
export interface DenialTotalsAfter {
  readonly denials: number;
  readonly subjectId: string;
}

const TOTALS = `
SELECT subject_id, sum(count)::bigint AS denials, max(minute) AS last_minute
FROM denials
WHERE minute >= $1 AND ($2::text IS NULL OR subject_id = $2)
GROUP BY subject_id
HAVING $3::bigint IS NULL OR sum(count) < $3 OR (sum(count) = $3 AND subject_id > $4)
ORDER BY denials DESC, subject_id
LIMIT $5`;

/**
 * Each subject's denials in minutes starting at or after `since` (of
 * `subjectId` only, when given), most denied first (ties by subject id, in
 * byte order), `limit` a page, after `after`. One statement.
 */
export async function readDenialTotals(
  q: Queryable,
  options: { readonly since: Date; readonly subjectId?: string | undefined; readonly after?: DenialTotalsAfter | undefined; readonly limit: number },
): Promise<DenialTotal[]> {
  const rows = await q.query<{ subject_id: string; denials: number; last_minute: Date }>(TOTALS, [
    options.since.toISOString(),
    options.subjectId ?? null,
    options.after?.denials ?? null,
    options.after?.subjectId ?? null,
    options.limit,
  ]);
  return rows.map((row) => ({ subjectId: row.subject_id, denials: Number(row.denials), lastMinute: row.last_minute }));
}
