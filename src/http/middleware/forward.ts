import type { RouteConfig } from '../../config/schema.js';
import { type CostSettlement, type SettledUnits, settledUnitsOf } from '../../core/cost-settlement.js';
import type { ChargeReceipt } from '../../core/decision.js';
import { GatewayError } from '../../core/errors.js';
import { lifetimeCounterIdOf } from '../../core/policy.js';
import type { ForwardOutcome, Forwarder } from '../../proxy/forwarder.js';
import { METHOD_OVERRIDE_HEADERS } from '../../proxy/request-headers.js';
import type { Exchange } from '../exchange.js';

export interface ForwardOptions {
  readonly forwarder: Forwarder;
  /** Default largest request body in bytes; a route's `max_body_bytes` overrides it. */
  readonly maxBodyBytes: number;
  /** Called with the upstream's time to response headers, in seconds. */
  readonly onUpstreamTimed: (routeName: string, seconds: number) => void;
  /** Gives a charge back (never throws); resolves to whether it was given back. */
  readonly refund: (receipt: ChargeReceipt) => Promise<boolean>;
  /** Adds a signed number of units to a charge (never throws); resolves to whether the store took it. */
  readonly adjust: (receipt: ChargeReceipt, delta: number) => Promise<boolean>;
  /** Told of each charge settled from a response: the route, the units reserved, what they settled to. */
  readonly onSettled?: (routeName: string, reserved: number, settled: SettledUnits) => void;
}

/** 2xx: the upstream did what a `release` route asked (deleted the thing counted). */
function succeeded(outcome: ForwardOutcome): boolean {
  return outcome.status >= 200 && outcome.status < 300;
}

/** What a `release` route gives back: `units` of the metric's lifetime counter (its one period starts at 0). */
function releaseOf(subject: string, metric: string, units: number): ChargeReceipt {
  return { subject, cost: units, charges: [{ counterId: lifetimeCounterIdOf(metric), periodStartMs: 0 }] };
}

/** The request fields not to forward: the credential's, plus the method overrides when matchRoute withholds them. */
function withheldHeaders(credentialHeaders: readonly string[], methodOverrideWithheld: boolean | undefined): readonly string[] {
  return methodOverrideWithheld === true ? [...credentialHeaders, ...METHOD_OVERRIDE_HEADERS] : credentialHeaders;
}

type RefundCondition = RouteConfig['refund_on'][number];

/** The `refund_on` condition an upstream failure meets, if any. */
function failureOf(outcome: ForwardOutcome | GatewayError): RefundCondition | undefined {
  if (outcome instanceof GatewayError) {
    // upstream_busy: nothing reached the upstream; a route that refunds connection errors refunds this too.
    if (outcome.code === 'upstream_unavailable' || outcome.code === 'upstream_busy') return 'error';
    if (outcome.code === 'upstream_timeout') return 'timeout';
    return undefined;
  }
  if (outcome.abortCause === 'upstream_failed') return 'error';
  if (outcome.abortCause === 'upstream_timeout') return 'timeout';
  return outcome.status >= 500 ? '5xx' : undefined;
}

/**
 * Whether the charge of a request that failed before the upstream answered
 * is given back whatever `refund_on` says: the gateway refused the request
 * itself (400 for a bad target, 413 for a chunked body over the limit, 500
 * for a fault of its own). Upstream failures (502, 504) follow `refund_on`.
 */
function refusedByGateway(error: unknown): boolean {
  return !(error instanceof GatewayError) || failureOf(error) === undefined;
}

/**
 * Streams the admitted request to the route's upstream and the upstream's
 * answer back, on node's own request and response objects (no Web stream
 * conversion on the hot path). Upstream failures before the response starts
 * are thrown as GatewayErrors (502, 504, 413) and answered by onError. When
 * the route's `refund_on` names the failure, the charge is given back first;
 * a request the gateway refused itself before the upstream answered is
 * always given back. A given-back charge shows as decision `refunded`.
 * A route with `release` gives that many units back to its quota's lifetime
 * counter once the upstream answered 2xx.
 *
 * On a route whose cost is settled from the response (`cost.from_response`),
 * a charge not given back is settled once the exchange ends: to the units
 * the upstream reported (a header, kept even if the client left before the
 * end; a trailer, only from a response that ended whole), else to the
 * reserve. The store call (none when the two agree) is not awaited: the
 * client's response is already sent and the step resolves without it.
 */
export function forward(options: ForwardOptions): (exchange: Exchange) => Promise<void> {
  return async function forwardStep(exchange) {
    const { req: incoming, res: outgoing } = exchange;
    const route = exchange.route!;
    const receipt = exchange.receipt;
    // Set only for a request with an Idempotency-Key: its body was read already.
    const idempotent = exchange.idempotentForward;
    let outcome: ForwardOutcome;
    try {
      outcome = await options.forwarder.forward({
        upstream: route.config.upstream,
        incoming,
        outgoing,
        body: idempotent?.body,
        capture: idempotent?.capture,
        method: incoming.method ?? 'GET',
        path: exchange.forwardPath!,
        identity: exchange.identity,
        responseHeaders: exchange.rateLimitHeaders,
        requestId: exchange.requestId,
        maxBodyBytes: route.config.max_body_bytes ?? options.maxBodyBytes,
        credentialHeaders: withheldHeaders(exchange.credentialHeaders, exchange.methodOverrideWithheld),
        settlement: route.settlement,
      });
    } catch (error) {
      if (refusedByGateway(error) || refundDue(error as GatewayError)) await refund();
      throw error;
    }
    exchange.upstreamMs = outcome.upstreamMs;
    options.onUpstreamTimed(route.config.name, outcome.upstreamMs / 1000);
    // Decided synchronously: the common exchange (nothing to give back) awaits nothing more here.
    const refunded = refundDue(outcome);
    if (refunded) await refund();
    if (!refunded && receipt !== undefined && route.settlement !== undefined) {
      settleCharge(exchange, receipt, route.settlement, outcome.reported, options);
    }
    // `release`: the upstream answered 2xx, so what it deleted stops counting (never below zero).
    const { release, quota } = route.config;
    if (release !== undefined && quota !== undefined && exchange.identity !== undefined && succeeded(outcome)) {
      await options.refund(releaseOf(exchange.identity.subject, quota, release));
    }

    /** Whether there is a charge to give back and `refund_on` names the failure `result` shows. */
    function refundDue(result: ForwardOutcome | GatewayError): boolean {
      if (receipt === undefined || route.config.refund_on.length === 0) return false;
      const failure = failureOf(result);
      return failure !== undefined && route.config.refund_on.includes(failure);
    }

    async function refund(): Promise<void> {
      if (receipt !== undefined && (await options.refund(receipt))) exchange.decision = 'refunded';
    }
  };
}

/**
 * Settles an admitted charge of `receipt.cost` (the reserve) to what the
 * response reported, recording it on the exchange (access log) and in the
 * metrics; the store call, when the units differ, runs on its own.
 */
function settleCharge(
  exchange: Exchange,
  receipt: ChargeReceipt,
  settlement: CostSettlement,
  reported: string | string[] | undefined,
  options: ForwardOptions,
): void {
  const settled = settledUnitsOf(reported, settlement.reserve);
  exchange.settled = settled;
  options.onSettled?.(exchange.route!.config.name, receipt.cost, settled);
  const delta = settled.units - receipt.cost;
  if (delta !== 0) void options.adjust(receipt, delta);
}
