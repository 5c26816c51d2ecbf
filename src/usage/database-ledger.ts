import type { CreditGrantState } from '../core/credits.js';
import { listCreditGrants } from '../db/credit-grants.js';
import type { DirtyUsage, UsageHistory, UsageSink, VersionedUsageEntry } from '../core/usage-ledger.js';
import type { Queryable } from '../db/database.js';
import { readUsageSince, upsertUsage } from '../db/usage.js';

/**
 * The usage ledger in the database (db/usage.ts): the flusher's sink and the
 * limiters' history for rehydration, over the primary (PostgreSQL or PGlite).
 */
export class DatabaseUsageLedger implements UsageSink, UsageHistory {
  constructor(private readonly db: Queryable) {}

  /**
   * One versioned upsert for the whole batch, each entry at its subject's
   * version: a newer version replaces a row (a 0 too: a refund or a reset
   * after a flush), a repeated or late write changes nothing.
   */
  writeUsage(batch: readonly DirtyUsage[]): Promise<void> {
    return upsertUsage(
      this.db,
      batch.flatMap((dirty) =>
        dirty.entries.map((entry) => ({
          subjectId: dirty.subject,
          counterId: entry.counterId,
          periodStart: new Date(entry.periodStartMs),
          count: entry.count,
          version: dirty.version,
        })),
      ),
    );
  }

  async readUsageSince(subject: string, sinceMs: number): Promise<VersionedUsageEntry[]> {
    const rows = await readUsageSince(this.db, subject, new Date(sinceMs));
    return rows.map((row) => ({ counterId: row.counterId, periodStartMs: row.periodStart.getTime(), count: row.count, version: row.version }));
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
