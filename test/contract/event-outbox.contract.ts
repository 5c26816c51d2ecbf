import { describe, expect, it } from 'vitest';
import type { EventOutbox, QuotaEvent } from '../../src/core/quota-events.js';

/** An outbox under test, and how a producer (the limiter's script, the memory limiter) writes to it. */
export interface OutboxUnderTest {
  readonly outbox: EventOutbox;
  /** Writes events as the limiter does (XADD in the contract's format; MemoryEventOutbox.push). */
  produce(events: readonly QuotaEvent[]): Promise<void>;
}

/** `count` threshold events of subjects `s0`…`s<subjects-1>` (round robin). */
export function thresholdEvents(count: number, subjects = 1, tag = 'e'): QuotaEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${tag}_${i}`,
    type: 'quota.threshold' as const,
    timestampMs: 1_780_000_000_000 + i,
    data: { subject: `s${i % subjects}`, policy: 'hour', threshold: 80, used: 80 + i, limit: 100 },
  }));
}

/**
 * The EventOutbox contract (src/core/quota-events.ts), for every
 * implementation: one consumer at a time per entry, takeover after
 * `reclaimAfterMs`, acknowledged entries gone, order kept per stream.
 * `open()` gives an empty outbox of its own for each test.
 */
export function eventOutboxContract(name: string, open: () => Promise<OutboxUnderTest>, options: { subjects: number } = { subjects: 1 }): void {
  describe(`EventOutbox contract: ${name}`, () => {
    it('hands each produced event to one consumer, in order, and never again once acknowledged', async () => {
      const { outbox, produce } = await open();
      try {
        const events = thresholdEvents(5, 1);
        await produce(events);
        expect(await outbox.depth()).toBe(5);
        const claimed = await outbox.claim('c1', 10, 60_000);
        expect(claimed.map((entry) => entry.event)).toEqual(events);
        expect(claimed.map((entry) => entry.claims)).toEqual([1, 1, 1, 1, 1]);
        expect(await outbox.claim('c2', 10, 60_000)).toEqual([]);
        await outbox.acknowledge(claimed.slice(0, 3).map((entry) => entry.entryId));
        expect(await outbox.depth()).toBe(2);
        // Taken over (idle for at least 0 ms): only the two not acknowledged, claimed twice now.
        const reclaimed = await outbox.claim('c2', 10, 0);
        expect(reclaimed.map((entry) => [entry.event.id, entry.claims])).toEqual([
          ['e_3', 2],
          ['e_4', 2],
        ]);
        await outbox.acknowledge(reclaimed.map((entry) => entry.entryId));
        expect(await outbox.claim('c1', 10, 0)).toEqual([]);
        expect(await outbox.depth()).toBe(0);
      } finally {
        await outbox.close();
      }
    });

    it('gives reclaimed entries first, then new ones, up to count', async () => {
      const { outbox, produce } = await open();
      try {
        await produce(thresholdEvents(2, 1, 'old'));
        await outbox.claim('c1', 2, 60_000);
        await produce(thresholdEvents(3, 1, 'new'));
        const claimed = await outbox.claim('c2', 4, 0);
        expect(claimed.map((entry) => entry.event.id)).toEqual(['old_0', 'old_1', 'new_0', 'new_1']);
      } finally {
        await outbox.close();
      }
    });

    it('hands each of 60 events to exactly one of three consumers claiming at once', async () => {
      const { outbox, produce } = await open();
      try {
        const events = thresholdEvents(60, options.subjects);
        await produce(events);
        const seen: string[] = [];
        await Promise.all(
          ['c1', 'c2', 'c3'].map(async (consumer) => {
            for (let batch = await outbox.claim(consumer, 7, 60_000); batch.length > 0; batch = await outbox.claim(consumer, 7, 60_000)) {
              seen.push(...batch.map((entry) => entry.event.id));
              await outbox.acknowledge(batch.map((entry) => entry.entryId));
            }
          }),
        );
        expect(seen.length).toBe(60);
        expect(new Set(seen)).toEqual(new Set(events.map((event) => event.id)));
        expect(await outbox.depth()).toBe(0);
      } finally {
        await outbox.close();
      }
    });

    it('takes events appended outside the limiter (append) like produced ones', async () => {
      const { outbox } = await open();
      try {
        const events = thresholdEvents(3, options.subjects, 'spike');
        await outbox.append(events);
        const claimed = await outbox.claim('c1', 10, 60_000);
        expect(claimed.map((entry) => entry.event).sort((a, b) => a.timestampMs - b.timestampMs)).toEqual(events);
      } finally {
        await outbox.close();
      }
    });
  });
}
