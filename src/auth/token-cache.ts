import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';
import type { Identity } from '../core/identity.js';

/** What a verified token resolved to. */
export interface VerifiedToken {
  readonly identity: Identity;
  readonly scopes: ReadonlySet<string>;
}

interface Entry extends VerifiedToken {
  /** Epoch ms after which the entry is not used: the earlier of the TTL and the token's `exp`. */
  readonly validUntilMs: number;
}

export interface TokenCacheOptions {
  /** Most tokens kept; the least recently used goes first. At least 1. */
  readonly maxEntries: number;
  /** How long a verified token is trusted without being verified again. */
  readonly ttlMs: number;
  readonly clock: Clock;
}

/**
 * Verified tokens, so a hot token is not verified again on every request.
 * Keyed by the token's SHA-256 (a token is a credential: it is not kept in
 * memory as is). An entry is never used at or past the token's `exp`, nor
 * longer than `ttlMs` after it was verified — so a key removed from the
 * issuer's JWKS stops being honoured within `ttlMs`.
 */
export class TokenCache {
  private readonly entries: LRUCache<string, Entry>;

  constructor(private readonly options: TokenCacheOptions) {
    this.entries = new LRUCache({ max: options.maxEntries });
  }

  get(token: string): VerifiedToken | undefined {
    const key = cacheKey(token);
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (this.options.clock.now() >= entry.validUntilMs) {
      this.entries.delete(key);
      return undefined;
    }
    return { identity: entry.identity, scopes: entry.scopes };
  }

  /** Keeps `verified` for the token expiring at `expiresAtMs` (epoch ms), unless it is already past. */
  set(token: string, verified: VerifiedToken, expiresAtMs: number): void {
    const validUntilMs = Math.min(this.options.clock.now() + this.options.ttlMs, expiresAtMs);
    if (validUntilMs <= this.options.clock.now()) return;
    this.entries.set(cacheKey(token), { ...verified, validUntilMs });
  }

  get size(): number {
    return this.entries.size;
  }
}

function cacheKey(token: string): string {
  return createHash('sha256').update(token).digest('base64');
}
