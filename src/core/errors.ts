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
  rate_limited: 429,
  quota_exceeded: 429,
  route_not_found: 404,
  payload_too_large: 413,
  store_unavailable: 503,
  upstream_unavailable: 502,
  upstream_timeout: 504,
  internal_error: 500,
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
  rate_limited: 'Request cannot be satisfied as assigned quota has been exceeded',
  quota_exceeded: 'Request cannot be satisfied as assigned quota has been exceeded',
  route_not_found: 'No route matches this request',
  payload_too_large: 'Request body too large',
  store_unavailable: 'Limit store unavailable',
  upstream_unavailable: 'Upstream unavailable',
  upstream_timeout: 'Upstream timed out',
  internal_error: 'Internal error',
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
  ) {
    super(detail);
    this.name = 'GatewayError';
    this.status = ERROR_STATUS[code];
  }
}
