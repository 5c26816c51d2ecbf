import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric quotagate exposes, on a registry of its own (never prom-client's
 * global one, so tests and reloads can build as many as they like).
 *
 * Labels are bounded: configured route and plan names, a fixed set of
 * outcomes and reasons. Never a key, subject, token or raw path.
 */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** Requests by route, plan and outcome (`forwarded` or an error code). */
  readonly requests: Counter<'route' | 'plan' | 'outcome'>;
  /** Whole request duration in seconds, from the first middleware to the last byte written. */
  readonly requestDuration: Histogram<'route' | 'outcome'>;
  /** Time from sending upstream to the upstream's response headers, in seconds. */
  readonly upstreamDuration: Histogram<'route'>;
  /** Authentication failures by reason (`missing`, `malformed`, `unknown`). */
  readonly authFailures: Counter<'reason'>;
}

/** Bucket bounds in seconds; sub-millisecond resolution for the gateway's own work. */
const LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

export function createMetrics(options: { collectProcessMetrics?: boolean } = {}): GatewayMetrics {
  const registry = new Registry();
  if (options.collectProcessMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'quotagate_' });
  return {
    registry,
    requests: new Counter({
      name: 'quotagate_requests_total',
      help: 'Requests handled, by route, plan and outcome (forwarded, or the error code answered).',
      labelNames: ['route', 'plan', 'outcome'],
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'quotagate_request_duration_seconds',
      help: 'Whole request duration through the gateway, in seconds.',
      labelNames: ['route', 'outcome'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    upstreamDuration: new Histogram({
      name: 'quotagate_upstream_duration_seconds',
      help: 'Time from forwarding a request to the upstream response headers, in seconds.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'quotagate_auth_failures_total',
      help: 'Authentication failures by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}
