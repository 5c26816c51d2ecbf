import type { JWTPayload } from 'jose';
import type { JwtConfig, JwtIssuerConfig } from '../config/jwt-schema.js';
import type { Clock } from '../core/clock.js';
import type { AuthResult, Authenticator, PresentedCredentials } from './authenticator.js';
import { presentedBearerToken } from './credentials.js';
import { JwksCache, type JwksCacheOptions } from './jwks-cache.js';
import type { JwksFetcher } from './jwks-fetch.js';
import { JwtVerifier, type TrustedIssuer } from './jwt-verifier.js';
import type { KeySource } from './key-source.js';
import { StaticKeySource } from './static-key-source.js';
import { type ClaimsMapping, identityFromClaims } from './token-claims.js';
import { TokenCache } from './token-cache.js';

export interface JwtAuthenticatorOptions {
  readonly verifier: JwtVerifier;
  readonly mapping: ClaimsMapping;
  /** Longest token accepted; a longer one is refused before it is hashed or parsed. */
  readonly maxTokenBytes: number;
  /** Absent: every request is verified. */
  readonly cache?: TokenCache | undefined;
  /** Called on each cache lookup (not when there is no cache), for the token-cache metric. */
  readonly onCacheLookup?: ((result: 'hit' | 'miss') => void) | undefined;
}

/**
 * Authenticates `Authorization: Bearer <JWT>`: size check, then the cache of
 * verified tokens, then full verification and the claims → identity mapping.
 * The identity's subject is the token's subject claim, counted exactly like
 * an API key's subject; it carries no key id.
 */
export class JwtAuthenticator implements Authenticator {
  constructor(private readonly options: JwtAuthenticatorOptions) {}

  async authenticate({ authorization }: PresentedCredentials): Promise<AuthResult> {
    const token = presentedBearerToken(authorization);
    if (token === undefined) return { ok: false, reason: 'missing' };
    if (token.length > this.options.maxTokenBytes) return { ok: false, reason: 'token_too_large' };
    const cached = this.options.cache?.get(token);
    if (this.options.cache !== undefined) this.options.onCacheLookup?.(cached === undefined ? 'miss' : 'hit');
    if (cached !== undefined) return { ok: true, ...cached, credentialHeader: 'authorization' };

    const verified = await this.options.verifier.verify(token);
    if (!verified.ok) return { ok: false, reason: verified.reason };
    const mapped = identityFromClaims(verified.claims, verified.issuer, this.options.mapping);
    if (!mapped.ok) return { ok: false, reason: 'token_claims_invalid' };
    const result = { identity: mapped.identity, scopes: mapped.scopes };
    this.options.cache?.set(token, result, cacheableUntilMs(verified.claims, verified.issuer));
    return { ok: true, ...result, credentialHeader: 'authorization' };
  }
}

/**
 * Until when a verified token may be answered from the cache, in epoch ms:
 * its `exp` (required and checked by the verifier, so a number here), or the
 * end of its `max_token_age_s` when that comes first.
 */
function cacheableUntilMs(claims: JWTPayload, issuer: JwtIssuerConfig): number {
  const expiresS = claims.exp ?? 0;
  const maxAgeS = issuer.max_token_age_s;
  return (maxAgeS === undefined || claims.iat === undefined ? expiresS : Math.min(expiresS, claims.iat + maxAgeS)) * 1000;
}

/** What createJwtAuthenticator needs besides `auth.jwt`. */
export interface JwtAuthenticatorDeps {
  /** Names of the plans under `plans:`. */
  readonly planNames: Iterable<string>;
  readonly clock: Clock;
  /** Default: an HTTP GET with undici. */
  readonly fetchJwks?: JwksFetcher;
  /** Called after every JWKS fetch attempt of an issuer (for metrics and logs). */
  readonly onJwksFetch?: (issuer: string, outcome: Parameters<NonNullable<JwksCacheOptions['onFetch']>>[0]) => void;
  /** Called on each token cache lookup (for metrics). */
  readonly onTokenCacheLookup?: (result: 'hit' | 'miss') => void;
}

/**
 * The authenticator for `auth.jwt`: one key source per issuer (a JwksCache
 * for `jwks_url`, a StaticKeySource for `keys`) and the token cache.
 * Undefined when no issuer is configured. Does no I/O until a token arrives.
 */
export function createJwtAuthenticator(config: JwtConfig, deps: JwtAuthenticatorDeps): JwtAuthenticator | undefined {
  if (config.issuers.length === 0) return undefined;
  const issuers: TrustedIssuer[] = config.issuers.map((issuer) => {
    let keys: KeySource;
    if (issuer.jwks_url !== undefined) {
      keys = new JwksCache({
        url: issuer.jwks_url,
        cooldownMs: issuer.jwks_cooldown_ms,
        refreshMs: issuer.jwks_refresh_ms,
        maxStaleMs: issuer.jwks_max_stale_ms,
        timeoutMs: issuer.jwks_timeout_ms,
        clock: deps.clock,
        fetchDocument: deps.fetchJwks,
        onFetch: (outcome) => deps.onJwksFetch?.(issuer.issuer, outcome),
      });
    } else {
      keys = new StaticKeySource(issuer.keys ?? []);
    }
    return { config: issuer, keys };
  });
  const { max_entries: maxEntries, ttl_ms: ttlMs } = config.token_cache;
  return new JwtAuthenticator({
    verifier: new JwtVerifier(issuers, deps.clock),
    mapping: { plans: new Set(deps.planNames), defaultPlan: config.default_plan },
    maxTokenBytes: config.max_token_bytes,
    cache: maxEntries > 0 ? new TokenCache({ maxEntries, ttlMs, clock: deps.clock }) : undefined,
    onCacheLookup: deps.onTokenCacheLookup,
  });
}
