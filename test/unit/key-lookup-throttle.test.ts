import { describe, expect, it } from 'vitest';
import { CachingKeyStore, type KeyLookupResult } from '../../src/auth/caching-key-store.js';
import { type ApiKeyRecord, KeyLookupThrottledError, type KeyStore, KeyStoreUnavailableError } from '../../src/auth/key-store.js';
import { KeyLookupThrottle, type LookupAdmission, type LookupTicket, THROTTLED } from '../../src/auth/lookup-throttle.js';
import { ManualClock } from '../support/manual-clock.js';

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
  const ticketOf = (admission: LookupAdmission): LookupTicket => {
    if (admission === THROTTLED || admission instanceof Promise) throw new Error('expected a ticket');
    return admission;
  };

  it('admits an address budget lookups at once, spends only unknown ones, and refuses once they reach it', () => {
    const throttle = new KeyLookupThrottle({ unknownPerSecond: 2, maxClients: 10, clock: new ManualClock(1_000_500) });
    const first = ticketOf(throttle.admit('203.0.113.1'));
    const second = ticketOf(throttle.admit('203.0.113.1'));
    throttle.settle(first, 'known');
    throttle.settle(second, 'failed');
    throttle.settle(ticketOf(throttle.admit('203.0.113.1')), 'unknown');
    throttle.settle(ticketOf(throttle.admit('203.0.113.1')), 'unknown');
    expect(throttle.admit('203.0.113.1')).toBe(THROTTLED);
    expect(ticketOf(throttle.admit('203.0.113.2')).unknown).toBe(0);
  });

  it('gives every address a fresh budget at the next second', () => {
    const clock = new ManualClock(1_000_500);
    const throttle = new KeyLookupThrottle({ unknownPerSecond: 1, maxClients: 10, clock });
    throttle.settle(ticketOf(throttle.admit('a')), 'unknown');
    clock.advance(499);
    expect(throttle.admit('a')).toBe(THROTTLED);
    clock.advance(1);
    expect(throttle.admit('a')).not.toBe(THROTTLED);
  });

  it('makes a lookup wait while running ones hold the budget, then admits it if they found keys and refuses it if not', async () => {
    const throttle = new KeyLookupThrottle({ unknownPerSecond: 1, maxClients: 10, clock: new ManualClock(0) });
    const running = ticketOf(throttle.admit('a'));
    const waiting = throttle.admit('a');
    expect(waiting).toBeInstanceOf(Promise);
    throttle.settle(running, 'known');
    const admitted = ticketOf(await waiting);
    const behind = throttle.admit('a');
    throttle.settle(admitted, 'unknown');
    expect(await behind).toBe(THROTTLED);
  });

  it('tracks at most maxClients addresses', () => {
    const throttle = new KeyLookupThrottle({ unknownPerSecond: 1, maxClients: 100, clock: new ManualClock(0) });
    for (let i = 0; i < 1_000; i++) throttle.admit(`10.0.${i >> 8}.${i & 255}`);
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
      [1, 2, 3, 4, 5].map((n) => Promise.resolve(cache.findByHash(hash(n), from('203.0.113.9'))).then(() => 'unknown', (error: unknown) => error)),
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

  it('serves a burst of new valid keys from one address, never querying more than the budget at once', async () => {
    const { store, cache } = setup(3);
    for (let n = 100; n < 150; n++) store.records.set(hash(n), { id: `k${n}`, subject: 'nat', plan: 'pro' });
    let running = 0;
    let most = 0;
    const query = store.findByHash.bind(store);
    store.findByHash = async (h) => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      return query(h);
    };
    const records = await Promise.all(Array.from({ length: 50 }, (_, i) => cache.findByHash(hash(100 + i), from('198.51.100.7'))));
    expect(records.map((r) => r?.id)).toEqual(Array.from({ length: 50 }, (_, i) => `k${100 + i}`));
    expect(store.queries).toBe(50);
    expect(most).toBe(3);
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
