import type { MiddlewareHandler } from 'hono';
import { GatewayError } from '../../core/errors.js';
import type { GatewayMetrics } from '../../metrics/metrics.js';
import { answeredOutcome, type ProxyEnv } from '../context.js';

/**
 * Counts every request by route, plan and outcome and times it whole. The
 * outcome is `forwarded`, `replayed` (an Idempotency-Key replay), or the code
 * of the error the gateway answered with.
 * Runs first, so it sees the final result of everything after it; also
 * keeps the in-flight gauge.
 */
export function requestMetrics(metrics: GatewayMetrics): MiddlewareHandler<ProxyEnv> {
  return async function requestMetricsMiddleware(c, next) {
    const startMs = performance.now();
    metrics.inFlight.inc();
    try {
      await next();
    } finally {
      metrics.inFlight.dec();
    }
    const error = c.error;
    const outcome = error === undefined ? answeredOutcome(c.get('decision')) : error instanceof GatewayError ? error.code : 'internal_error';
    const route = c.get('route')?.config.name ?? '';
    metrics.requests.inc({ route, plan: c.get('identity')?.plan ?? '', outcome });
    metrics.requestDuration.observe({ route, outcome }, (performance.now() - startMs) / 1000);
  };
}
