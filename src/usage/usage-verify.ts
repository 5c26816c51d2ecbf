import { periodOf } from '../core/calendar.js';
import { windowOfCounterId } from '../core/usage-ledger.js';
import { isWindowName } from '../core/windows.js';
import type { Queryable } from '../db/database.js';
import { readAllUsageSince } from '../db/usage.js';

/**
 * The reconciliation check of `quotagate usage verify`: after a flush, the
 * usage ledger's count of every counter in its current period should equal
 * what the limit store counts. A drift that stays across runs means the
 * ledger and the store disagree (a lost flush, a write to one of them by
 * hand); one that goes away was a charge between the flush and the reads.
 */

/** One counter of one subject in its current period whose ledger and store counts differ. */
export interface UsageDrift {
  readonly subject: string;
  readonly counterId: string;
  /** Start of the period, epoch ms (UTC). */
  readonly periodStartMs: number;
  /** What the ledger holds, in cost units. */
  readonly ledger: number;
  /** What the store counts, in cost units. */
  readonly store: number;
}

export interface UsageVerification {
  /** Subjects compared. */
  readonly subjects: number;
  /** Counters (subject × counter, current periods) compared. */
  readonly counters: number;
  /** Those that differ, ordered by subject, counter and period. */
  readonly drifts: readonly UsageDrift[];
}

export interface VerifyUsageOptions {
  /** The ledger (primary). */
  readonly db: Queryable;
  /** Copies what the store has not flushed yet into the ledger, first (all of it: leftovers too). */
  readonly flush: () => Promise<unknown>;
  /** What the store counts for `subject`'s counters in the given periods, in order (0 for none). */
  readonly storeCounts: (subject: string, periods: ReadonlyArray<{ counterId: string; periodStartMs: number }>) => Promise<number[]>;
  /** The time whose current periods are compared, epoch ms. */
  readonly nowMs: number;
  /** Only this subject; default every subject with ledger rows in current periods. */
  readonly subject?: string | undefined;
}

/**
 * Flushes, then compares each ledger row of a current period with the
 * store: one query for the ledger, one store call per subject.
 */
export async function verifyUsage(options: VerifyUsageOptions): Promise<UsageVerification> {
  await options.flush();
  const { nowMs } = options;
  const rows = await readAllUsageSince(options.db, new Date(periodOf('month', nowMs).startMs), options.subject);
  const bySubject = new Map<string, Array<{ counterId: string; periodStartMs: number; count: number }>>();
  for (const row of rows) {
    const window = windowOfCounterId(row.counterId);
    if (!isWindowName(window) || periodOf(window, nowMs).startMs !== row.periodStart.getTime()) continue;
    let counters = bySubject.get(row.subjectId);
    if (counters === undefined) bySubject.set(row.subjectId, (counters = []));
    counters.push({ counterId: row.counterId, periodStartMs: row.periodStart.getTime(), count: row.count });
  }
  const drifts: UsageDrift[] = [];
  let counted = 0;
  for (const [subject, counters] of bySubject) {
    const store = await options.storeCounts(subject, counters);
    counters.forEach((counter, i) => {
      counted++;
      if (store[i] !== counter.count) {
        drifts.push({ subject, counterId: counter.counterId, periodStartMs: counter.periodStartMs, ledger: counter.count, store: store[i]! });
      }
    });
  }
  return { subjects: bySubject.size, counters: counted, drifts };
}
