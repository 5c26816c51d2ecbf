import type { LimitOverrides } from '../core/limit-overrides.js';

/** What the gateway knows about one API key; never the key itself. */
export interface ApiKeyRecord {
  /** Stable, non-secret id, passed upstream as X-Quotagate-Key-Id. */
  readonly id: string;
  readonly subject: string;
  /** A plan name defined in gateway.yaml. */
  readonly plan: string;
  /** Per-subject limits that replace the plan's (database keys only). */
  readonly overrides?: LimitOverrides;
  /** The key is refused at and after this instant, in epoch ms; absent: never expires. */
  readonly expiresAtMs?: number;
  /** The key was revoked: refused with `key_revoked`. */
  readonly revoked?: boolean;
  /** The key's subject is suspended: refused with 403 `subject_suspended`. */
  readonly suspended?: boolean;
  /**
   * Scopes the key grants, checked against a route's `scopes` as a token's
   * are (403 `insufficient_scope`); absent: none. One set per record, built
   * when the record is, so a request allocates nothing for it.
   */
  readonly scopes?: ReadonlySet<string>;
  /** The key lives in the database, whose `last_used_at` records its use. */
  readonly stored?: boolean;
}

/**
 * Looks up API keys by the SHA-256 hex of the key. The gateway hashes before
 * calling, so a store never sees a plain key. A store returns revoked,
 * expired and suspended keys too; the authenticator refuses them.
 * Implementations: FileKeyStore (keys listed in gateway.yaml),
 * DatabaseKeyStore, CachingKeyStore (in front of the database) and
 * CompositeKeyStore (the file first, then the database).
 */
export interface KeyStore {
  /**
   * The key with this hash, or undefined when none is known. Rejects only on
   * infrastructure faults, with KeyStoreUnavailableError when the store
   * cannot be reached (the caller answers 503 `store_unavailable`), and with
   * KeyLookupThrottledError when `requester` has spent its budget of
   * unknown-key queries (429 `auth_throttled`; no query was made).
   *
   * @param requester the client address asking, for the per-address
   *   throttle; called only when a lookup would reach the database.
   *
   * A store that answers from memory (a cache hit) may return the record
   * itself rather than a promise: the hot path awaits only real promises.
   */
  findByHash(sha256Hex: string, requester?: KeyRequester): ApiKeyRecord | undefined | Promise<ApiKeyRecord | undefined>;
}

/** The client address a lookup is for (computed only when a lookup would query). */
export type KeyRequester = () => string;

/** The requester has spent its unknown-key lookups for this second; nothing was queried. */
export class KeyLookupThrottledError extends Error {
  constructor() {
    super('too many lookups of unknown API keys from this client address');
    this.name = 'KeyLookupThrottledError';
  }
}

/** The key store could not answer (database down or too slow); retrying later may work. */
export class KeyStoreUnavailableError extends Error {
  constructor(options?: ErrorOptions) {
    super('the key store is unavailable', options);
    this.name = 'KeyStoreUnavailableError';
  }
}
