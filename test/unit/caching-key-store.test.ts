import { describe, expect, it } from 'vitest';
import { applyInvalidation, parseInvalidationMessage } from '../../src/auth/cache-invalidation.js';
import { CachingKeyStore, type KeyLookupResult } from '../../src/auth/caching-key-store.js';
import type { ApiKeyRecord, KeyStore } from '../../src/auth/key-store.js';
import { ManualClock } from '../support/manual-clock.js';

/** An in-memory key store that counts its lookups and can hold one back. */
class CountingStore implements KeyStore {
  readonly records = new Map<string, ApiKeyRecord>();
  lookups = 0;
  gate: Promise<void> | undefined;

  async findByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    this.lookups++;
    const record = this.records.get(hash);
    if (this.gate !== undefined) await this.gate;
    return record;
  }
}

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

function setup(overrides: Partial<{ maxEntries: number; negativeMaxEntries: number }> = {}) {
  const store = new CountingStore();
  const clock = new ManualClock(1_000_000);
  const results: KeyLookupResult[] = [];
  const cache = new CachingKeyStore({
    store,
    clock,
    maxEntries: overrides.maxEntries ?? 10,
    ttlMs: 60_000,
    negativeMaxEntries: overrides.negativeMaxEntries ?? 10,
    negativeTtlMs: 5_000,
    onLookup: (result) => results.push(result),
  });
  store.records.set(A, { id: 'ka', subject: 'acme', plan: 'pro' });
  store.records.set(B, { id: 'kb', subject: 'acme', plan: 'pro' });
  store.records.set(C, { id: 'kc', subject: 'other', plan: 'pro' });
  return { store, clock, cache, results };
}

describe('CachingKeyStore', () => {
  it('answers a cached key without asking the store, until its TTL passes', async () => {
    const { store, clock, cache, results } = setup();
    expect((await cache.findByHash(A))?.id).toBe('ka');
    expect((await cache.findByHash(A))?.id).toBe('ka');
    expect(store.lookups).toBe(1);
    clock.advance(60_001);
    await cache.findByHash(A);
    expect(store.lookups).toBe(2);
    expect(results).toEqual(['miss', 'hit', 'miss']);
  });

  it('answers a remembered key (or a remembered unknown) synchronously, and a lookup with a promise', async () => {
    const { cache } = setup();
    const unknown = 'd'.repeat(64);
    expect(cache.findByHash(A)).toBeInstanceOf(Promise);
    expect(cache.findByHash(unknown)).toBeInstanceOf(Promise);
    await Promise.all([cache.findByHash(A), cache.findByHash(unknown)]);
    const hit = cache.findByHash(A);
    expect(hit).not.toBeInstanceOf(Promise);
    expect((hit as ApiKeyRecord | undefined)?.id).toBe('ka');
    expect(cache.findByHash(unknown)).toBeUndefined();
  });

  it('remembers an unknown hash for the negative TTL, and forgets it when the key changes', async () => {
    const { store, clock, cache, results } = setup();
    const unknown = 'd'.repeat(64);
    expect(await cache.findByHash(unknown)).toBeUndefined();
    expect(await cache.findByHash(unknown)).toBeUndefined();
    expect(store.lookups).toBe(1);
    store.records.set(unknown, { id: 'kd', subject: 'new', plan: 'pro' });
    cache.invalidateKey(unknown);
    expect((await cache.findByHash(unknown))?.id).toBe('kd');
    clock.advance(5_001);
    expect(results).toEqual(['miss', 'negative_hit', 'miss']);
  });

  it('drops every key of a subject on a subject change, and only those', async () => {
    const { store, cache } = setup();
    await Promise.all([cache.findByHash(A), cache.findByHash(B), cache.findByHash(C)]);
    applyInvalidation(cache, parseInvalidationMessage(JSON.stringify({ type: 'subject', id: 'acme' }))!);
    expect(cache.size).toBe(1);
    await Promise.all([cache.findByHash(A), cache.findByHash(B), cache.findByHash(C)]);
    expect(store.lookups).toBe(5);
  });

  it('still drops every key of a subject after some of them were evicted, and after it gained keys again', async () => {
    const { store, cache } = setup({ maxEntries: 2 });
    await cache.findByHash(A);
    await cache.findByHash(B); // acme: two keys
    await cache.findByHash(C); // evicts A: acme is down to B
    cache.invalidateSubject('acme');
    expect(cache.size).toBe(1);
    await cache.findByHash(C);
    expect(store.lookups).toBe(3); // C stayed cached
    await cache.findByHash(A); // evicts B (C was used more recently): acme has A again
    await cache.findByHash(B); // evicts C: acme has two keys again
    cache.invalidateSubject('acme');
    expect(cache.size).toBe(0);
    await Promise.all([cache.findByHash(A), cache.findByHash(B)]);
    expect(store.lookups).toBe(7);
  });

  it('shares one store lookup among concurrent misses of a hash', async () => {
    const { store, cache } = setup();
    const records = await Promise.all([cache.findByHash(A), cache.findByHash(A), cache.findByHash(A)]);
    expect(records.map((record) => record?.id)).toEqual(['ka', 'ka', 'ka']);
    expect(store.lookups).toBe(1);
  });

  it('does not cache an answer that was on its way when an invalidation came', async () => {
    const { store, cache } = setup();
    let release!: () => void;
    store.gate = new Promise((resolve) => (release = resolve));
    const running = cache.findByHash(A);
    await Promise.resolve();
    store.records.set(A, { id: 'ka', subject: 'acme', plan: 'pro', revoked: true });
    cache.invalidateKey(A);
    release();
    expect((await running)?.revoked).toBeUndefined();
    store.gate = undefined;
    expect((await cache.findByHash(A))?.revoked).toBe(true);
  });

  it('never caches a failure', async () => {
    const store: KeyStore = { findByHash: () => Promise.reject(new Error('down')) };
    const cache = new CachingKeyStore({ store, clock: new ManualClock(0), maxEntries: 10, ttlMs: 1_000, negativeMaxEntries: 10, negativeTtlMs: 1_000 });
    await expect(cache.findByHash(A)).rejects.toThrow('down');
    await expect(cache.findByHash(A)).rejects.toThrow('down');
  });

  it('times each store query of a miss (the key lookup histogram), and says whether it failed; hits are not timed', async () => {
    const timed: boolean[] = [];
    const store = new CountingStore();
    store.records.set(A, { id: 'ka', subject: 'acme', plan: 'pro' });
    let down = false;
    const flaky: KeyStore = { findByHash: (hash) => (down ? Promise.reject(new Error('down')) : store.findByHash(hash)) };
    const cache = new CachingKeyStore({
      store: flaky,
      clock: new ManualClock(0),
      maxEntries: 10,
      ttlMs: 1_000,
      negativeMaxEntries: 10,
      negativeTtlMs: 1_000,
      onQueryTimed: (seconds, ok) => {
        expect(seconds).toBeGreaterThanOrEqual(0);
        timed.push(ok);
      },
    });
    await cache.findByHash(A);
    await cache.findByHash(A);
    down = true;
    await expect(cache.findByHash(B)).rejects.toThrow('down');
    expect(timed).toEqual([true, false]);
  });

  it('keeps at most max_entries keys, and with 0 keeps none', async () => {
    const small = setup({ maxEntries: 2 });
    await small.cache.findByHash(A);
    await small.cache.findByHash(B);
    await small.cache.findByHash(C);
    expect(small.cache.size).toBe(2);
    const off = setup({ maxEntries: 0, negativeMaxEntries: 0 });
    await off.cache.findByHash(A);
    await off.cache.findByHash(A);
    expect(off.store.lookups).toBe(2);
  });
});

describe('parseInvalidationMessage', () => {
  it('reads key and subject messages and ignores anything else', () => {
    expect(parseInvalidationMessage(JSON.stringify({ type: 'key', hash: A }))).toEqual({ type: 'key', hash: A });
    expect(parseInvalidationMessage(JSON.stringify({ type: 'subject', id: 'acme' }))).toEqual({ type: 'subject', id: 'acme' });
    for (const text of ['nope', '{}', '{"type":"key","hash":"XYZ"}', '{"type":"subject","id":""}', 'null']) {
      expect(parseInvalidationMessage(text)).toBeUndefined();
    }
  });
});
