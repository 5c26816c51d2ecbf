/**
 * Stable error codes and their HTTP statuses. Clients may rely on `code`;
 * the mapping to a response lives in one place (http/problem-response.ts).
 */
export const ERROR_STATUS = {
  bad_request: 400,
  missing_credentials: 401,
  malformed_api_key: 401,
  invalid_api_key: 401,
  key_revoked: 401,
  key_expired: 401,
  invalid_token: 401,
  token_too_large: 401,
  token_malformed: 401,
  token_algorithm_not_allowed: 401,
  token_issuer_invalid: 401,
  token_audience_invalid: 401,
  token_expired: 401,
  token_not_yet_valid: 401,
  token_signature_invalid: 401,
  token_key_unknown: 401,
  token_claims_invalid: 401,
  token_too_old: 401,
  token_type_invalid: 401,
  insufficient_scope: 403,
  subject_suspended: 403,
  subject_blocked: 403,
  jwks_unavailable: 503,
  rate_limited: 429,
  quota_exceeded: 429,
  idempotency_key_invalid: 400,
  idempotency_key_in_use: 409,
  idempotency_key_reused: 422,
  route_not_found: 404,
  payload_too_large: 413,
  request_timeout: 408,
  auth_throttled: 429,
  store_unavailable: 503,
  upstream_busy: 503,
  upstream_unavailable: 502,
  upstream_timeout: 504,
  internal_error: 500,
  // The admin API (admin listener).
  validation_failed: 400,
  admin_unauthorized: 401,
  admin_disabled: 404,
  subject_not_found: 404,
  key_not_found: 404,
  event_not_found: 404,
  subject_exists: 409,
  max_keys_reached: 409,
  key_not_rotatable: 409,
  usage_unavailable: 503,
  database_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const TITLES: Record<ErrorCode, string> = {
  bad_request: 'Bad request',
  missing_credentials: 'Credentials are required',
  malformed_api_key: 'Malformed API key',
  invalid_api_key: 'Invalid API key',
  key_revoked: 'API key revoked',
  key_expired: 'API key expired',
  invalid_token: 'Invalid token',
  token_too_large: 'Token too large',
  token_malformed: 'Malformed token',
  token_algorithm_not_allowed: 'Token algorithm not allowed',
  token_issuer_invalid: 'Token issuer not accepted',
  token_audience_invalid: 'Token audience not accepted',
  token_expired: 'Token expired',
  token_not_yet_valid: 'Token not yet valid',
  token_signature_invalid: 'Token signature invalid',
  token_key_unknown: 'Token signing key unknown',
  token_claims_invalid: 'Token claims invalid',
  token_too_old: 'Token too old',
  token_type_invalid: 'Token type not accepted',
  insufficient_scope: 'Insufficient scope',
  subject_suspended: 'Subject suspended',
  subject_blocked: 'Subject blocked',
  jwks_unavailable: 'Token keys unavailable',
  rate_limited: 'Request cannot be satisfied as assigned quota has been exceeded',
  quota_exceeded: 'Request cannot be satisfied as assigned quota has been exceeded',
  idempotency_key_invalid: 'Invalid idempotency key',
  idempotency_key_in_use: 'A request with this idempotency key is in progress',
  idempotency_key_reused: 'The idempotency key was used for another request',
  route_not_found: 'No route matches this request',
  payload_too_large: 'Request body too large',
  request_timeout: 'Request timeout',
  auth_throttled: 'Too many unknown API keys',
  store_unavailable: 'Limit store unavailable',
  upstream_busy: 'Upstream busy',
  upstream_unavailable: 'Upstream unavailable',
  upstream_timeout: 'Upstream timed out',
  internal_error: 'Internal error',
  validation_failed: 'The request is not valid',
  admin_unauthorized: 'Admin token required',
  admin_disabled: 'The admin API is disabled',
  subject_not_found: 'No such subject',
  key_not_found: 'No such API key',
  event_not_found: 'No such event',
  subject_exists: 'The subject exists',
  max_keys_reached: "The plan's key limit is reached",
  key_not_rotatable: 'The API key cannot be rotated',
  usage_unavailable: 'Usage unavailable',
  database_unavailable: 'Database unavailable',
};

export function titleOf(code: ErrorCode): string {
  return TITLES[code];
}

/**
 * A failure the gateway answers itself with problem+json. `extensions` are
 * extra members of the problem body; `headers` are added to the response.
 */
export class GatewayError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extensions: Readonly<Record<string, unknown>> = {},
    readonly headers: ReadonlyArray<readonly [string, string]> = [],
    /** Overrides the code's usual status (a plan may answer quota denials with 402). */
    status?: number,
  ) {
    super(detail);
    this.name = 'GatewayError';
    this.status = status ?? ERROR_STATUS[code];
  }
}
