import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { ChargeReceipt } from '../core/decision.js';
import type { Identity } from '../core/identity.js';
import type { ResponseCapture } from '../proxy/response-capture.js';
import type { HeaderPair } from '../core/ratelimit-headers.js';
import type { CompiledRoute } from './route-table.js';

/**
 * Context variables of the proxy listener, each set by the middleware named.
 * Read them with `c.get(name)`: hono's `c.var` builds a new object on every
 * access, which the hot path should not pay for.
 */
export interface ProxyVariables {
  /** requestId: the request's id (the client's X-Request-Id when well-formed, else a new UUID). */
  requestId: string;
  /** matchRoute: the route this request matched. */
  route: CompiledRoute;
  /** matchRoute: the normalized path plus the original query, to forward. */
  forwardPath: string;
  /** matchRoute: true when the method override headers must not reach the upstream; unset otherwise. */
  methodOverrideWithheld: boolean;
  /** identify: who is charged. */
  identity: Identity;
  /** identify: lowercase request headers that carried the credential; never forwarded. */
  credentialHeaders: readonly string[];
  /** limit: rate-limit headers for the response (empty when the route hides them). */
  rateLimitHeaders: readonly HeaderPair[];
  /** limit: what the request was charged, when it was; forward refunds it per `refund_on`. */
  receipt: ChargeReceipt | undefined;
  /**
   * limit: a request with an Idempotency-Key has its body read already
   * (sent upstream as it is), and when admitted its response is captured
   * for replay.
   */
  idempotentForward: IdempotentForward | undefined;
  /** limit: how the limit decided, for the access log (forward may set `refunded`). */
  decision: LimitDecisionKind;
  /** forward: the upstream's time to response headers, in ms. */
  upstreamMs: number;
}

/**
 * What the limit middleware decided: `allowed`, `denied` (by the store),
 * `local-deny`, `fail-open`, `fail-closed`, `replayed` (answered with an
 * Idempotency-Key's stored response); forward turns `allowed` into
 * `refunded` when it gave the charge back (`refund_on`, or a request the
 * gateway refused after charging it, such as a 413 on a chunked body).
 */
export type LimitDecisionKind = 'allowed' | 'denied' | 'local-deny' | 'fail-open' | 'fail-closed' | 'replayed' | 'refunded';

/** See ProxyVariables.idempotentForward. */
export interface IdempotentForward {
  readonly body: Buffer;
  readonly capture: ResponseCapture | undefined;
}

/** Bindings are absent when the app is driven in-process with `app.request()`. */
export interface ProxyEnv {
  Bindings: Partial<HttpBindings>;
  Variables: ProxyVariables;
}

export type ProxyContext = Context<ProxyEnv>;

/**
 * A request header by lowercase name. Reads node's parsed headers directly
 * when served by @hono/node-server (no Headers object is built on the hot
 * path), and the Web Request otherwise.
 */
export function requestHeader(c: ProxyContext, lowercaseName: string): string | undefined {
  const incoming = c.env?.incoming;
  if (incoming === undefined) return c.req.header(lowercaseName);
  const value = incoming.headers[lowercaseName];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The outcome label of a request answered without an error: `replayed` (from an Idempotency-Key's record) or `forwarded`. */
export function answeredOutcome(decision: LimitDecisionKind | undefined): 'forwarded' | 'replayed' {
  return decision === 'replayed' ? 'replayed' : 'forwarded';
}
