import { GatewayError } from '../core/errors.js';
import { type IdempotencyClaim, requestFingerprint, type StoredResponse } from '../core/idempotency.js';
import { readWholeBody } from '../proxy/body-limit.js';
import { type BodyPaceLimits, BodyTooSlowError } from '../proxy/body-pace.js';
import { toGatewayError } from '../proxy/upstream-errors.js';
import type { Exchange } from './exchange.js';

/** Longest accepted Idempotency-Key, in characters. */
const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/** Response header marking an answer replayed from an Idempotency-Key's record. */
const REPLAYED_HEADER = 'idempotency-replayed';

/** `Retry-After` of a 409 `idempotency_key_in_use`, in seconds. */
const IN_FLIGHT_RETRY_AFTER_SECONDS = 1;

/** The client's Idempotency-Key (or the legacy X-Idempotency-Key), if it sent one. */
export function idempotencyKeyOf(exchange: Exchange): string | undefined {
  return exchange.header('idempotency-key') ?? exchange.header('x-idempotency-key');
}

/** A request carrying an Idempotency-Key, read and fingerprinted. */
export interface IdempotentRequest {
  readonly claim: IdempotencyClaim;
  /** The whole body, to send upstream as it is. */
  readonly body: Buffer;
}

/**
 * Checks the key, reads the body (at most `maxBodyBytes`) and fingerprints
 * the request: method, route, path and query as forwarded, body digest.
 *
 * @param pace `proxy.body_idle_timeout_ms` and `proxy.body_min_bytes_per_s`.
 * @throws GatewayError `idempotency_key_invalid` (400), `payload_too_large` (413),
 *   `request_timeout` (408, the body stalled or trickled).
 */
export async function readIdempotentRequest(
  exchange: Exchange,
  key: string,
  maxBodyBytes: number,
  pace: BodyPaceLimits,
): Promise<IdempotentRequest> {
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !VISIBLE_ASCII.test(key)) {
    throw new GatewayError(
      'idempotency_key_invalid',
      `The Idempotency-Key must be 1–${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters.`,
    );
  }
  const incoming = exchange.req;
  let body: Buffer;
  try {
    body = await readWholeBody(incoming, maxBodyBytes, pace);
  } catch (error) {
    // A stalled or trickling body: 408 request_timeout, as when it streams upstream.
    throw error instanceof BodyTooSlowError ? toGatewayError(error, true) : error;
  }
  const fingerprint = requestFingerprint({
    method: incoming.method ?? 'GET',
    route: exchange.route!.config.name,
    pathAndQuery: exchange.forwardPath!,
    body,
  });
  return { claim: { key, fingerprint }, body };
}

/** Statuses whose responses carry no body (RFC 9110 §6.4.1). */
function bodiless(status: number, method: string): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
}

/**
 * Answers with a stored response: its status, headers and body, plus this
 * exchange's `Content-Length` and `X-Request-Id`, and `Idempotency-Replayed: true`.
 */
export function replayStoredResponse(exchange: Exchange, response: StoredResponse): void {
  const outgoing = exchange.res;
  const headers: string[] = [];
  for (const [name, value] of response.headers) headers.push(name, value);
  const withBody = !bodiless(response.status, exchange.req.method ?? 'GET');
  if (withBody) headers.push('content-length', String(response.body.length));
  headers.push('x-request-id', exchange.requestId);
  headers.push(REPLAYED_HEADER, 'true');
  outgoing.writeHead(response.status, headers);
  outgoing.end(withBody ? response.body : undefined);
}

/** The 409 for a key whose first request has not completed. */
export function keyInUse(): GatewayError {
  return new GatewayError(
    'idempotency_key_in_use',
    'A request with this Idempotency-Key is still in progress; retry once it has completed.',
    {},
    [['retry-after', String(IN_FLIGHT_RETRY_AFTER_SECONDS)]],
  );
}

/** The 422 for a key that belongs to a request with another method, route, path, query or body. */
export function keyReused(): GatewayError {
  return new GatewayError(
    'idempotency_key_reused',
    'This Idempotency-Key was used for a different request (method, path, query or body); use a new key for a new request.',
  );
}
