import type { Clock } from '../core/clock.js';
import type { DirtyUsage, DirtyUsageSource, UsageSink } from '../core/usage-ledger.js';
import type { GatewayMetrics } from '../metrics/metrics.js';

export interface LedgerFlusherOptions {
  readonly source: DirtyUsageSource;
  readonly sink: UsageSink;
  readonly clock: Clock;
  /** Pause between two flushes, in ms (`usage.flush_interval_ms`). */
  readonly intervalMs: number;
  /**
   * How often a flush also looks for leftover marks in the store (subjects
   * charged by an instance that died before flushing), in ms. The first
   * flush always does.
   */
  readonly leftoverSweepIntervalMs: number;
  readonly metrics?: Pick<GatewayMetrics, 'ledgerFlushDuration' | 'ledgerFlushFailures' | 'ledgerFlushLag'>;
  /** Told of a failed scheduled flush (the marks stay, the next flush retries). */
  readonly onError?: (error: unknown) => void;
}

/** What one flush did. */
export interface FlushResult {
  /** Subjects whose counts were written to the ledger. */
  readonly subjects: number;
  /** Ledger entries written (counter × period). */
  readonly entries: number;
}

/** Subjects read and written per batch: one upsert statement each. */
const BATCH_SIZE = 500;

/**
 * Copies the absolute counts of dirty subjects from the limit store into the
 * usage ledger: read each subject's mark, upsert the counts at the mark's
 * version (versioned, so a retried, duplicated or late flush changes
 * nothing), then clear the mark only if nothing changed meanwhile. Flushes never overlap. A subject whose flush
 * failed is retried by the next one; its mark stays in the store, so even a
 * crash of this instance loses at most what was charged since the last
 * flush that reached the store (Redis), or one interval (memory).
 */
export class LedgerFlusher {
  private readonly options: LedgerFlusherOptions;
  /** Subjects to try again: a failed write, or a mark that changed while flushing. */
  private readonly retry = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private lastLeftoverSweepMs = Number.NEGATIVE_INFINITY;
  private lastCompleteFlushMs: number;

  constructor(options: LedgerFlusherOptions) {
    this.options = options;
    this.lastCompleteFlushMs = options.clock.now();
  }

  /** Flushes at once (with a leftover sweep), then every `intervalMs`. */
  start(): void {
    if (this.timer !== undefined) return;
    const tick = () => {
      this.flush().catch((error: unknown) => this.options.onError?.(error));
    };
    tick();
    this.timer = setInterval(tick, this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer, then runs a last flush (SIGTERM flushes before exit); rejects if that flush fails. */
  async stop(): Promise<FlushResult> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    return this.flush();
  }

  /**
   * One flush, after any running one. `includeLeftovers` forces a sweep of
   * the store for leftover marks; by default it runs every
   * `leftoverSweepIntervalMs`.
   */
  flush(options: { includeLeftovers?: boolean } = {}): Promise<FlushResult> {
    const next = this.queue.then(() => this.flushNow(options.includeLeftovers));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async flushNow(forceLeftovers = false): Promise<FlushResult> {
    const { source, sink, clock, metrics } = this.options;
    const startedMs = performance.now();
    const nowMs = clock.now();
    const includeLeftovers = forceLeftovers || nowMs - this.lastLeftoverSweepMs >= this.options.leftoverSweepIntervalMs;
    const subjects = new Set(this.retry);
    let entries = 0;
    try {
      for (const subject of await source.dirtySubjects(includeLeftovers)) subjects.add(subject);
      if (includeLeftovers) this.lastLeftoverSweepMs = nowMs;
      this.retry.clear();
      const all = [...subjects];
      for (let i = 0; i < all.length; i += BATCH_SIZE) {
        const batch = all.slice(i, i + BATCH_SIZE);
        try {
          entries += await this.flushBatch(batch);
        } catch (error) {
          for (const subject of all.slice(i)) this.retry.add(subject);
          throw error;
        }
      }
    } catch (error) {
      for (const subject of subjects) this.retry.add(subject);
      metrics?.ledgerFlushFailures.inc();
      metrics?.ledgerFlushLag.set((clock.now() - this.lastCompleteFlushMs) / 1000);
      throw error;
    } finally {
      metrics?.ledgerFlushDuration.observe((performance.now() - startedMs) / 1000);
    }
    this.lastCompleteFlushMs = nowMs;
    metrics?.ledgerFlushLag.set(0);
    return { subjects: subjects.size, entries };
  }

  /** Reads, writes and clears one batch of subjects; resolves to the entries written. */
  private async flushBatch(subjects: readonly string[]): Promise<number> {
    const { source, sink } = this.options;
    const read = await Promise.all(subjects.map((subject) => source.readDirty(subject)));
    const dirty = read.filter((entry): entry is DirtyUsage => entry !== undefined && entry.entries.length > 0);
    if (dirty.length === 0) return 0;
    await sink.writeUsage(dirty);
    const cleared = await Promise.all(dirty.map((entry) => source.clearDirty(entry)));
    // Charged again since the read: its new counts go out with the next flush.
    dirty.forEach((entry, i) => {
      if (!cleared[i]) this.retry.add(entry.subject);
    });
    return dirty.reduce((sum, entry) => sum + entry.entries.length, 0);
  }
}
