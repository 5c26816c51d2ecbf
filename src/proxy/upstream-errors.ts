import { GatewayError } from '../core/errors.js';
import { BodyTooLargeError, CLOSE_CONNECTION, payloadTooLarge } from './body-limit.js';
import { BodyTooSlowError } from './body-pace.js';
import { UpstreamBusyError } from './connection-slots.js';

/** undici codes of an upstream that did not answer in time. */
const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * undici codes that mean the gateway built a request undici refuses: a bug
 * here, not an upstream failure, so they keep their identity (and become 500).
 */
const PROGRAMMING_FAULT_CODES: ReadonlySet<string> = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

/** The `code` of an error from node or undici, when it has a string one. */
function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether `error` is undici giving up on a slow upstream (connect, headers or body timeout). */
export function isUpstreamTimeout(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && TIMEOUT_CODES.has(code);
}

/**
 * The answer for a failed exchange that had not yet written anything to the
 * client: 413 for a body over the limit, 408 for a body that arrives too
 * slowly, 503 when no upstream connection came free in time (with
 * `Retry-After`), 504 for an upstream timeout, 502 for
 * everything else the upstream or the network did (refused, reset, DNS, TLS,
 * a malformed response). The original error is the `cause`, for logs; the
 * `detail` a client sees names no address. Programming faults are returned
 * unchanged.
 *
 * @param closeConnection add `Connection: close` to the answer, because the
 *   client's request body was not read to its end.
 */
export function toGatewayError(error: unknown, closeConnection: boolean): Error {
  if (error instanceof BodyTooLargeError) return withCause(payloadTooLarge(error.maxBodyBytes), error);
  if (error instanceof BodyTooSlowError) return withCause(bodyTooSlow(error), error);
  if (error instanceof UpstreamBusyError) return withCause(upstreamBusy(closeConnection), error);
  const code = errorCode(error);
  if (code !== undefined && PROGRAMMING_FAULT_CODES.has(code) && error instanceof Error) return error;
  const headers = closeConnection ? CLOSE_CONNECTION : NO_HEADERS;
  const gatewayError =
    code !== undefined && TIMEOUT_CODES.has(code)
      ? new GatewayError('upstream_timeout', 'The upstream did not answer in time.', {}, headers)
      : new GatewayError('upstream_unavailable', 'The upstream could not be reached or gave an invalid answer.', {}, headers);
  return withCause(gatewayError, error);
}

const NO_HEADERS: ReadonlyArray<readonly [string, string]> = Object.freeze([]);
const RETRY_SOON: ReadonlyArray<readonly [string, string]> = Object.freeze([Object.freeze(['retry-after', '1'] as const)]);
const RETRY_SOON_AND_CLOSE: ReadonlyArray<readonly [string, string]> = Object.freeze([...RETRY_SOON, ...CLOSE_CONNECTION]);

/** The 408 answer for a body that stalled or trickled; the connection closes after it. */
function bodyTooSlow(error: BodyTooSlowError): GatewayError {
  const detail =
    error.why === 'idle'
      ? `The request body paused for more than ${error.limits.idleTimeoutMs} ms.`
      : `The request body arrived slower than ${error.limits.minBytesPerSecond} bytes per second.`;
  return new GatewayError('request_timeout', detail, {}, CLOSE_CONNECTION);
}

/** 503 for a request that found every connection to its upstream busy for `queue_timeout_ms`; worth a retry in a second. */
function upstreamBusy(closeConnection: boolean): GatewayError {
  return new GatewayError(
    'upstream_busy',
    'Every connection to the upstream is busy; retry shortly.',
    {},
    closeConnection ? RETRY_SOON_AND_CLOSE : RETRY_SOON,
  );
}

function withCause(error: GatewayError, cause: unknown): GatewayError {
  error.cause = cause;
  return error;
}
