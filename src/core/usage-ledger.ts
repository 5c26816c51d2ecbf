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

/** A ledger entry with the subject's version it was written at. */
export interface VersionedUsageEntry extends UsageEntry {
  /** See DirtyUsage.version; 0 for entries older than versions. */
  readonly version: number;
}

/** What a store holds for a subject that the ledger has yet to receive. */
export interface DirtyUsage {
  readonly subject: string;
  readonly entries: readonly UsageEntry[];
  /**
   * The subject's version at the latest change of these entries: a
   * non-negative integer that grows with every change of the subject's
   * counters (a charge, a refund, a reset) and never goes back, also across
   * a store's loss (it is seeded from the ledger's highest). The ledger keeps
   * the entry of the newest version, so a lower count can replace a higher
   * one, and a stale write changes nothing. It also identifies this reading
   * for clearDirty's compare-and-delete.
   */
  readonly version: number;
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

/**
 * Where absolute counts go: a versioned upsert (a newer version replaces an
 * entry, an equal one only raises it, an older one changes nothing), so a
 * repeated or late write changes nothing.
 */
export interface UsageSink {
  writeUsage(batch: readonly DirtyUsage[]): Promise<void>;
}

/** Reads back what the ledger holds, to restore a store that lost its counters. */
export interface UsageHistory {
  /** Every ledger entry of `subject` whose period starts at or after `sinceMs`, with its version, and its lifetime entries (period start 0). */
  readUsageSince(subject: string, sinceMs: number): Promise<VersionedUsageEntry[]>;
  /**
   * Every credit grant of `subject` (with `used` 0: what was spent of each
   * is its `g:<id>` lifetime entry). Absent: the ledger keeps no credits.
   */
  readCreditGrants?(subject: string): Promise<CreditGrantState[]>;
}

/** The highest version among `entries`, 0 for none: a store seeds the subject's version above it. */
export function highestVersion(entries: readonly VersionedUsageEntry[]): number {
  let highest = 0;
  for (const entry of entries) if (entry.version > highest) highest = entry.version;
  return highest;
}

/** The window (`hour`, `month`) a counterId counts: its last `:` segment. */
export function windowOfCounterId(counterId: string): string {
  return counterId.slice(counterId.lastIndexOf(':') + 1);
}
