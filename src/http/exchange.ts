import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SettledUnits } from '../core/cost-settlement.js';
import type { ChargeReceipt } from '../core/decision.js';
import type { Identity } from '../core/identity.js';
import type { HeaderPair } from '../core/ratelimit-headers.js';
import type { ResponseCapture } from '../proxy/response-capture.js';
import type { CompiledRoute } from './route-table.js';

/**
 * What the limit step decided: `allowed`, `denied` (by the store),
 * `local-deny`, `fail-open`, `fail-closed`, `replayed` (answered with an
 * Idempotency-Key's stored response); forward turns `allowed` into
 * `refunded` when it gave the charge back (`refund_on`, or a request the
 * gateway refused after charging it, such as a 413 on a chunked body);
 * `shadow-denied`: denied, but forwarded because the plan or route runs in
 * `mode: shadow` (nothing was charged, as for any denial).
 */
export type LimitDecisionKind = 'allowed' | 'denied' | 'local-deny' | 'fail-open' | 'fail-closed' | 'replayed' | 'refunded' | 'shadow-denied';

/** See {@link Exchange.idempotentForward}. */
export interface IdempotentForward {
  readonly body: Buffer;
  readonly capture: ResponseCapture | undefined;
}

/** The outcome label of a request answered without an error: `replayed` (from an Idempotency-Key's record) or `forwarded`. */
export function answeredOutcome(decision: LimitDecisionKind | undefined): 'forwarded' | 'replayed' {
  return decision === 'replayed' ? 'replayed' : 'forwarded';
}

const NO_HEADERS: readonly HeaderPair[] = Object.freeze([]);
const NO_NAMES: readonly string[] = Object.freeze([]);

/**
 * One request on the proxy listener, from arrival to the last byte of its
 * answer: node's request and response plus what each step of the pipeline
 * found. Every field exists from construction (one hidden class for every
 * request, no Map-backed context); each is written by the step named and
 * read by the later ones, the access log and the metrics.
 */
export class Exchange {
  /** request id step: the client's X-Request-Id when well-formed, else a new UUID. */
  requestId = '';
  /** route step: the route this request matched. */
  route: CompiledRoute | undefined = undefined;
  /** route step: the normalized path plus the original query, to forward. */
  forwardPath: string | undefined = undefined;
  /** route step: the API key the query carried in the route's `key_query_param` (cut from forwardPath). */
  queryApiKey: string | undefined = undefined;
  /** route step: true when the method override headers must not reach the upstream. */
  methodOverrideWithheld = false;
  /** identify step: who is charged. */
  identity: Identity | undefined = undefined;
  /** identify step: lowercase request headers that carried the credential; never forwarded. */
  credentialHeaders: readonly string[] = NO_NAMES;
  /** limit step: rate-limit headers for the response (empty when the route hides them). */
  rateLimitHeaders: readonly HeaderPair[] = NO_HEADERS;
  /** limit step: what the request was charged, when it was; the forward step refunds it per `refund_on`. */
  receipt: ChargeReceipt | undefined = undefined;
  /**
   * limit step: a request with an Idempotency-Key has its body read already
   * (sent upstream as it is), and when admitted its response is captured
   * for replay.
   */
  idempotentForward: IdempotentForward | undefined = undefined;
  /** limit step: how the limit decided, for the access log (forward may set `refunded`). */
  decision: LimitDecisionKind | undefined = undefined;
  /** forward step: the upstream's time to response headers, in ms. */
  upstreamMs: number | undefined = undefined;
  /** forward step, on a `cost.from_response` route: what the charge (`receipt.cost`, the reserve) settled to. */
  settled: SettledUnits | undefined = undefined;
  /** limit step: the request was answered there (an Idempotency-Key replay); nothing is forwarded. */
  answered = false;
  /** Called once the request is answered, forwarded or not (settles an admitted Idempotency-Key). */
  onAnswered: (() => void) | undefined = undefined;
  /** What the gateway answered with instead of forwarding, if anything did go wrong. */
  error: unknown = undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    /** performance.now() when the request reached the pipeline, in ms. */
    readonly startMs: number,
  ) {}

  /** A request header by lowercase name (node joins repeated ones, except set-cookie). */
  header(lowercaseName: string): string | undefined {
    const value = this.req.headers[lowercaseName];
    return Array.isArray(value) ? value.join(', ') : value;
  }
}
