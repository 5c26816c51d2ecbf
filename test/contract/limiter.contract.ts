import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import type { Decision } from '../../src/core/decision.js';
import type { WindowLimit } from '../../src/core/windows.js';
import type { ConsumeRequest, Limiter } from '../../src/limiter/limiter.js';

/** Builds a fresh limiter on the given clock; the suite closes it. */
export type LimiterFactory = (clock: ManualClock) => Promise<Limiter>;

const MID_MONTH = Date.UTC(2026, 5, 15, 10, 30, 0); // 2026-06-15T10:30:00Z

function remainingOf(decision: Decision): Record<string, number> {
  return Object.fromEntries(decision.windows.map((w) => [w.name, w.remaining]));
}

/**
 * The Limiter contract. Every implementation runs this suite and must pass it
 * identically; see the doc comment on `Limiter`.
 */
export function limiterContract(name: string, makeLimiter: LimiterFactory): void {
  describe(`Limiter contract: ${name}`, () => {
    async function withLimiter(startMs: number, body: (limiter: Limiter, clock: ManualClock) => Promise<void>) {
      const clock = new ManualClock(startMs);
      const limiter = await makeLimiter(clock);
      try {
        await body(limiter, clock);
      } finally {
        await limiter.close();
      }
    }
    let subjectSeq = 0;
    const request = (windows: WindowLimit[], cost = 1, subject?: string): ConsumeRequest => ({
      subject: subject ?? `subject-${++subjectSeq}-${Math.random().toString(36).slice(2)}`,
      windows,
      cost,
    });

    it('admits exactly the limit, then denies', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const req = request([{ name: 'hour', limit: 3 }]);
        const outcomes: boolean[] = [];
        for (let i = 0; i < 5; i++) outcomes.push((await limiter.consume(req)).allowed);
        expect(outcomes).toEqual([true, true, true, false, false]);
      });
    });

    it('reports remaining after the charge and seconds to the period end', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const req = request([{ name: 'hour', limit: 10 }, { name: 'day', limit: 100 }]);
        const decision = await limiter.consume(req);
        expect(decision.allowed).toBe(true);
        expect(decision.windows).toEqual([
          { name: 'hour', limit: 10, remaining: 9, resetSeconds: 1800, periodSeconds: 3600 },
          { name: 'day', limit: 100, remaining: 99, resetSeconds: 13.5 * 3600, periodSeconds: 86_400 },
        ]);
      });
    });

    it('is all or nothing: a denial on one window charges no window', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = 'all-or-nothing';
        const windows: WindowLimit[] = [
          { name: 'hour', limit: 5 },
          { name: 'day', limit: 8 },
        ];
        const allowed: boolean[] = [];
        for (let i = 0; i < 7; i++) allowed.push((await limiter.consume(request(windows, 1, subject))).allowed);
        expect(allowed.filter(Boolean)).toHaveLength(5);
        // A probe with a window the hour cannot fit leaves the day as it was.
        const probe = await limiter.consume(request(windows, 1, subject));
        expect(probe.allowed).toBe(false);
        expect(remainingOf(probe)).toEqual({ hour: 0, day: 3 });
      });
    });

    it('denies a cost larger than what remains without charging anything', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = 'big-cost';
        const windows: WindowLimit[] = [{ name: 'minute', limit: 10 }, { name: 'hour', limit: 100 }];
        await limiter.consume(request(windows, 7, subject));
        const denied = await limiter.consume(request(windows, 4, subject));
        expect(denied.allowed).toBe(false);
        expect(remainingOf(denied)).toEqual({ minute: 3, hour: 93 });
        const fits = await limiter.consume(request(windows, 3, subject));
        expect(fits.allowed).toBe(true);
        expect(remainingOf(fits)).toEqual({ minute: 0, hour: 90 });
      });
    });

    it('names every violated window and retries after the latest of their resets', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = 'both-violated';
        const windows: WindowLimit[] = [{ name: 'minute', limit: 2 }, { name: 'hour', limit: 2 }];
        await limiter.consume(request(windows, 2, subject));
        const denied = await limiter.consume(request(windows, 1, subject));
        if (denied.allowed) throw new Error('expected a denial');
        expect(denied.reason).toBe('window');
        expect(denied.violated).toEqual(['minute', 'hour']);
        expect(denied.retryAfterSeconds).toBe(1800);
      });
    });

    it('starts a new period at the boundary, not a sliding window', async () => {
      await withLimiter(Date.UTC(2026, 5, 15, 10, 59, 59, 500), async (limiter, clock) => {
        const subject = 'boundary';
        const windows: WindowLimit[] = [{ name: 'hour', limit: 1 }];
        expect((await limiter.consume(request(windows, 1, subject))).allowed).toBe(true);
        const denied = await limiter.consume(request(windows, 1, subject));
        expect(denied.allowed).toBe(false);
        expect(denied.allowed ? 0 : denied.retryAfterSeconds).toBe(1);
        clock.set(Date.UTC(2026, 5, 15, 11, 0, 0, 0));
        const next = await limiter.consume(request(windows, 1, subject));
        expect(next.allowed).toBe(true);
        expect(next.windows[0]!.resetSeconds).toBe(3600);
      });
    });

    it('resets the month on the 1st at 00:00 UTC, whatever the month length', async () => {
      await withLimiter(Date.UTC(2028, 1, 29, 23, 59, 0), async (limiter, clock) => {
        const subject = 'leap-month';
        const windows: WindowLimit[] = [{ name: 'month', limit: 1 }];
        const first = await limiter.consume(request(windows, 1, subject));
        expect(first.windows[0]).toMatchObject({ periodSeconds: 29 * 86_400, resetSeconds: 60 });
        expect((await limiter.consume(request(windows, 1, subject))).allowed).toBe(false);
        clock.set(Date.UTC(2028, 2, 1, 0, 0, 0));
        const march = await limiter.consume(request(windows, 1, subject));
        expect(march.allowed).toBe(true);
        expect(march.windows[0]).toMatchObject({ periodSeconds: 31 * 86_400, resetSeconds: 31 * 86_400 });
      });
    });

    it('keeps subjects apart', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const windows: WindowLimit[] = [{ name: 'day', limit: 1 }];
        expect((await limiter.consume(request(windows, 1, 'alice'))).allowed).toBe(true);
        expect((await limiter.consume(request(windows, 1, 'bob'))).allowed).toBe(true);
        expect((await limiter.consume(request(windows, 1, 'alice'))).allowed).toBe(false);
      });
    });

    it('admits exactly the limit under concurrent requests', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const windows: WindowLimit[] = [{ name: 'hour', limit: 100 }, { name: 'day', limit: 1000 }];
        const decisions = await Promise.all(
          Array.from({ length: 250 }, () => limiter.consume(request(windows, 1, 'concurrent'))),
        );
        expect(decisions.filter((d) => d.allowed)).toHaveLength(100);
        const after = await limiter.consume(request(windows, 1, 'concurrent'));
        expect(remainingOf(after)).toEqual({ hour: 0, day: 900 });
      });
    });

    it('admits everything when no window applies', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const decision = await limiter.consume(request([], 1_000));
        expect(decision).toEqual({ allowed: true, windows: [] });
      });
    });
  });
}
