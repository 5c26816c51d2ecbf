import { type JWTPayload, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JwtIssuerConfig } from '../config/jwt-schema.js';
import type { Clock } from '../core/clock.js';
import { isJwtAlgorithm } from '../core/jwt-algorithms.js';
import type { TokenFailure } from './authenticator.js';
import type { KeySource } from './key-source.js';

/** A trusted issuer: its settings and where its keys come from. */
export interface TrustedIssuer {
  readonly config: JwtIssuerConfig;
  readonly keys: KeySource;
}

export type TokenVerification =
  | { readonly ok: true; readonly claims: JWTPayload; readonly issuer: JwtIssuerConfig }
  | { readonly ok: false; readonly reason: VerificationFailure };

/** Every token failure but the size check, which is the caller's. */
export type VerificationFailure = Exclude<TokenFailure, 'token_too_large'>;

/** Three base64url segments; the signature may be empty (so `alg: none` is named as such, not as malformed). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Verifies compact JWS tokens against the configured issuers. In order:
 * shape → algorithm is one quotagate supports → `iss` picks the issuer (no
 * match: `token_issuer_invalid`) → algorithm in that issuer's allowlist →
 * key by `kid` from the issuer's own key source (never from `jku`, `x5u` or
 * an embedded `jwk`) → signature, `aud`, `exp` (required), `nbf` with jose →
 * `iat` not in the future → with `max_token_age_s`, `iat` (then required) no
 * older than that → with `typ`, the header's `typ`. Times are checked
 * against the injected clock with the issuer's tolerance.
 *
 * The caller bounds the token's size before calling. Never rejects for a bad
 * token: each failure is a value naming its reason.
 */
export class JwtVerifier {
  private readonly issuers: ReadonlyMap<string, TrustedIssuer>;

  constructor(
    issuers: readonly TrustedIssuer[],
    private readonly clock: Clock,
  ) {
    this.issuers = new Map(issuers.map((issuer) => [issuer.config.issuer, issuer]));
  }

  async verify(token: string): Promise<TokenVerification> {
    if (!COMPACT_JWS.test(token)) return { ok: false, reason: 'token_malformed' };
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch {
      return { ok: false, reason: 'token_malformed' };
    }
    const alg = header.alg;
    if (!isJwtAlgorithm(alg)) return { ok: false, reason: 'token_algorithm_not_allowed' };
    const issuer = typeof unverified.iss === 'string' ? this.issuers.get(unverified.iss) : undefined;
    if (issuer === undefined) return { ok: false, reason: 'token_issuer_invalid' };
    const config = issuer.config;
    if (!config.algorithms.includes(alg)) return { ok: false, reason: 'token_algorithm_not_allowed' };
    if (header.kid !== undefined && typeof header.kid !== 'string') return { ok: false, reason: 'token_malformed' };

    const lookup = await issuer.keys.keyFor(header.kid, alg);
    if (!lookup.found) return { ok: false, reason: lookup.reason === 'unavailable' ? 'jwks_unavailable' : 'token_key_unknown' };

    const nowMs = this.clock.now();
    const toleranceSeconds = config.clock_tolerance_ms / 1000;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, lookup.key, {
        algorithms: [alg],
        issuer: config.issuer,
        audience: config.audience,
        requiredClaims: ['exp'],
        clockTolerance: toleranceSeconds,
        currentDate: new Date(nowMs),
      }));
    } catch (error) {
      return { ok: false, reason: failureOf(error) };
    }
    if (claims.iat !== undefined) {
      if (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat)) return { ok: false, reason: 'token_claims_invalid' };
      if (claims.iat > Math.floor(nowMs / 1000) + toleranceSeconds) return { ok: false, reason: 'token_not_yet_valid' };
    }
    if (config.max_token_age_s !== undefined) {
      if (claims.iat === undefined) return { ok: false, reason: 'token_claims_invalid' };
      if (nowMs / 1000 - claims.iat > config.max_token_age_s + toleranceSeconds) return { ok: false, reason: 'token_too_old' };
    }
    if (config.typ !== undefined && (typeof header.typ !== 'string' || mediaType(header.typ) !== mediaType(config.typ))) {
      return { ok: false, reason: 'token_type_invalid' };
    }
    return { ok: true, claims, issuer: config };
  }
}

/** A `typ` value as RFC 8725 §3.11 compares it: case-insensitive, `application/` optional. */
function mediaType(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

/** The reason for one of jose's verification errors; an error that is not jose's is a fault and rethrown. */
function failureOf(error: unknown): VerificationFailure {
  if (error instanceof errors.JWTExpired) return 'token_expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return 'token_audience_invalid';
    if (error.claim === 'iss') return 'token_issuer_invalid';
    if (error.claim === 'nbf' && error.reason === 'check_failed') return 'token_not_yet_valid';
    return 'token_claims_invalid';
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token_signature_invalid';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token_algorithm_not_allowed';
  if (error instanceof errors.JOSEError) return 'token_malformed';
  // jose signals a key that cannot serve the algorithm (RSA under 2048 bits, a
  // pinned `alg` or `use` that disagrees) with a TypeError.
  if (error instanceof TypeError) return 'invalid_token';
  throw error;
}
