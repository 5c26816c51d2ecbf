/** What the gateway knows about one API key; never the key itself. */
export interface ApiKeyRecord {
  /** Stable, non-secret id, passed upstream as X-Quotagate-Key-Id. */
  readonly id: string;
  readonly subject: string;
  /** A plan name defined in gateway.yaml. */
  readonly plan: string;
}

/**
 * Looks up API keys by the SHA-256 hex of the key. The gateway hashes before
 * calling, so a store never sees a plain key. Implementations: FileKeyStore
 * (keys listed in gateway.yaml); a PostgreSQL-backed store comes later.
 */
export interface KeyStore {
  /** The key with this hash, or undefined when none is known. Rejects only on infrastructure faults. */
  findByHash(sha256Hex: string): Promise<ApiKeyRecord | undefined>;
}
