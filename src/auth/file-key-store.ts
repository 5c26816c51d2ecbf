import type { KeyEntryConfig } from '../config/schema.js';
import type { ApiKeyRecord, KeyStore } from './key-store.js';

/**
 * Keys listed in gateway.yaml under `auth.api_keys.keys`, as SHA-256 hashes.
 * Lookups are one Map read; a config reload builds a new store.
 */
export class FileKeyStore implements KeyStore {
  private readonly byHash: ReadonlyMap<string, ApiKeyRecord>;

  constructor(entries: readonly KeyEntryConfig[]) {
    this.byHash = new Map(
      entries.map((entry) => [
        entry.hash,
        {
          id: entry.id ?? entry.hash.slice(0, 12),
          subject: entry.subject,
          plan: entry.plan,
          ...(entry.scopes === undefined ? {} : { scopes: new Set(entry.scopes) }),
        },
      ]),
    );
  }

  findByHash(sha256Hex: string): Promise<ApiKeyRecord | undefined> {
    return Promise.resolve(this.byHash.get(sha256Hex));
  }
}
