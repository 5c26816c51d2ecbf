import type { Queryable } from './database.js';

/**
 * Reads of the usage ledger across subjects, for the operator views: who
 * is near a limit in the current periods, and who used the most of one
 * counter in one period. Served by `usage_period_counter_idx` (migration
 * 004): both read the rows of given periods, whatever the subject.
 *
 * A ledger row's subject is a counting id: the subject itself, or for a
 * plan with `limit_by: key` one of its keys, `<subject>/key:<keyId>`
 * (see src/core/counting-id.ts).
 */

/** A plan's configured limit of one counter (`w:hour`, `q:search:month`). */
export interface PlanCounterLimit {
  readonly plan: string;
  readonly counterId: string;
  readonly limit: number;
}

/** The current period of each window (`hour` → its start; `lifetime` → the epoch). */
export interface CurrentPeriod {
  readonly window: string;
  readonly start: Date;
}

/** One counter of a counting id at or over the threshold. */
export interface CounterNearLimit {
  readonly counterId: string;
  readonly used: number;
  readonly limit: number;
}

/** A counting id with its counters at or over the threshold, most used (relative to its limit) first. */
export interface NearLimitRow {
  readonly countingId: string;
  readonly subjectId: string;
  readonly plan: string;
  /** The largest used / limit of its counters, in millionths (the page's sort key). */
  readonly topPpm: number;
  readonly counters: readonly CounterNearLimit[];
}

/** Where a page of near-limit rows starts: after this sort key and counting id. */
export interface NearLimitAfter {
  readonly topPpm: number;
  readonly countingId: string;
}

// The window of a counter: `w:<window>`, `q:<metric>:<window>`. A stored
// override counts when it is a positive integer (as parseLimitOverrides
// reads it); else the plan's limit; a counter neither limits (a meter) is
// not near anything.
const NEAR_LIMITS = `
WITH periods AS (
  SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS p (win, period_start)
), plan_limits AS (
  SELECT * FROM unnest($3::text[], $4::text[], $5::bigint[]) AS l (plan, counter_id, lim)
), ledger AS (
  SELECT u.subject_id AS counting_id, u.counter_id, u.count,
         split_part(u.counter_id, ':', 1) AS kind, split_part(u.counter_id, ':', 2) AS part2, split_part(u.counter_id, ':', 3) AS part3,
         coalesce(substring(u.subject_id from '^(.*)/key:[A-Za-z0-9_.-]+$'), u.subject_id) AS subject_id
  FROM usage u
  JOIN periods p ON u.period_start = p.period_start
   AND p.win = CASE split_part(u.counter_id, ':', 1) WHEN 'w' THEN split_part(u.counter_id, ':', 2) ELSE split_part(u.counter_id, ':', 3) END
  WHERE (u.counter_id LIKE 'w:%' OR u.counter_id LIKE 'q:%') AND u.count > 0
), limited AS (
  SELECT l.counting_id, s.id AS subject_id, s.plan, l.counter_id, l.count AS used,
         coalesce(
           CASE WHEN l.kind = 'w' THEN
             CASE WHEN jsonb_typeof(s.overrides -> 'limits' -> l.part2) = 'number' AND (s.overrides -> 'limits' ->> l.part2) ~ '^[1-9][0-9]{0,14}$'
                  THEN (s.overrides -> 'limits' ->> l.part2)::bigint END
           ELSE
             CASE WHEN jsonb_typeof(s.overrides -> 'quotas' -> l.part2 -> l.part3) = 'number' AND (s.overrides -> 'quotas' -> l.part2 ->> l.part3) ~ '^[1-9][0-9]{0,14}$'
                  THEN (s.overrides -> 'quotas' -> l.part2 ->> l.part3)::bigint END
           END,
           pl.lim) AS lim
  FROM ledger l
  JOIN subjects s ON s.id = l.subject_id
  LEFT JOIN plan_limits pl ON pl.plan = s.plan AND pl.counter_id = l.counter_id
  WHERE $6::text IS NULL OR s.plan = $6
), over AS (
  SELECT counting_id, subject_id, plan, counter_id, used, lim, (used * 1000000) / lim AS ppm
  FROM limited
  WHERE lim IS NOT NULL AND used * 100 >= $7::bigint * lim
), grouped AS (
  SELECT counting_id COLLATE "C" AS counting_id, subject_id, plan, max(ppm) AS top_ppm,
         jsonb_agg(jsonb_build_object('counter_id', counter_id, 'used', used, 'limit', lim) ORDER BY ppm DESC, counter_id COLLATE "C") AS counters
  FROM over
  GROUP BY counting_id, subject_id, plan
)
SELECT counting_id, subject_id, plan, top_ppm, counters
FROM grouped
WHERE $8::bigint IS NULL OR top_ppm < $8 OR (top_ppm = $8 AND counting_id > $9)
ORDER BY top_ppm DESC, counting_id
LIMIT $10`;

/**
 * The counting ids of subjects the database knows (on `plan` only, when
 * given) with some counter of a current period at or over `thresholdPercent`
 * of its limit (the subject's override, else its plan's), highest first,
 * `limit` a page after `after`. Ledger rows of subjects the database does
 * not know (JWT callers, keys from gateway.yaml, `ip:` callers) have no
 * stored plan and are not read. One statement.
 */
export async function readNearLimits(
  q: Queryable,
  options: {
    readonly periods: readonly CurrentPeriod[];
    readonly limits: readonly PlanCounterLimit[];
    readonly plan?: string | undefined;
    readonly thresholdPercent: number;
    readonly after?: NearLimitAfter | undefined;
    readonly limit: number;
  },
): Promise<NearLimitRow[]> {
  const rows = await q.query<{ counting_id: string; subject_id: string; plan: string; top_ppm: number; counters: Array<{ counter_id: string; used: number; limit: number }> }>(
    NEAR_LIMITS,
    [
      options.periods.map((period) => period.window),
      options.periods.map((period) => period.start.toISOString()),
      options.limits.map((limit) => limit.plan),
      options.limits.map((limit) => limit.counterId),
      options.limits.map((limit) => limit.limit),
      options.plan ?? null,
      options.thresholdPercent,
      options.after?.topPpm ?? null,
      options.after?.countingId ?? null,
      options.limit,
    ],
  );
  return rows.map((row) => ({
    countingId: row.counting_id,
    subjectId: row.subject_id,
    plan: row.plan,
    topPpm: Number(row.top_ppm),
    counters: row.counters.map((counter) => ({ counterId: counter.counter_id, used: Number(counter.used), limit: Number(counter.limit) })),
  }));
}

/** One counting id's count of a counter in a period. */
export interface ConsumerRow {
  readonly countingId: string;
  readonly used: number;
}

/** Where a page of consumers starts: after this count and counting id. */
export interface ConsumerAfter {
  readonly used: number;
  readonly countingId: string;
}

const TOP_CONSUMERS = `
SELECT subject_id COLLATE "C" AS counting_id, count
FROM usage
WHERE counter_id = $1 AND period_start = $2 AND count > 0
  AND ($3::bigint IS NULL OR count < $3 OR (count = $3 AND subject_id COLLATE "C" > $4))
ORDER BY count DESC, counting_id
LIMIT $5`;

/**
 * Every counting id's count of `counterId` in the period starting at
 * `periodStart`, largest first (ties by counting id, in byte order),
 * `limit` a page after `after`. One statement.
 */
export async function readTopConsumers(
  q: Queryable,
  options: { readonly counterId: string; readonly periodStart: Date; readonly after?: ConsumerAfter | undefined; readonly limit: number },
): Promise<ConsumerRow[]> {
  const rows = await q.query<{ counting_id: string; count: number }>(TOP_CONSUMERS, [
    options.counterId,
    options.periodStart.toISOString(),
    options.after?.used ?? null,
    options.after?.countingId ?? null,
    options.limit,
  ]);
  return rows.map((row) => ({ countingId: row.counting_id, used: Number(row.count) }));
}
