import type { Logger } from 'pino';
import { GatewayError } from '../../core/errors.js';
import { answeredOutcome, type Exchange } from '../exchange.js';
import { requestTarget, withoutQuery } from '../request-target.js';

export interface AccessLogOptions {
  readonly logger: Logger;
  /** Log the charged subject (`logging.access_log.include_subject`). */
  readonly includeSubject: boolean;
}

/**
 * One JSON line per proxied request, at level info, once it is answered:
 * `request_id`, `method`, `path` (no query: it may carry secrets; the path
 * received when no route matched), `route`,
 * `plan`, `status`, `outcome` (`forwarded`, `replayed` or the error code answered),
 * `decision` (the limit's: allowed, denied, local-deny, fail-open,
 * fail-closed, replayed; refunded when the charge was given back),
 * `duration_ms` and `upstream_ms`; on a route whose cost is settled from
 * the response, `cost_reserved`, `cost_settled` and `cost_source`
 * (`reported`, `missing`, `malformed`); `subject` only when configured. Never a key, token or request header. Called by the pipeline
 * when the request is done, so its duration covers the whole request.
 */
export function accessLog(options: AccessLogOptions): (exchange: Exchange) => void {
  const { logger, includeSubject } = options;
  return function logAccess(exchange) {
    if (!logger.isLevelEnabled('info')) return;
    const { error, identity, forwardPath, settled } = exchange;
    const line = {
      request_id: exchange.requestId,
      method: exchange.req.method,
      // The path forwarded; for a request refused before a route matched (404 route_not_found, 400), the one received.
      path: withoutQuery(forwardPath ?? requestTarget(exchange.req.url)),
      route: exchange.route?.config.name,
      plan: identity?.plan,
      ...(includeSubject && identity !== undefined ? { subject: identity.subject } : {}),
      status: exchange.res.statusCode,
      outcome: error === undefined ? answeredOutcome(exchange.decision) : error instanceof GatewayError ? error.code : 'internal_error',
      decision: exchange.decision,
      duration_ms: round(performance.now() - exchange.startMs),
      upstream_ms: roundOrUndefined(exchange.upstreamMs),
    };
    // Only a route whose cost is settled from the response has these: the common line stays as short to serialize as before.
    if (settled === undefined) logger.info(line, 'access');
    else logger.info({ ...line, cost_reserved: exchange.receipt?.cost, cost_settled: settled.units, cost_source: settled.source }, 'access');
  };
}

/** Milliseconds to 0.001 ms: enough for the gateway's own sub-millisecond work. */
function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function roundOrUndefined(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : round(ms);
}
