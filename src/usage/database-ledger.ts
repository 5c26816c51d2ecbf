import type { CreditGrantState } from '../core/credits.js';
import { listCreditGrants } from '../db/credit-grants.js';
import type { DirtyUsage, UsageEntry, UsageHistory, UsageSink } from '../core/usage-ledger.js';
import type { Queryable } from '../db/database.js';
import { readUsageSince, upsertUsage } from '../db/usage.js';

/**
 * The usage ledger in the database (db/usage.ts): the flusher's sink and the
 * limiters' history for rehydration, over the primary (PostgreSQL or PGlite).
 */
export class DatabaseUsageLedger implements UsageSink, UsageHistory {
  constructor(private readonly db: Queryable) {}

  /**
   * One monotonic upsert for the whole batch: a repeated or late write never
   * lowers a count. A count of 0 (a charge refunded before any flush) writes
   * no row: it could only add an empty one.
   */
  writeUsage(batch: readonly DirtyUsage[]): Promise<void> {
    return upsertUsage(
      this.db,
      batch.flatMap((dirty) =>
        dirty.entries.filter((entry) => entry.count > 0).map((entry) => ({
          subjectId: dirty.subject,
          counterId: entry.counterId,
          periodStart: new Date(entry.periodStartMs),
          count: entry.count,
        })),
      ),
    );
  }

  async readUsageSince(subject: string, sinceMs: number): Promise<UsageEntry[]> {
    const rows = await readUsageSince(this.db, subject, new Date(sinceMs));
    return rows.map((row) => ({ counterId: row.counterId, periodStartMs: row.periodStart.getTime(), count: row.count }));
  }

  async readCreditGrants(subject: string): Promise<CreditGrantState[]> {
    const grants = await listCreditGrants(this.db, subject);
    return grants.map((grant) => ({
      id: grant.id,
      metric: grant.metric,
      amount: grant.amount,
      expiresAtMs: grant.expiresAt?.getTime() ?? null,
      used: 0,
    }));
  }
}
