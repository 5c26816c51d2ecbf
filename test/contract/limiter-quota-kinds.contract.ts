import { describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import type { Decision } from '../../src/core/decision.js';
import { lifetimeCounterIdOf, quotaPolicy, windowPolicy } from '../../src/core/policy.js';
import type { Limiter } from '../../src/limiter/limiter.js';
import type { LimiterFactory } from './limiter.contract.js';

const MID_MONTH = Date.UTC(2026, 5, 15, 10, 30, 0); // 2026-06-15T10:30:00Z

/**
 * The Limiter contract for the quota kinds beyond a hard calendar limit:
 * lifetime quotas (never reset, given back by a release) and quotas allowing
 * overage (a soft limit up to a cap). Run by every implementation beside
 * limiterContract.
 */
export function quotaKindsContract(name: string, makeLimiter: LimiterFactory): void {
  describe(`Limiter contract, lifetime and overage: ${name}`, () => {
    async function withLimiter(startMs: number, body: (limiter: Limiter, clock: ManualClock) => Promise<void>) {
      const clock = new ManualClock(startMs);
      const limiter = await makeLimiter(clock);
      try {
        await body(limiter, clock);
      } finally {
        await limiter.close();
      }
    }
    const fresh = (label: string) => `${label}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const release = (limiter: Limiter, subject: string, units: number) =>
      limiter.refund({ subject, cost: units, charges: [{ counterId: lifetimeCounterIdOf('repos'), periodStartMs: 0 }] });

    it('a lifetime quota admits its limit, then denies with no reset, across months', async () => {
      await withLimiter(MID_MONTH, async (limiter, clock) => {
        const subject = fresh('lifetime');
        const policies = [windowPolicy('hour', 100), quotaPolicy('repos', 'lifetime', 3)];
        const decisions: Decision[] = [];
        for (let i = 0; i < 4; i++) decisions.push(await limiter.consume({ subject, policies, cost: 1 }));
        expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
        expect(decisions[2]!.policies[1]).toEqual({
          name: 'repos.lifetime',
          kind: 'quota',
          window: 'lifetime',
          limit: 3,
          remaining: 0,
          resetSeconds: 0,
          periodSeconds: 0,
        });
        const denial = decisions[3]!;
        expect(denial.allowed).toBe(false);
        if (denial.allowed) return;
        expect(denial.violated).toEqual(['repos.lifetime']);
        expect(denial.retryAfterSeconds).toBe(0);
        expect(denial.reason).toBe('quota');
        // Two months later the hour has reset many times; the lifetime count has not.
        clock.set(Date.UTC(2026, 7, 20, 8, 0, 0));
        const later = await limiter.consume({ subject, policies, cost: 1 });
        expect(later.allowed).toBe(false);
        expect(later.policies[0]!.remaining).toBe(100);
        expect(await limiter.peek({ subject, policies })).toMatchObject([{ remaining: 100 }, { remaining: 0, resetSeconds: 0 }]);
      });
    });

    it('a release gives lifetime units back, never below zero, and the freed units are admitted again', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('release');
        const policies = [quotaPolicy('repos', 'lifetime', 3)];
        for (let i = 0; i < 3; i++) expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(true);
        await release(limiter, subject, 1);
        expect((await limiter.peek({ subject, policies }))[0]!.remaining).toBe(1);
        expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(true);
        expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(false);
        // Releasing more than is counted stops at zero: the limit is never lifted.
        await release(limiter, subject, 10);
        expect((await limiter.peek({ subject, policies }))[0]!.remaining).toBe(3);
        const admitted: boolean[] = [];
        for (let i = 0; i < 4; i++) admitted.push((await limiter.consume({ subject, policies, cost: 1 })).allowed);
        expect(admitted).toEqual([true, true, true, false]);
      });
    });

    it('a release of a subject never charged creates nothing', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('release-nothing');
        const policies = [quotaPolicy('repos', 'lifetime', 2)];
        await release(limiter, subject, 1);
        expect((await limiter.peek({ subject, policies }))[0]!.remaining).toBe(2);
        const admitted: boolean[] = [];
        for (let i = 0; i < 3; i++) admitted.push((await limiter.consume({ subject, policies, cost: 1 })).allowed);
        expect(admitted).toEqual([true, true, false]);
      });
    });

    it('overage admits up to the cap past the limit, reporting the overage units, then denies', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('overage');
        const policies = [windowPolicy('hour', 1_000), quotaPolicy('search', 'month', 5, 3)];
        const decisions: Decision[] = [];
        for (let i = 0; i < 9; i++) decisions.push(await limiter.consume({ subject, policies, cost: 1 }));
        expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, true, true, true, true, false]);
        expect(decisions.map((d) => d.policies[1]!.overage)).toEqual([0, 0, 0, 0, 0, 1, 2, 3, 3]);
        expect(decisions.map((d) => d.policies[1]!.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0, 0, 0]);
        // The window without overage reports no overage field at all.
        expect(decisions[7]!.policies[0]).not.toHaveProperty('overage');
        const denial = decisions[8]!;
        expect(denial.allowed).toBe(false);
        if (!denial.allowed) expect(denial.violated).toEqual(['search.month']);
        // The denial charged nothing: the hour counted 8.
        expect(denial.policies[0]!.remaining).toBe(1_000 - 8);
        const peeked = await limiter.peek({ subject, policies });
        expect(peeked[1]).toMatchObject({ remaining: 0, overage: 3 });
      });
    });

    it('overage: a cost that would pass the cap is denied whole, a smaller one still fits', async () => {
      await withLimiter(MID_MONTH, async (limiter) => {
        const subject = fresh('overage-cost');
        const policies = [quotaPolicy('search', 'month', 10, 5)];
        expect((await limiter.consume({ subject, policies, cost: 13 })).allowed).toBe(true);
        const tooBig = await limiter.consume({ subject, policies, cost: 3 });
        expect(tooBig.allowed).toBe(false);
        expect(tooBig.policies[0]).toMatchObject({ remaining: 0, overage: 3 });
        const fits = await limiter.consume({ subject, policies, cost: 2 });
        expect(fits.allowed).toBe(true);
        expect(fits.policies[0]).toMatchObject({ remaining: 0, overage: 5 });
      });
    });

    it('overage starts afresh with the next period', async () => {
      await withLimiter(MID_MONTH, async (limiter, clock) => {
        const subject = fresh('overage-month');
        const policies = [quotaPolicy('search', 'month', 2, 1)];
        for (let i = 0; i < 3; i++) expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(true);
        expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(false);
        clock.set(Date.UTC(2026, 6, 1, 0, 0, 1));
        const next = await limiter.consume({ subject, policies, cost: 1 });
        expect(next.allowed).toBe(true);
        expect(next.policies[0]).toMatchObject({ remaining: 1, overage: 0 });
      });
    });
  });
}
