import { describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import { quotaPolicy, windowPolicy, withThresholds } from '../../src/core/policy.js';
import { MemoryLimiter } from '../../src/limiter/memory-limiter.js';
import { limiterContract } from '../contract/limiter.contract.js';
import { quotaKindsContract } from '../contract/limiter-quota-kinds.contract.js';
import { eventsContract } from '../contract/limiter-events.contract.js';
import { MemoryEventOutbox } from '../../src/limiter/memory-event-outbox.js';
import type { QuotaEvent } from '../../src/core/quota-events.js';

limiterContract('MemoryLimiter', async (clock) => new MemoryLimiter({ clock, sweepIntervalMs: 0 }));
quotaKindsContract('MemoryLimiter', async (clock) => new MemoryLimiter({ clock, sweepIntervalMs: 0 }));
eventsContract('MemoryLimiter', async (clock) => {
  const outbox = new MemoryEventOutbox(10_000, () => clock.now());
  const seen: QuotaEvent[] = [];
  return {
    limiter: new MemoryLimiter({ clock, sweepIntervalMs: 0, events: outbox }),
    async eventsOf(subject) {
      for (const entry of await outbox.claim('contract', 10_000, Number.POSITIVE_INFINITY)) seen.push(entry.event);
      return seen.filter((event) => event.data['subject'] === subject);
    },
  };
});

describe('MemoryLimiter memory', () => {
  it('drops subjects once all their periods have ended, and only then', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 15, 10, 30));
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0 });
    await limiter.consume({ subject: 'minute-only', policies: [windowPolicy('minute', 5)], cost: 1 });
    await limiter.consume({ subject: 'with-day', policies: [windowPolicy('minute', 5), windowPolicy('day', 9)], cost: 1 });
    expect(limiter.subjectCount).toBe(2);

    clock.set(Date.UTC(2026, 5, 15, 10, 31));
    limiter.sweep();
    expect(limiter.subjectCount).toBe(1);

    // The day counter survived the sweep with its count.
    const again = await limiter.consume({
      subject: 'with-day',
      policies: [windowPolicy('minute', 5), windowPolicy('day', 9)],
      cost: 1,
    });
    expect(again.policies.map((p) => p.remaining)).toEqual([4, 7]);

    clock.set(Date.UTC(2026, 5, 16, 0, 0));
    limiter.sweep();
    expect(limiter.subjectCount).toBe(0);
    await limiter.close();
  });

  it('does not hold denied-only subjects', async () => {
    const limiter = new MemoryLimiter({ clock: new ManualClock(Date.UTC(2026, 0, 1)), sweepIntervalMs: 0 });
    await limiter.consume({ subject: 'too-big', policies: [windowPolicy('hour', 1)], cost: 2 });
    expect(limiter.subjectCount).toBe(0);
    await limiter.close();
  });

  it('holds a denied-only subject whose exhaustion was emitted until the period ends, then drops it', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 15));
    const outbox = new MemoryEventOutbox(100, () => clock.now());
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0, events: outbox });
    const policies = [withThresholds(quotaPolicy('search', 'month', 1), [80])];
    await limiter.consume({ subject: 'too-big', policies, cost: 2 });
    await limiter.consume({ subject: 'too-big', policies, cost: 2 });
    expect(await outbox.depth()).toBe(1);
    expect(limiter.subjectCount).toBe(1);
    clock.set(Date.UTC(2026, 1, 1));
    limiter.sweep();
    expect(limiter.subjectCount).toBe(0);
    // A new month: its first denial is emitted again.
    await limiter.consume({ subject: 'too-big', policies, cost: 2 });
    expect(await outbox.depth()).toBe(2);
    await limiter.close();
  });

  it('emits nothing without an outbox, thresholds or not', async () => {
    const limiter = new MemoryLimiter({ clock: new ManualClock(Date.UTC(2026, 0, 1)), sweepIntervalMs: 0 });
    const policies = [withThresholds(quotaPolicy('search', 'month', 1), [80])];
    await limiter.consume({ subject: 'quiet', policies, cost: 2 });
    expect(limiter.subjectCount).toBe(0);
    await limiter.close();
  });
});
