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
   * cannot be reached (the caller answers 503 `store_unavailable`).
   */
  findByHash(sha256Hex: string): Promise<ApiKeyRecord | undefined>;
}

/** The key store could not answer (database down or too slow); retrying later may work. */
export class KeyStoreUnavailableError extends Error {
  constructor(options?: ErrorOptions) {
    super('the key store is unavailable', options);
    this.name = 'KeyStoreUnavailableError';
  }
}
