import { periodOf } from '../core/calendar.js';
import { type CreditGrantState, grantCounterIdOf, grantInForce } from '../core/credits.js';
import type { UsageEntry } from '../core/usage-ledger.js';
import { windowOfCounterId } from '../core/usage-ledger.js';
import { isOverageCounterId } from '../core/policy.js';
import { isWindowName } from '../core/windows.js';

/**
 * Which ledger rows restore a store at `nowMs`: rehydration reads a subject's
 * rows since the start of the current month (the longest calendar window),
 * and its lifetime rows (UsageHistory.readUsageSince returns those too), and
 * keeps those of each counter's current period.
 */
export function hydrationSinceMs(nowMs: number): number {
  return periodOf('month', nowMs).startMs;
}

/**
 * The rows of `entries` that count a current period at `nowMs`, with that
 * period's end (epoch ms; +Infinity for a lifetime counter). Overage rows are
 * left out: they are worked out from their quota's counter, not restored.
 */
export function currentPeriodEntries(entries: readonly UsageEntry[], nowMs: number): Array<UsageEntry & { endMs: number }> {
  const current: Array<UsageEntry & { endMs: number }> = [];
  for (const entry of entries) {
    if (isOverageCounterId(entry.counterId)) continue;
    const window = windowOfCounterId(entry.counterId);
    if (!isWindowName(window)) continue;
    const period = periodOf(window, nowMs);
    if (period.startMs === entry.periodStartMs) current.push({ ...entry, endMs: period.endMs });
  }
  return current;
}

/**
 * The grants of `grants` in force at `nowMs`, each with what the ledger
 * counted spent of it (its `g:<id>` lifetime entry in `entries`); spent-out
 * and expired grants are left out (nothing to restore).
 */
export function grantsToRestore(
  grants: readonly CreditGrantState[],
  entries: readonly UsageEntry[],
  nowMs: number,
): CreditGrantState[] {
  const spent = new Map<string, number>();
  for (const entry of entries) if (entry.periodStartMs === 0 && entry.counterId.startsWith('g:')) spent.set(entry.counterId, entry.count);
  const restored: CreditGrantState[] = [];
  for (const grant of grants) {
    const used = Math.max(grant.used, spent.get(grantCounterIdOf(grant.id)) ?? 0);
    if (grantInForce(grant, nowMs) && used < grant.amount) restored.push({ ...grant, used });
  }
  return restored;
}

/** Runs one hydration per key at a time: concurrent callers for one key share it. */
export class SingleFlight {
  private readonly running = new Map<string, Promise<void>>();

  run(key: string, work: () => Promise<void>): Promise<void> {
    const existing = this.running.get(key);
    if (existing !== undefined) return existing;
    const started = work().finally(() => this.running.delete(key));
    this.running.set(key, started);
    return started;
  }
}
