import type { CreditGrantState } from './credits.js';

/**
 * The roles between a limit store and the usage ledger (DESIGN.md section 3).
 * They live in core so that the stores (limiter/) and the flusher (usage/)
 * meet without importing each other; main.ts connects them.
 */

/** The absolute count of one counter of a subject in one calendar period. */
export interface UsageEntry {
  /** The policy's counterId: `w:hour`, `q:search:month`. */
  readonly counterId: string;
  /** Start of the calendar period, epoch ms (UTC). */
  readonly periodStartMs: number;
  /** Units used in the period; a non-negative integer. */
  readonly count: number;
}

/** What a store holds for a subject that the ledger has yet to receive. */
export interface DirtyUsage {
  readonly subject: string;
  readonly entries: readonly UsageEntry[];
  /** Opaque: identifies this reading for clearDirty's compare-and-delete. */
  readonly version: string;
}

/**
 * A limit store whose charges the ledger flusher copies. Marking a subject
 * dirty happens with the charge itself (atomically on Redis).
 */
export interface DirtyUsageSource {
  /**
   * Subjects charged by this instance since the last call (the set is
   * drained); with `includeLeftovers`, also every subject the store still
   * marks dirty, e.g. charged by an instance that died before flushing.
   */
  dirtySubjects(includeLeftovers: boolean): Promise<string[]>;
  /** What changed for `subject` since it was last cleared; undefined when nothing did. */
  readDirty(subject: string): Promise<DirtyUsage | undefined>;
  /** Clears the subject's mark if nothing was charged since `dirty` was read; true if cleared. */
  clearDirty(dirty: DirtyUsage): Promise<boolean>;
}

/** Where absolute counts go: a monotonic upsert, so a repeated write changes nothing. */
export interface UsageSink {
  writeUsage(batch: readonly DirtyUsage[]): Promise<void>;
}

/** Reads back what the ledger holds, to restore a store that lost its counters. */
export interface UsageHistory {
  /** Every ledger entry of `subject` whose period starts at or after `sinceMs`, and its lifetime entries (period start 0). */
  readUsageSince(subject: string, sinceMs: number): Promise<UsageEntry[]>;
  /**
   * Every credit grant of `subject` (with `used` 0: what was spent of each
   * is its `g:<id>` lifetime entry). Absent: the ledger keeps no credits.
   */
  readCreditGrants?(subject: string): Promise<CreditGrantState[]>;
}

/** The window (`hour`, `month`) a counterId counts: its last `:` segment. */
export function windowOfCounterId(counterId: string): string {
  return counterId.slice(counterId.lastIndexOf(':') + 1);
}
