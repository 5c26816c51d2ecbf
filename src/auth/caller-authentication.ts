import type { AuthFailureReason, AuthResult, Authenticator, PresentedCredentials } from './authenticator.js';
import { type ErrorCode, GatewayError } from '../core/errors.js';

/** The `auth` modes of a route that take credentials. */
export type CredentialMode = 'api_key' | 'jwt' | 'any';

/** What checking a caller's credentials needs. */
export interface CallerAuthentication {
  /** The authenticator of each mode; `jwt` and `any` exist only when token issuers are configured. */
  readonly authenticators: Readonly<Partial<Record<CredentialMode, Authenticator>>>;
  /** Called once per refused request (authentication or scope), for the auth-failures metric. */
  readonly onAuthFailure: (reason: AuthFailureReason | 'insufficient_scope') => void;
}

const MISSING_DETAIL: Record<CredentialMode, string> = {
  api_key: 'This route needs an API key in the X-API-Key header or as Authorization: Bearer <key>.',
  jwt: 'This route needs a token as Authorization: Bearer <token>.',
  any: 'This route needs an API key (X-API-Key) or a token (Authorization: Bearer <token>).',
};

/** RFC 6750 §3: a bare challenge when no credential came, `error="invalid_token"` for a bad token. */
const BEARER = 'Bearer';
const INVALID_TOKEN = 'Bearer error="invalid_token"';

/** Each refusal's code, detail and `WWW-Authenticate` challenge (none for an outage). */
const FAILURES: Record<AuthFailureReason, { code: ErrorCode; detail: string; challenge?: string }> = {
  missing: { code: 'missing_credentials', detail: MISSING_DETAIL.api_key, challenge: BEARER },
  malformed: { code: 'malformed_api_key', detail: 'The API key is not in the expected format.', challenge: BEARER },
  unknown: { code: 'invalid_api_key', detail: 'The API key is not valid.', challenge: BEARER },
  revoked: { code: 'key_revoked', detail: 'The API key has been revoked.', challenge: BEARER },
  expired: { code: 'key_expired', detail: 'The API key has expired.', challenge: BEARER },
  suspended: { code: 'subject_suspended', detail: 'The account this API key belongs to is suspended.' },
  key_store_unavailable: { code: 'store_unavailable', detail: 'API keys cannot be checked now; retry later.' },
  throttled: { code: 'auth_throttled', detail: 'Too many unknown API keys from this address; retry in a second.' },
  token_too_large: { code: 'token_too_large', detail: 'The token is longer than this gateway accepts.', challenge: INVALID_TOKEN },
  token_malformed: { code: 'token_malformed', detail: 'The token is not a well-formed JWT.', challenge: INVALID_TOKEN },
  token_algorithm_not_allowed: {
    code: 'token_algorithm_not_allowed',
    detail: 'The token is signed with an algorithm that is not accepted.',
    challenge: INVALID_TOKEN,
  },
  token_issuer_invalid: { code: 'token_issuer_invalid', detail: 'The token is not from an accepted issuer.', challenge: INVALID_TOKEN },
  token_audience_invalid: { code: 'token_audience_invalid', detail: 'The token is not meant for this API.', challenge: INVALID_TOKEN },
  token_expired: { code: 'token_expired', detail: 'The token has expired.', challenge: INVALID_TOKEN },
  token_not_yet_valid: { code: 'token_not_yet_valid', detail: 'The token is not valid yet.', challenge: INVALID_TOKEN },
  token_signature_invalid: { code: 'token_signature_invalid', detail: 'The token signature does not verify.', challenge: INVALID_TOKEN },
  token_key_unknown: { code: 'token_key_unknown', detail: 'The token is signed with an unknown key.', challenge: INVALID_TOKEN },
  token_claims_invalid: {
    code: 'token_claims_invalid',
    detail: 'The token lacks a required claim (exp, iat when a maximum age is set, or the subject) or has one of the wrong type.',
    challenge: INVALID_TOKEN,
  },
  token_too_old: { code: 'token_too_old', detail: 'The token was issued too long ago; get a fresh one.', challenge: INVALID_TOKEN },
  token_type_invalid: { code: 'token_type_invalid', detail: 'The token is not of the type this API accepts (typ).', challenge: INVALID_TOKEN },
  invalid_token: { code: 'invalid_token', detail: 'The token cannot be verified.', challenge: INVALID_TOKEN },
  jwks_unavailable: { code: 'jwks_unavailable', detail: 'The keys to verify the token cannot be fetched now; retry later.' },
};

/**
 * The caller's credentials checked by the authenticator of `mode`: the
 * authenticated result, or the refusal thrown as a GatewayError that the
 * pipeline answers (401 with its code and challenge, 403 for a suspended
 * subject's key, 503 while token keys or the key store cannot be reached,
 * 429 `auth_throttled` with `Retry-After: 1`). Shared by the identify step
 * and the endpoints the gateway answers itself (`GET /_quotagate/usage`), so
 * credentials are checked one way. `routeName` only names a misconfiguration
 * (a mode without an authenticator: a programming fault, thrown as Error).
 * Synchronous (returning or throwing) when the authenticator answered
 * without I/O; a promise otherwise.
 */
export function authenticateCaller(
  credentials: PresentedCredentials,
  mode: CredentialMode,
  options: CallerAuthentication,
  routeName: string,
): Authenticated | Promise<Authenticated> {
  const authenticator = options.authenticators[mode];
  if (authenticator === undefined) throw new Error(`route "${routeName}" uses auth: ${mode}, which has no authenticator`);
  const result = authenticator.authenticate(credentials);
  // A cached key answers synchronously: no promise, and a refusal thrown here.
  if (result instanceof Promise) return result.then((settled) => accepted(settled, mode, options));
  return accepted(result, mode, options);
}

/** An authenticated result. */
export type Authenticated = Extract<AuthResult, { ok: true }>;

/** The result if it authenticated, else its refusal as a GatewayError (counted once). */
function accepted(result: AuthResult, mode: CredentialMode, options: CallerAuthentication): Authenticated {
  if (!result.ok) {
    options.onAuthFailure(result.reason);
    const failure = FAILURES[result.reason];
    const detail = result.reason === 'missing' ? MISSING_DETAIL[mode] : failure.detail;
    const headers: ReadonlyArray<readonly [string, string]> =
      result.reason === 'throttled' ? RETRY_NEXT_SECOND : failure.challenge === undefined ? [] : [['www-authenticate', failure.challenge]];
    throw new GatewayError(failure.code, detail, {}, headers);
  }
  return result;
}

/** The throttle's budget is per second: the next one has a fresh budget. */
const RETRY_NEXT_SECOND: ReadonlyArray<readonly [string, string]> = [['retry-after', '1']];
