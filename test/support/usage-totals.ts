import type { Queryable } from '../../src/db/database.js';
import { readUsageSince } from '../../src/db/usage.js';

/**
 * A subject's usage ledger as counterId → count, summed over every period: a
 * test on a real clock (Redis TIME) may straddle an hour, and a sum still
 * counts each admitted unit once.
 */
export async function usageTotalsOf(db: Queryable, subject: string): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  for (const row of await readUsageSince(db, subject, new Date(0))) totals[row.counterId] = (totals[row.counterId] ?? 0) + row.count;
  return totals;
}
