import { describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import { mostConstraining, PolicyHeaderValues, rateLimitHeaders } from '../../src/core/ratelimit-headers.js';
import { coveredByCredits, quotaPolicy, windowPolicy } from '../../src/core/policy.js';
import { MemoryLimiter } from '../../src/limiter/memory-limiter.js';

const headerMap = (pairs: ReadonlyArray<readonly [string, string]>) => Object.fromEntries(pairs);

describe('rateLimitHeaders over a sequence of requests', () => {
  it('counts down to the limit and past it, on every header', async () => {
    // 2026-06-15T10:39:00Z: 21 minutes to the hour, 13 h 21 min to the day's end.
    const clock = new ManualClock(Date.UTC(2026, 5, 15, 10, 39, 0));
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0 });
    const policies = [windowPolicy('hour', 3), windowPolicy('day', 10)];
    const seen: Record<string, string>[] = [];
    for (let i = 0; i < 4; i++) {
      const decision = await limiter.consume({ subject: 's', policies, cost: 1 });
      seen.push(headerMap(rateLimitHeaders(decision.policies, 'delta-seconds', clock.now())));
    }
    expect(seen.map((h) => h.RateLimit)).toEqual([
      '"hour";r=2;t=1260, "day";r=9;t=48060',
      '"hour";r=1;t=1260, "day";r=8;t=48060',
      '"hour";r=0;t=1260, "day";r=7;t=48060',
      '"hour";r=0;t=1260, "day";r=7;t=48060',
    ]);
    expect(seen[0]!['RateLimit-Policy']).toBe('"hour";q=3;w=3600, "day";q=10;w=86400');
    expect(seen.map((h) => h['X-RateLimit-Remaining'])).toEqual(['2', '1', '0', '0']);
    expect(seen.map((h) => h['X-RateLimit-Limit'])).toEqual(['3', '3', '3', '3']);
    expect(seen.map((h) => h['X-RateLimit-Reset'])).toEqual(['1260', '1260', '1260', '1260']);
    expect(seen.map((h) => h['X-RateLimit-Remaining-Day'])).toEqual(['9', '8', '7', '7']);
    expect(seen[3]!['X-RateLimit-Limit-Hour']).toBe('3');
    await limiter.close();
  });

  it('adds a "credits" item with the balance to RateLimit for a quota credits cover', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 15, 10, 39, 0));
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0 });
    const policies = [coveredByCredits(quotaPolicy('search', 'month', 1), 'search')];
    await limiter.addCredits('s', [{ id: 1, metric: 'search', amount: 2, expiresAtMs: null, used: 0 }]);
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const decision = await limiter.consume({ subject: 's', policies, cost: 1 });
      seen.push(headerMap(rateLimitHeaders(decision.policies, 'delta-seconds', clock.now(), undefined, undefined, decision.credits)).RateLimit!);
    }
    const t = 'search.month";r=0;t=1344060';
    expect(seen).toEqual([`"${t}, "credits";r=2`, `"${t}, "credits";r=1`, `"${t}, "credits";r=0`, `"${t}, "credits";r=0`]);
    await limiter.close();
  });

  it('gives the reset as epoch seconds when configured', () => {
    const nowMs = Date.UTC(2026, 5, 15, 10, 39, 0, 400);
    const headers = headerMap(
      rateLimitHeaders(
        [{ name: 'hour', kind: 'window', window: 'hour', limit: 5, remaining: 4, resetSeconds: 1260, periodSeconds: 3600 }],
        'epoch-seconds',
        nowMs,
      ),
    );
    expect(headers['X-RateLimit-Reset']).toBe(String(Date.UTC(2026, 5, 15, 11) / 1000));
  });

  it('lists quotas in the IETF headers but gives per-window legacy headers only for windows', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 15, 10, 39, 0));
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0 });
    const decision = await limiter.consume({
      subject: 'q',
      policies: [windowPolicy('hour', 100), quotaPolicy('search', 'month', 2)],
      cost: 1,
    });
    const headers = headerMap(rateLimitHeaders(decision.policies, 'delta-seconds', clock.now()));
    expect(headers['RateLimit-Policy']).toBe('"hour";q=100;w=3600, "search.month";q=2;w=2592000');
    expect(headers['RateLimit']).toBe('"hour";r=99;t=1260, "search.month";r=1;t=1344060');
    expect(headers['X-RateLimit-Limit']).toBe('2');
    expect(Object.keys(headers).filter((name) => name.startsWith('X-RateLimit-Limit-'))).toEqual(['X-RateLimit-Limit-Hour']);
    await limiter.close();
  });

  it('writes only the header families turned on', () => {
    const states = [
      { name: 'hour', kind: 'window', window: 'hour', limit: 5, remaining: 4, resetSeconds: 1260, periodSeconds: 3600 },
    ] as const;
    const names = (sets: { ietf: boolean; legacy: boolean; legacyPerWindow: boolean }) =>
      rateLimitHeaders(states, 'delta-seconds', 0, sets).map(([name]) => name);
    expect(names({ ietf: true, legacy: false, legacyPerWindow: false })).toEqual(['RateLimit-Policy', 'RateLimit']);
    expect(names({ ietf: false, legacy: true, legacyPerWindow: false })).toEqual([
      'X-RateLimit-Limit',
      'X-RateLimit-Remaining',
      'X-RateLimit-Reset',
    ]);
    expect(names({ ietf: false, legacy: false, legacyPerWindow: true })).toEqual(['X-RateLimit-Limit-Hour', 'X-RateLimit-Remaining-Hour']);
    expect(names({ ietf: true, legacy: true, legacyPerWindow: true })).toEqual(
      rateLimitHeaders(states, 'delta-seconds', 0).map(([name]) => name),
    );
  });

  it('sends nothing when no window applies', () => {
    expect(rateLimitHeaders([], 'delta-seconds', 0)).toEqual([]);
  });
});

describe('mostConstraining', () => {
  const w = (name: 'minute' | 'hour' | 'day', remaining: number) => ({
    name,
    kind: 'window' as const,
    window: name,
    limit: 100,
    remaining,
    resetSeconds: 1,
    periodSeconds: 60,
  });

  it('picks the window with the fewest remaining', () => {
    expect(mostConstraining([w('minute', 5), w('hour', 2), w('day', 50)])?.name).toBe('hour');
  });

  it('breaks ties toward the longer window', () => {
    expect(mostConstraining([w('minute', 0), w('hour', 0), w('day', 3)])?.name).toBe('hour');
    expect(mostConstraining([w('minute', 7), w('day', 7)])?.name).toBe('day');
  });
});

describe('PolicyHeaderValues', () => {
  const state = (name: string, limit: number, periodSeconds: number) => ({
    name,
    kind: 'window' as const,
    window: 'month' as const,
    limit,
    remaining: 1,
    resetSeconds: 1,
    periodSeconds,
  });
  const policyHeader = (states: ReturnType<typeof state>[], values?: PolicyHeaderValues) =>
    rateLimitHeaders(states, 'delta-seconds', 0, { ietf: true, legacy: false, legacyPerWindow: false }, values)[0]![1];

  it('gives the value rateLimitHeaders builds, and follows a month of another length, a new limit or other names', () => {
    const values = new PolicyHeaderValues();
    const november = [state('hour', 100, 3600), state('month', 1000, 30 * 86400)];
    expect(policyHeader(november, values)).toBe(policyHeader(november));
    expect(policyHeader(november, values)).toBe('"hour";q=100;w=3600, "month";q=1000;w=2592000');
    const december = [state('hour', 100, 3600), state('month', 1000, 31 * 86400)];
    expect(policyHeader(december, values)).toBe('"hour";q=100;w=3600, "month";q=1000;w=2678400');
    const raised = [state('hour', 200, 3600), state('month', 1000, 31 * 86400)];
    expect(policyHeader(raised, values)).toBe('"hour";q=200;w=3600, "month";q=1000;w=2678400');
    const renamed = [state('day', 200, 3600), state('month', 1000, 31 * 86400)];
    expect(policyHeader(renamed, values)).toBe('"day";q=200;w=3600, "month";q=1000;w=2678400');
    expect(policyHeader(renamed.slice(1), values)).toBe('"month";q=1000;w=2678400');
  });
});
