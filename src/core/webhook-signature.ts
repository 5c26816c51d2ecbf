import { createHmac } from 'node:crypto';
import type { QuotaEvent } from './quota-events.js';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com, the spec's
 * "Signature scheme"): what a receiver verifies with any of the spec's
 * published libraries (npm `standardwebhooks`, Svix's).
 *
 * - `webhook-id`: the event id (stable across retries and redeliveries, so a
 *   receiver dedupes by it);
 * - `webhook-timestamp`: when this attempt was signed, integer epoch seconds
 *   (receivers refuse one too far from their clock: each attempt is signed
 *   afresh);
 * - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`,
 *   keyed with the bytes of the secret after its `whsec_` prefix, base64-decoded.
 */

/** The prefix of a Standard Webhooks secret. */
const SECRET_PREFIX = 'whsec_';
/** Fewest and most bytes of a decoded secret (the spec recommends 24–64). */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

/** Why `secret` is not a usable Standard Webhooks secret, or undefined when it is. Never repeats the secret. */
export function webhookSecretProblem(secret: string): string | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return `expected a Standard Webhooks secret: "${SECRET_PREFIX}" followed by base64`;
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return `expected base64 after "${SECRET_PREFIX}"`;
  const bytes = Buffer.from(encoded, 'base64').length;
  if (bytes < MIN_SECRET_BYTES || bytes > MAX_SECRET_BYTES) {
    return `expected ${MIN_SECRET_BYTES}–${MAX_SECRET_BYTES} bytes after "${SECRET_PREFIX}", got ${bytes}`;
  }
  return undefined;
}

/** The HMAC key of a secret that webhookSecretProblem accepts. */
export function webhookSigningKey(secret: string): Buffer {
  const problem = webhookSecretProblem(secret);
  if (problem !== undefined) throw new Error(`invalid webhook secret: ${problem}`);
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

/**
 * The body posted for `event`: `{"type","timestamp","data"}`, `timestamp`
 * the detection time as ISO 8601 UTC. The same bytes on every attempt.
 */
export function webhookBody(event: QuotaEvent): string {
  return JSON.stringify({ type: event.type, timestamp: new Date(event.timestampMs).toISOString(), data: event.data });
}

/** The three Standard Webhooks headers of one attempt. */
export interface WebhookHeaders {
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  readonly 'webhook-signature': string;
}

/**
 * The headers that sign `body` as message `id` at `timestampSeconds`
 * (epoch seconds, an integer) with `key` (webhookSigningKey).
 */
export function signWebhook(key: Buffer, id: string, timestampSeconds: number, body: string): WebhookHeaders {
  const timestamp = String(Math.floor(timestampSeconds));
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}
