import type { Clock } from '../core/clock.js';
import type { JwtAlgorithm } from '../core/jwt-algorithms.js';
import { parseJwkPublicKey } from '../core/public-key.js';
import { fetchJwksDocument, type JwksFetcher } from './jwks-fetch.js';
import { type KeyLookup, type KeySource, type VerificationKey, selectKey } from './key-source.js';

export interface JwksCacheOptions {
  readonly url: string;
  /** Least time between two fetch attempts, successful or not, whatever triggers them. */
  readonly cooldownMs: number;
  /** Age of the key set after which it is refetched in the background. */
  readonly refreshMs: number;
  /**
   * Age of the key set (since its last successful fetch) after which it is no
   * longer trusted, in ms; larger than `refreshMs`. Until a fetch succeeds
   * again, lookups are `unavailable`.
   */
  readonly maxStaleMs: number;
  /** Bound on one fetch, connect to last byte. */
  readonly timeoutMs: number;
  readonly clock: Clock;
  /** Default: an HTTP GET with undici. */
  readonly fetchDocument?: JwksFetcher;
  /** Called after every fetch attempt: with the number of usable keys, or with the failure. */
  readonly onFetch?: (outcome: { readonly ok: true; readonly keys: number } | { readonly ok: false; readonly error: unknown }) => void;
}

/**
 * An issuer's keys from its JWKS URL, kept in memory.
 *
 * - The first token loads the set (later tokens wait for the same fetch).
 * - A token whose `kid` is not in the set triggers a refetch (the issuer may
 *   have rotated its keys), and so does a set older than `refreshMs` (in the
 *   background; the old keys answer meanwhile).
 * - Every fetch attempt, for any reason, is at most one per `cooldownMs`, so
 *   a flood of made-up `kid`s costs the issuer one request per cooldown.
 * - A failed fetch changes nothing: the keys already loaded keep verifying
 *   through a JWKS outage, for up to `maxStaleMs` after their last successful
 *   fetch (so a signing key the issuer revoked does not stay valid forever).
 *   While no set was ever loaded, or the loaded one is that old, lookups are
 *   `unavailable` (and each one tries a fetch, at most one per cooldown).
 *
 * Written here rather than using jose's createRemoteJWKSet, which drops to
 * failure once its cache is older than `cacheMaxAge` and the refetch fails,
 * retries failed fetches with no cooldown, and reads the wall clock.
 */
export class JwksCache implements KeySource {
  private keys: readonly VerificationKey[] | undefined;
  private fetchedAtMs = 0;
  private lastAttemptMs: number | undefined;
  private inflight: Promise<void> | undefined;
  private readonly fetchDocument: JwksFetcher;

  constructor(private readonly options: JwksCacheOptions) {
    this.fetchDocument = options.fetchDocument ?? fetchJwksDocument;
  }

  async keyFor(kid: string | undefined, alg: JwtAlgorithm): Promise<KeyLookup> {
    let keys = this.trustedKeys();
    if (keys === undefined) {
      await this.refresh();
      keys = this.trustedKeys();
    } else if (this.options.clock.now() - this.fetchedAtMs >= this.options.refreshMs) {
      void this.refresh();
    }
    if (keys === undefined) return { found: false, reason: 'unavailable' };
    let key = selectKey(keys, kid, alg);
    if (key === undefined) {
      // Perhaps a key published since the last fetch; the cooldown bounds how often we look.
      await this.refresh();
      keys = this.trustedKeys();
      key = keys === undefined ? undefined : selectKey(keys, kid, alg);
    }
    return key === undefined ? { found: false, reason: 'unknown' } : { found: true, key };
  }

  /** The loaded key set, unless none was loaded or it was fetched `maxStaleMs` ago or more. */
  private trustedKeys(): readonly VerificationKey[] | undefined {
    if (this.keys === undefined || this.options.clock.now() - this.fetchedAtMs >= this.options.maxStaleMs) return undefined;
    return this.keys;
  }

  /** Starts a fetch unless one is running (then joins it) or the cooldown has not passed. Never rejects. */
  private refresh(): Promise<void> {
    if (this.inflight !== undefined) return this.inflight;
    const now = this.options.clock.now();
    if (this.lastAttemptMs !== undefined && now - this.lastAttemptMs < this.options.cooldownMs) return Promise.resolve();
    this.lastAttemptMs = now;
    this.inflight = this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load(): Promise<void> {
    let keys: VerificationKey[];
    try {
      keys = parseKeySet(await this.fetchDocument(this.options.url, this.options.timeoutMs));
    } catch (error) {
      this.options.onFetch?.({ ok: false, error });
      return;
    }
    this.keys = keys;
    this.fetchedAtMs = this.options.clock.now();
    this.options.onFetch?.({ ok: true, keys: keys.length });
  }
}

/**
 * The usable signature keys of a JWKS document (RFC 7517 §5). Entries that
 * are not public RSA/EC/OKP keys, or are marked for encryption (`use: enc`),
 * are skipped; a document without a `keys` list is an error.
 */
export function parseKeySet(document: unknown): VerificationKey[] {
  if (typeof document !== 'object' || document === null || !Array.isArray((document as { keys?: unknown }).keys)) {
    throw new Error('the JWKS document has no "keys" list');
  }
  const keys: VerificationKey[] = [];
  for (const entry of (document as { keys: unknown[] }).keys) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) continue;
    const jwk = entry as Record<string, unknown>;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    const parsed = parseJwkPublicKey(jwk);
    if (!parsed.ok) continue;
    keys.push({
      kid: typeof jwk.kid === 'string' ? jwk.kid : undefined,
      alg: typeof jwk.alg === 'string' ? jwk.alg : undefined,
      ...parsed.value,
    });
  }
  return keys;
}
