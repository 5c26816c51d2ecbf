import type { EventOutbox, OutboxEntry, QuotaEvent } from '../core/quota-events.js';

/**
 * The memory store's outbox: a bounded in-process queue (one gateway
 * instance, nothing survives a restart, as with the memory store's
 * counters). When full, the oldest unclaimed event is dropped and counted in
 * `dropped`, so a receiver that is down costs memory up to the bound and
 * nothing more.
 */
export class MemoryEventOutbox implements EventOutbox {
  private readonly entries = new Map<string, { event: QuotaEvent; claims: number; claimedBy?: string; claimedAtMs: number }>();
  private nextEntry = 1;
  /** Events dropped because the queue was full. */
  dropped = 0;

  /**
   * @param capacity most events held at once
   * @param nowMs the clock claims are timed by (epoch ms)
   */
  constructor(
    private readonly capacity: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Synchronous append, for the memory limiter's decision (the same as append()). */
  push(event: QuotaEvent): void {
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
      this.dropped++;
    }
    this.entries.set(String(this.nextEntry++), { event, claims: 0, claimedAtMs: 0 });
  }

  async append(events: readonly QuotaEvent[]): Promise<void> {
    for (const event of events) this.push(event);
  }

  async claim(consumer: string, count: number, reclaimAfterMs: number): Promise<OutboxEntry[]> {
    const now = this.nowMs();
    const reclaimed: OutboxEntry[] = [];
    const fresh: OutboxEntry[] = [];
    for (const [entryId, entry] of this.entries) {
      if (reclaimed.length + fresh.length >= count) break;
      const isNew = entry.claimedBy === undefined;
      if (!isNew && now - entry.claimedAtMs < reclaimAfterMs) continue;
      entry.claims++;
      entry.claimedBy = consumer;
      entry.claimedAtMs = now;
      (isNew ? fresh : reclaimed).push({ entryId, event: entry.event, claims: entry.claims });
    }
    return [...reclaimed, ...fresh];
  }

  async acknowledge(entryIds: readonly string[]): Promise<void> {
    for (const id of entryIds) this.entries.delete(id);
  }

  async depth(): Promise<number> {
    return this.entries.size;
  }

  async close(): Promise<void> {}
}
