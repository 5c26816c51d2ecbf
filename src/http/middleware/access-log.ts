import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { GatewayError } from '../../core/errors.js';
import { answeredOutcome, type ProxyEnv } from '../context.js';
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
 * `duration_ms` and `upstream_ms`; `subject` only when
 * configured. Never a key, token or request header. Runs first, so its
 * duration covers the whole request.
 */
export function accessLog(options: AccessLogOptions): MiddlewareHandler<ProxyEnv> {
  const { logger, includeSubject } = options;
  return async function accessLogMiddleware(c, next) {
    const startMs = performance.now();
    await next();
    if (!logger.isLevelEnabled('info')) return;
    const error = c.error;
    const outgoing = c.env?.outgoing;
    const identity = c.get('identity');
    logger.info(
      {
        request_id: c.get('requestId'),
        method: c.req.method,
        // The path forwarded; for a request refused before a route matched (404 route_not_found, 400), the one received.
        path: withoutQuery(c.get('forwardPath') ?? requestTarget(c)),
        route: c.get('route')?.config.name,
        plan: identity?.plan,
        ...(includeSubject && identity !== undefined ? { subject: identity.subject } : {}),
        status: outgoing?.headersSent === true ? outgoing.statusCode : c.res.status,
        outcome: error === undefined ? answeredOutcome(c.get('decision')) : error instanceof GatewayError ? error.code : 'internal_error',
        decision: c.get('decision'),
        duration_ms: round(performance.now() - startMs),
        upstream_ms: roundOrUndefined(c.get('upstreamMs')),
      },
      'access',
    );
  };
}

/** Milliseconds to 0.001 ms: enough for the gateway's own sub-millisecond work. */
function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function roundOrUndefined(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : round(ms);
}
