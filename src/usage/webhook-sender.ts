import { Pool } from 'undici';
import type { Clock } from '../core/clock.js';
import type { QuotaEvent } from '../core/quota-events.js';
import { signWebhook, webhookBody } from '../core/webhook-signature.js';

/** One configured endpoint, ready to sign for. */
export interface WebhookEndpoint {
  /** Its label (events.webhooks[].name, else its index): in metrics, the database and the admin API. */
  readonly name: string;
  /** Never logged nor used as a label: its query may hold a token. */
  readonly url: string;
  /** The HMAC key (webhookSigningKey of its secret). */
  readonly signingKey: Buffer;
  readonly types: ReadonlySet<string>;
  /** Longest one attempt may take, connecting to the end of the response body, ms. */
  readonly timeoutMs: number;
}

/** How one attempt went: a 2xx (`ok`), another status, or no answer (`status` null). */
export interface SendResult {
  readonly ok: boolean;
  readonly status: number | null;
  /** Why it failed: `http_503`, `timeout`, an error code (`ECONNREFUSED`); never a URL. */
  readonly error: string;
  readonly seconds: number;
}

/**
 * POSTs signed events to the endpoints, each through an undici Pool of its
 * own (never the proxy's upstream pools), at most `connections` at once per
 * endpoint. Every attempt is signed afresh (its `webhook-timestamp` is the
 * attempt's time, so receivers' replay windows accept a late retry) with the
 * same `webhook-id` and body. Redirects are not followed: a 3xx fails.
 */
export class WebhookSender {
  private readonly pools = new Map<string, Pool>();

  constructor(
    endpoints: readonly WebhookEndpoint[],
    connections: number,
    private readonly clock: Clock,
  ) {
    for (const endpoint of endpoints) {
      const { origin } = new URL(endpoint.url);
      this.pools.set(endpoint.name, new Pool(origin, { connections, connectTimeout: endpoint.timeoutMs, keepAliveTimeout: 4_000 }));
    }
  }

  /** One attempt to deliver `event` to `endpoint`; never rejects. */
  async send(endpoint: WebhookEndpoint, event: QuotaEvent): Promise<SendResult> {
    const pool = this.pools.get(endpoint.name);
    if (pool === undefined) return { ok: false, status: null, error: 'unknown_endpoint', seconds: 0 };
    const url = new URL(endpoint.url);
    const body = webhookBody(event);
    const headers = signWebhook(endpoint.signingKey, event.id, Math.floor(this.clock.now() / 1000), body);
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const response = await pool.request({
        method: 'POST',
        path: `${url.pathname}${url.search}`,
        headers: { ...headers, 'content-type': 'application/json', 'user-agent': 'quotagate-webhooks' },
        body,
        signal: AbortSignal.timeout(endpoint.timeoutMs),
        headersTimeout: endpoint.timeoutMs,
        bodyTimeout: endpoint.timeoutMs,
      });
      // The receiver's answer is not kept; reading it frees the connection.
      await response.body.dump({ limit: 64 * 1024 });
      const ok = response.statusCode >= 200 && response.statusCode < 300;
      return { ok, status: response.statusCode, error: ok ? '' : `http_${response.statusCode}`, seconds: seconds() };
    } catch (error) {
      return { ok: false, status: null, error: failureOf(error), seconds: seconds() };
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pools.values()].map((pool) => pool.destroy()));
  }
}

/** A short, URL-free reason for a failed attempt. */
function failureOf(error: unknown): string {
  if (!(error instanceof Error)) return 'error';
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'timeout';
  const code = (error as { code?: unknown }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'timeout';
  return typeof code === 'string' ? code.slice(0, 64) : error.name.slice(0, 64);
}
