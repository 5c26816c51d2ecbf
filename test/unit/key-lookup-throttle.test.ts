import { describe, expect, it } from 'vitest';
import { CachingKeyStore, type KeyLookupResult } from '../../src/auth/caching-key-store.js';
import { type ApiKeyRecord, KeyLookupThrottledError, type KeyStore, KeyStoreUnavailableError } from '../../src/auth/key-store.js';
import { KeyLookupThrottle } from '../../src/auth/lookup-throttle.js';
import { ManualClock } from '../../src/core/clock.js';

/** A key store that counts its queries; `failing` makes them reject as an outage would. */
class CountingStore implements KeyStore {
  readonly records = new Map<string, ApiKeyRecord>();
  queries = 0;
  failing = false;

  async findByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    this.queries++;
    if (this.failing) throw new KeyStoreUnavailableError();
    return this.records.get(hash);
  }
}

const hash = (n: number): string => n.toString(16).padStart(64, '0');
const KNOWN = 'f'.repeat(64);

describe('KeyLookupThrottle', () => {
  it('grants each address its budget per second, separately, and a fresh budget the next second', () => {
    const clock = new ManualClock(1_000_500);
    const throttle = new KeyLookupThrottle({ unknownPerSecond: 3, maxClients: 10, clock });
    expect([1, 2, 3, 4].map(() => throttle.tryTake('203.0.113.1'))).toEqual([true, true, true, false]);
    expect(throttle.tryTake('203.0.113.2')).toBe(true);
    clock.advance(499);
    expect(throttle.tryTake('203.0.113.1')).toBe(false);
    clock.advance(1);
    expect([1, 2, 3, 4].map(() => throttle.tryTake('203.0.113.1'))).toEqual([true, true, true, false]);
  });

  it('takes back a unit given back (the key existed)', () => {
    const throttle = new KeyLookupThrottle({ unknownPerSecond: 1, maxClients: 10, clock: new ManualClock(0) });
    expect(throttle.tryTake('a')).toBe(true);
    throttle.giveBack('a');
    expect(throttle.tryTake('a')).toBe(true);
    expect(throttle.tryTake('a')).toBe(false);
  });

  it('tracks at most maxClients addresses', () => {
    const throttle = new KeyLookupThrottle({ unknownPerSecond: 1, maxClients: 100, clock: new ManualClock(0) });
    for (let i = 0; i < 1_000; i++) throttle.tryTake(`10.0.${i >> 8}.${i & 255}`);
    expect(throttle.size).toBe(100);
  });
});

describe('CachingKeyStore with a lookup throttle', () => {
  function setup(unknownPerSecond = 2) {
    const store = new CountingStore();
    store.records.set(KNOWN, { id: 'known', subject: 'acme', plan: 'pro' });
    const clock = new ManualClock(1_000_000);
    const results: KeyLookupResult[] = [];
    const cache = new CachingKeyStore({
      store,
      clock,
      maxEntries: 100,
      ttlMs: 60_000,
      negativeMaxEntries: 100,
      negativeTtlMs: 60_000,
      onLookup: (result) => results.push(result),
      throttle: new KeyLookupThrottle({ unknownPerSecond, maxClients: 100, clock }),
    });
    return { store, clock, cache, results };
  }
  const from = (address: string) => () => address;

  it('queries at most the budget of unknown keys per address and second, refusing the rest without a query', async () => {
    const { store, cache, results } = setup(2);
    const outcomes = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => cache.findByHash(hash(n), from('203.0.113.9')).then(() => 'unknown', (error: unknown) => error)),
    );
    expect(outcomes.slice(0, 2)).toEqual(['unknown', 'unknown']);
    for (const refused of outcomes.slice(2)) expect(refused).toBeInstanceOf(KeyLookupThrottledError);
    expect(store.queries).toBe(2);
    expect(results).toEqual(['miss', 'miss', 'throttled', 'throttled', 'throttled']);
  });

  it('still answers another address, a cached key and a remembered unknown key for the throttled address', async () => {
    const { store, cache } = setup(1);
    await cache.findByHash(KNOWN, from('198.51.100.1')); // cached now
    await cache.findByHash(hash(1), from('203.0.113.9')); // spends the budget; remembered as unknown
    await expect(cache.findByHash(hash(2), from('203.0.113.9'))).rejects.toBeInstanceOf(KeyLookupThrottledError);
    expect(store.queries).toBe(2);

    expect((await cache.findByHash(KNOWN, from('203.0.113.9')))?.id).toBe('known');
    expect(await cache.findByHash(hash(1), from('203.0.113.9'))).toBeUndefined();
    expect(await cache.findByHash(hash(3), from('198.51.100.1'))).toBeUndefined();
    expect(store.queries).toBe(3);
  });

  it('spends nothing on keys that exist or on failed queries', async () => {
    const { store, cache } = setup(1);
    store.records.set(hash(7), { id: 'k7', subject: 'acme', plan: 'pro' });
    store.records.set(hash(8), { id: 'k8', subject: 'acme', plan: 'pro' });
    expect((await cache.findByHash(hash(7), from('a')))?.id).toBe('k7');
    expect((await cache.findByHash(hash(8), from('a')))?.id).toBe('k8');
    store.failing = true;
    await expect(cache.findByHash(hash(9), from('a'))).rejects.toBeInstanceOf(KeyStoreUnavailableError);
    store.failing = false;
    expect(await cache.findByHash(hash(9), from('a'))).toBeUndefined();
    await expect(cache.findByHash(hash(10), from('a'))).rejects.toBeInstanceOf(KeyLookupThrottledError);
  });

  it('gives every address a fresh budget the next second', async () => {
    const { store, clock, cache } = setup(1);
    await cache.findByHash(hash(1), from('a'));
    await expect(cache.findByHash(hash(2), from('a'))).rejects.toBeInstanceOf(KeyLookupThrottledError);
    clock.advance(1_000);
    expect(await cache.findByHash(hash(2), from('a'))).toBeUndefined();
    expect(store.queries).toBe(2);
  });
});
