import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';
import { type ApiKeyRecord, KeyLookupThrottledError, type KeyRequester, type KeyStore } from './key-store.js';
import { type KeyLookupThrottle, type LookupTicket, THROTTLED } from './lookup-throttle.js';

/** {@link CachingKeyStore}'s memory has no answer for a hash. */
const NOT_REMEMBERED = Symbol('not remembered');

/** `auth.api_keys.cache` in gateway.yaml. */
export interface KeyCacheOptions {
  /** Most keys kept; least recently used go first. 0 turns the cache off. */
  readonly maxEntries: number;
  /** How long a key is trusted without asking the database again, in ms. */
  readonly ttlMs: number;
  /** Most unknown hashes remembered. 0 turns the negative cache off. */
  readonly negativeMaxEntries: number;
  /** How long an unknown hash is answered from memory, in ms. */
  readonly negativeTtlMs: number;
}

/** Where a lookup was answered: `hit`, `negative_hit` and `throttled` (refused, budget spent) made no query. */
export type KeyLookupResult = 'hit' | 'negative_hit' | 'miss' | 'throttled';

export interface CachingKeyStoreOptions extends KeyCacheOptions {
  readonly store: KeyStore;
  readonly clock: Clock;
  /** Called once per lookup, for the key-lookups metric. */
  readonly onLookup?: (result: KeyLookupResult) => void;
  /** Called after each query of a miss with its duration in seconds and whether it succeeded. */
  readonly onQueryTimed?: (seconds: number, ok: boolean) => void;
  /** Per-address budget of unknown-key queries; absent: misses are not throttled. */
  readonly throttle?: KeyLookupThrottle;
}

/**
 * An LRU cache with TTL in front of a KeyStore (the database), plus a
 * bounded negative cache of hashes the store did not know. A hit makes no
 * query. Revoked, expired and suspended keys are cached like live ones: the
 * authenticator refuses them on every request, and expiry is judged then.
 *
 * Invalidation (invalidateKey, invalidateSubject, clear) drops entries at
 * once; a lookup that was already running when an invalidation came is not
 * cached, so a stale answer cannot outlive the invalidation. Concurrent
 * misses of one hash share a single query. Failures are never cached.
 *
 * With a throttle, a miss that would query is first admitted by it for its
 * requester (see KeyLookupThrottle: it may wait for the requester's running
 * lookups); refused, it rejects with KeyLookupThrottledError and queries
 * nothing. Hits never touch the throttle.
 */
export class CachingKeyStore implements KeyStore {
  readonly #store: KeyStore;
  readonly #onLookup: (result: KeyLookupResult) => void;
  readonly #onQueryTimed: (seconds: number, ok: boolean) => void;
  readonly #throttle: KeyLookupThrottle | undefined;
  readonly #known: LRUCache<string, ApiKeyRecord> | undefined;
  readonly #unknown: LRUCache<string, true> | undefined;
  /**
   * subject → the hashes of its cached keys, so a subject change drops them
   * all: the one hash itself while the subject has one cached key (most
   * have: no Set of ~150 bytes per key), a Set once it has more.
   */
  readonly #hashesBySubject = new Map<string, string | Set<string>>();
  readonly #inFlight = new Map<string, Promise<ApiKeyRecord | undefined>>();
  /** Bumped by every invalidation; a lookup that saw it change does not cache. */
  #generation = 0;

  constructor(options: CachingKeyStoreOptions) {
    this.#store = options.store;
    this.#onLookup = options.onLookup ?? (() => {});
    this.#onQueryTimed = options.onQueryTimed ?? (() => {});
    this.#throttle = options.throttle;
    const perf = { now: () => options.clock.now() };
    if (options.maxEntries > 0) {
      this.#known = new LRUCache<string, ApiKeyRecord>({
        max: options.maxEntries,
        ttl: options.ttlMs,
        ttlAutopurge: false,
        // Read the injected clock on every check (not lru-cache's per-tick cached time).
        ttlResolution: 0,
        perf,
        dispose: (record, hash) => this.#unindex(record.subject, hash),
      });
    }
    if (options.negativeMaxEntries > 0) {
      this.#unknown = new LRUCache<string, true>({ max: options.negativeMaxEntries, ttl: options.negativeTtlMs, ttlResolution: 0, perf });
    }
  }

  /** A remembered key (or a remembered unknown) is answered synchronously; a lookup returns a promise. */
  findByHash(sha256Hex: string, requester?: KeyRequester): ApiKeyRecord | undefined | Promise<ApiKeyRecord | undefined> {
    const remembered = this.#remembered(sha256Hex);
    if (remembered !== NOT_REMEMBERED) return remembered;
    return this.#findUncached(sha256Hex, requester);
  }

  async #findUncached(sha256Hex: string, requester?: KeyRequester): Promise<ApiKeyRecord | undefined> {
    let ticket: LookupTicket | undefined;
    if (this.#throttle !== undefined && requester !== undefined) {
      let admission = this.#throttle.admit(requester());
      if (admission instanceof Promise) {
        admission = await admission;
        // While this waited, another lookup may have answered this hash or started on it.
        const meanwhile = admission === THROTTLED ? NOT_REMEMBERED : this.#remembered(sha256Hex);
        if (meanwhile !== NOT_REMEMBERED) {
          this.#throttle.settle(admission as LookupTicket, 'known');
          return meanwhile;
        }
      }
      if (admission === THROTTLED) {
        this.#onLookup('throttled');
        throw new KeyLookupThrottledError();
      }
      ticket = admission;
    }
    this.#onLookup('miss');
    const lookup = this.#load(sha256Hex, ticket).finally(() => {
      if (this.#inFlight.get(sha256Hex) === lookup) this.#inFlight.delete(sha256Hex);
    });
    this.#inFlight.set(sha256Hex, lookup);
    return lookup;
  }

  /** The answer memory already holds for `hash` (counted), a running lookup's promise, or NOT_REMEMBERED. */
  #remembered(hash: string): ApiKeyRecord | undefined | Promise<ApiKeyRecord | undefined> | typeof NOT_REMEMBERED {
    const cached = this.#known?.get(hash);
    if (cached !== undefined) {
      this.#onLookup('hit');
      return cached;
    }
    if (this.#unknown?.get(hash) === true) {
      this.#onLookup('negative_hit');
      return undefined;
    }
    const running = this.#inFlight.get(hash);
    if (running !== undefined) {
      this.#onLookup('miss');
      return running;
    }
    return NOT_REMEMBERED;
  }

  /** Queries the store for `hash`; `ticket`, the throttle's, is settled with the outcome. */
  async #load(hash: string, ticket: LookupTicket | undefined): Promise<ApiKeyRecord | undefined> {
    const generation = this.#generation;
    const startMs = performance.now();
    let record: ApiKeyRecord | undefined;
    try {
      record = await this.#store.findByHash(hash);
    } catch (error) {
      this.#onQueryTimed((performance.now() - startMs) / 1000, false);
      if (ticket !== undefined) this.#throttle!.settle(ticket, 'failed');
      throw error;
    }
    this.#onQueryTimed((performance.now() - startMs) / 1000, true);
    if (ticket !== undefined) this.#throttle!.settle(ticket, record === undefined ? 'unknown' : 'known');
    if (generation !== this.#generation) return record;
    if (record === undefined) {
      this.#unknown?.set(hash, true);
    } else if (this.#known !== undefined) {
      this.#known.set(hash, record);
      this.#index(record.subject, hash);
    }
    return record;
  }

  #index(subject: string, hash: string): void {
    const hashes = this.#hashesBySubject.get(subject);
    if (hashes === undefined || hashes === hash) this.#hashesBySubject.set(subject, hash);
    else if (typeof hashes === 'string') this.#hashesBySubject.set(subject, new Set([hashes, hash]));
    else hashes.add(hash);
  }

  #unindex(subject: string, hash: string): void {
    const hashes = this.#hashesBySubject.get(subject);
    if (hashes === undefined) return;
    if (typeof hashes === 'string') {
      if (hashes === hash) this.#hashesBySubject.delete(subject);
      return;
    }
    hashes.delete(hash);
    if (hashes.size === 1) this.#hashesBySubject.set(subject, hashes.values().next().value!);
  }

  /** The hashes of the subject's cached keys (a copy: dropping them unindexes them). */
  #hashesOf(subject: string): readonly string[] {
    const hashes = this.#hashesBySubject.get(subject);
    if (hashes === undefined) return [];
    return typeof hashes === 'string' ? [hashes] : [...hashes];
  }

  /** Drops what is cached about this key hash, known or unknown. */
  invalidateKey(sha256Hex: string): void {
    this.#generation++;
    this.#inFlight.delete(sha256Hex);
    this.#known?.delete(sha256Hex);
    this.#unknown?.delete(sha256Hex);
  }

  /** Drops every cached key of this subject. */
  invalidateSubject(subject: string): void {
    this.#generation++;
    this.#inFlight.clear();
    for (const hash of this.#hashesOf(subject)) this.#known?.delete(hash);
  }

  /** Drops everything (e.g. after missing invalidation messages while Redis was away). */
  clear(): void {
    this.#generation++;
    this.#inFlight.clear();
    this.#known?.clear();
    this.#unknown?.clear();
  }

  /** Keys currently cached (for tests and a gauge). */
  get size(): number {
    return this.#known?.size ?? 0;
  }
}
