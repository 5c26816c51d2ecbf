import type { Identity } from '../core/identity.js';

/** The credential-bearing headers of a request, as sent (undefined when absent). */
export interface PresentedCredentials {
  readonly xApiKey: string | undefined;
  readonly authorization: string | undefined;
  /** The client's address (trusted proxies applied), for the unknown-key throttle; computed only when a lookup would query. */
  readonly clientAddress?: () => string;
}

/**
 * Why an API key was refused: none presented, malformed, unknown, revoked,
 * expired, its subject suspended, the key store unreachable (503), or the
 * client address past its budget of unknown-key lookups (429).
 */
export type ApiKeyFailure =
  | 'missing'
  | 'malformed'
  | 'unknown'
  | 'revoked'
  | 'expired'
  | 'suspended'
  | 'key_store_unavailable'
  | 'throttled';

/**
 * Why a bearer token was refused. Each is also the problem `code` the caller
 * sees and the `reason` label of the auth-failures metric.
 */
export type TokenFailure =
  | 'token_too_large'
  | 'token_malformed'
  | 'token_algorithm_not_allowed'
  | 'token_issuer_invalid'
  | 'token_audience_invalid'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'token_signature_invalid'
  | 'token_key_unknown'
  | 'token_claims_invalid'
  /** Issued longer ago than the issuer's `max_token_age_s`. */
  | 'token_too_old'
  /** Its `typ` header is not the issuer's `typ`. */
  | 'token_type_invalid'
  /** A key that cannot verify at all (e.g. an RSA modulus under 2048 bits in the JWKS). */
  | 'invalid_token'
  /** No key set could be fetched yet; not the caller's fault (503). */
  | 'jwks_unavailable';

export type AuthFailureReason = ApiKeyFailure | TokenFailure;

export type AuthResult =
  | {
      readonly ok: true;
      readonly identity: Identity;
      /** Lowercase name of the header that carried the credential; it is not forwarded. */
      readonly credentialHeader: 'x-api-key' | 'authorization';
      /** Scopes the credential grants: a token's scopes claim, or an API key's stored scopes. */
      readonly scopes: ReadonlySet<string>;
    }
  | { readonly ok: false; readonly reason: AuthFailureReason };

/**
 * Turns a request's credentials into an Identity, or says why it cannot.
 * A refusal is a value; it rejects only on infrastructure faults.
 * Implementations: ApiKeyAuthenticator, JwtAuthenticator and
 * KeyOrTokenAuthenticator (for `auth: any`).
 */
export interface Authenticator {
  /** The result itself when it needed no I/O (a cached API key), else a promise of it. */
  authenticate(credentials: PresentedCredentials): AuthResult | Promise<AuthResult>;
}

export const NO_SCOPES: ReadonlySet<string> = new Set();
