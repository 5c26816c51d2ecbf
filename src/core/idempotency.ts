import { createHash } from 'node:crypto';
import type { Admission, Denial } from './decision.js';

/**
 * Idempotency-Key (IETF draft-ietf-httpapi-idempotency-key-header, as Stripe
 * does it): a key is scoped to the subject and bound to a fingerprint of the
 * request it admitted. A repeat with the same fingerprint is answered from
 * the stored response, never forwarded and never charged; while the first
 * is in flight a repeat is refused (409); the same key with another
 * fingerprint is refused (422).
 */

/** What the client sends: the key and a fingerprint of the request carrying it. */
export interface IdempotencyClaim {
  /** The client's Idempotency-Key, 1–255 visible ASCII characters. */
  readonly key: string;
  /** {@link requestFingerprint} of the request. */
  readonly fingerprint: string;
}

/**
 * Names the in-flight mark an admission left, so that only this attempt can
 * complete or release it (not a later one that took the key over after the
 * mark expired).
 */
export interface IdempotencyTicket {
  readonly subject: string;
  readonly key: string;
  /** Random id of this attempt. */
  readonly attempt: string;
}

/** A completed response kept for replay: what the client got, minus per-exchange fields. */
export interface StoredResponse {
  readonly status: number;
  /**
   * Response fields as `[name, value]` pairs in the order sent (lowercase
   * names; repeated names repeat): the upstream's end-to-end headers and the
   * gateway's rate-limit headers of the first answer. Never `content-length`
   * or `x-request-id`, which belong to each exchange.
   */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
}

/**
 * The store's answer to a request with an Idempotency-Key:
 * - `admitted`: no record existed; the request was charged and its key marked
 *   in flight under `ticket`;
 * - `denied`: no record existed and a policy had no room; nothing was written;
 * - `replay`: an earlier request with this fingerprint completed; nothing was
 *   charged;
 * - `in-flight`: an earlier request with this key has not completed yet;
 * - `reused`: the key belongs to a request with another fingerprint.
 */
export type IdempotentDecision =
  | { readonly kind: 'admitted'; readonly admission: Admission; readonly ticket: IdempotencyTicket }
  | { readonly kind: 'denied'; readonly denial: Denial }
  | { readonly kind: 'replay'; readonly response: StoredResponse }
  | { readonly kind: 'in-flight' }
  | { readonly kind: 'reused' };

/** The parts of a request its fingerprint covers. */
export interface FingerprintedRequest {
  /** Uppercase method token. */
  readonly method: string;
  /** Name of the matched route. */
  readonly route: string;
  /** Path (normalized, as forwarded) and query, exactly as forwarded. */
  readonly pathAndQuery: string;
  /** The whole request body; empty when there is none. */
  readonly body: Uint8Array;
}

/**
 * The fingerprint of a request: lowercase hex SHA-256 over the method, the
 * route name, the path and query, and the hex SHA-256 of the body, joined by
 * NUL (none of the first three can hold one, so two different requests never
 * join to the same text).
 */
export function requestFingerprint(request: FingerprintedRequest): string {
  const bodyDigest = createHash('sha256').update(request.body).digest('hex');
  return createHash('sha256')
    .update(`${request.method}\u0000${request.route}\u0000${request.pathAndQuery}\u0000${bodyDigest}`)
    .digest('hex');
}

/** Bytes a stored response takes, for the stores' size bounds (a fixed overhead per record, plus its contents). */
export function storedResponseBytes(response: StoredResponse): number {
  let bytes = response.body.length;
  for (const [name, value] of response.headers) bytes += name.length + value.length + 4;
  return bytes;
}
