import { describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import { coveredByCredits, quotaPolicy, windowPolicy } from '../../src/core/policy.js';
import { LocalDenyCache } from '../../src/limiter/local-deny-cache.js';
import { MemoryLimiter } from '../../src/limiter/memory-limiter.js';

const START = Date.UTC(2026, 5, 15, 10, 59, 50); // 10 s before the hour ends

async function exhausted(limiter: MemoryLimiter, subject: string, policies = [windowPolicy('hour', 2)], cost = 1) {
  let decision = await limiter.consume({ subject, policies, cost });
  while (decision.allowed) decision = await limiter.consume({ subject, policies, cost });
  return decision;
}

describe('LocalDenyCache', () => {
  it("forgets every key of a subject (limit_by: key counting ids) and nobody else's", async () => {
    const clock = new ManualClock(START);
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0 });
    const cache = new LocalDenyCache(100, clock);
    const policies = [windowPolicy('hour', 2)];
    for (const id of ['acme/key:k_1', 'acme/key:k_2', 'acme', 'acmeco/key:k_3']) cache.remember(id, policies, await exhausted(limiter, id, policies));
    cache.forgetKeysOf('acme');
    expect(['acme/key:k_1', 'acme/key:k_2', 'acme', 'acmeco/key:k_3'].map((id) => cache.check(id, policies) !== undefined)).toEqual([false, false, true, true]);
  });

  it('denies an exhausted subject locally until one second before the window resets, then forgets it', async () => {
    const clock = new ManualClock(START);
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0 });
    const cache = new LocalDenyCache(100, clock);
    const policies = [windowPolicy('hour', 2), windowPolicy('day', 100)];
    const denial = await exhausted(limiter, 'alice', policies);
    cache.remember('alice', policies, denial);

    const local = cache.check('alice', policies);
    expect(local).toMatchObject({ allowed: false, reason: 'window', violated: ['hour'], retryAfterSeconds: 10 });
    clock.advance(5_000);
    expect(cache.check('alice', policies)?.retryAfterSeconds).toBe(5);
    clock.advance(4_000); // 1 s before the hour ends
    expect(cache.check('alice', policies)).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.check('bob', policies)).toBeUndefined();
  });

  it('does not cache a denial that a cheaper request could pass', async () => {
    const clock = new ManualClock(START);
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0 });
    const cache = new LocalDenyCache(100, clock);
    const policies = [windowPolicy('hour', 5)];
    await limiter.consume({ subject: 's', policies, cost: 3 });
    const denial = await limiter.consume({ subject: 's', policies, cost: 3 });
    expect(denial.allowed).toBe(false);
    if (!denial.allowed) cache.remember('s', policies, denial);
    expect(cache.check('s', policies)).toBeUndefined();
  });

  it('does not cache a denial by a quota credits cover (a grant on any instance frees it), but still one by a window', async () => {
    const clock = new ManualClock(START);
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0 });
    const cache = new LocalDenyCache(100, clock);
    const policies = [windowPolicy('hour', 100), coveredByCredits(quotaPolicy('search', 'month', 1), 'search')];
    const byQuota = await exhausted(limiter, 'paid', policies);
    cache.remember('paid', policies, byQuota);
    expect(cache.check('paid', policies)).toBeUndefined();
    const tight = [windowPolicy('hour', 1), coveredByCredits(quotaPolicy('search', 'month', 1), 'search')];
    const byWindow = await exhausted(limiter, 'tight', tight);
    cache.remember('tight', tight, byWindow);
    expect(cache.check('tight', tight)).toMatchObject({ allowed: false, violated: ['hour'] });
  });

  it('denies only requests that carry the exhausted quota', async () => {
    const clock = new ManualClock(START);
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0 });
    const cache = new LocalDenyCache(100, clock);
    const withQuota = [windowPolicy('hour', 100), quotaPolicy('search', 'month', 1)];
    const denial = await exhausted(limiter, 's', withQuota);
    cache.remember('s', withQuota, denial);
    expect(cache.check('s', withQuota)).toMatchObject({ reason: 'quota', violated: ['search.month'] });
    expect(cache.check('s', [windowPolicy('hour', 100)])).toBeUndefined();
  });

  it('holds at most max entries and can forget a subject', async () => {
    const clock = new ManualClock(START);
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0 });
    const cache = new LocalDenyCache(2, clock);
    const policies = [windowPolicy('hour', 1)];
    for (const subject of ['a', 'b', 'c']) cache.remember(subject, policies, await exhausted(limiter, subject, policies));
    expect(cache.size).toBe(2);
    expect(cache.check('a', policies)).toBeUndefined();
    cache.forget('c');
    expect(cache.check('c', policies)).toBeUndefined();
    expect(cache.check('b', policies)).toBeDefined();
  });

  it('is off with max entries 0', async () => {
    const clock = new ManualClock(START);
    const cache = new LocalDenyCache(0, clock);
    const policies = [windowPolicy('hour', 1)];
    cache.remember('a', policies, await exhausted(new MemoryLimiter({ clock, sweepIntervalMs: 0 }), 'a', policies));
    expect(cache.check('a', policies)).toBeUndefined();
  });
});
