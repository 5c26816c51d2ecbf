import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { GatewayError } from '../core/errors.js';
import { PROBLEM_CONTENT_TYPE, problemBody } from '../core/problem.js';
import type { HeaderPair } from '../core/ratelimit-headers.js';

/**
 * The one place an error becomes an HTTP response: RFC 9457 problem+json
 * with the error's status, code and extensions, plus its headers and any
 * `extraHeaders` (the rate-limit headers of a limited route).
 */
export function problemResponse(
  c: Context,
  error: GatewayError,
  extraHeaders: readonly HeaderPair[] = [],
): Response {
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store' };
  for (const [name, value] of extraHeaders) headers[name] = value;
  for (const [name, value] of error.headers) headers[name] = value;
  const body = problemBody(error.code, error.detail, error.extensions, error.status);
  return c.body(JSON.stringify(body), error.status as ContentfulStatusCode, headers);
}

/** Any thrown value as a GatewayError; unknown faults become `internal_error`. */
export function asGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  return new GatewayError('internal_error', 'The gateway failed to handle this request.');
}
