import { Hono } from 'hono';
import type { CircuitState } from '../../limiter/circuit-breaker.js';
import type { GatewayMetrics } from '../../metrics/metrics.js';

/** Whether the gateway should receive traffic; set by main.ts as it starts and drains. */
export interface HealthState {
  /** True once both listeners are up and the config is loaded. */
  ready: boolean;
  /** True from SIGTERM on: stop sending new traffic here. */
  draining: boolean;
}

export interface AdminDeps {
  readonly metrics: GatewayMetrics;
  readonly health: HealthState;
  /** The store's circuit state: `closed` means the store answers. */
  readonly storeState: () => CircuitState;
  /** Whether some route forwards when the store is down (`on_store_error: open`). */
  readonly servesWithoutStore: boolean;
}

const STORE_STATUS: Record<CircuitState, string> = { closed: 'up', 'half-open': 'probing', open: 'down' };

/**
 * The admin listener (127.0.0.1 by default): `/healthz` (liveness: the
 * process answers), `/readyz` (readiness, with the store's state), `/metrics`
 * (Prometheus text exposition).
 *
 * `/readyz` answers 503 before start-up completes, while draining, and while
 * the store is down if no route could serve without it (all `on_store_error:
 * closed`); otherwise 200. Taking every instance out of a load balancer for a
 * store outage would also stop the routes that fail open, so a store outage
 * alone is reported (`"store": "down"`), not failed.
 */
export function adminRoutes(deps: AdminDeps): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const { ready, draining } = deps.health;
    const store = STORE_STATUS[deps.storeState()];
    const status = draining ? 'draining' : ready ? 'ready' : 'starting';
    const serving = ready && !draining && (store !== 'down' || deps.servesWithoutStore);
    return c.json({ status, store }, serving ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const body = await deps.metrics.registry.metrics();
    return c.body(body, 200, { 'content-type': deps.metrics.registry.contentType });
  });
  return app;
}
