import { Hono } from 'hono';
import type { GatewayMetrics } from '../../metrics/metrics.js';

/** Whether the gateway should receive traffic; set by main.ts as it starts and drains. */
export interface HealthState {
  /** True once both listeners are up and the config is loaded. */
  ready: boolean;
  /** True from SIGTERM on: stop sending new traffic here. */
  draining: boolean;
}

/**
 * The admin listener (127.0.0.1 by default): `/healthz` (liveness: the
 * process answers), `/readyz` (readiness: 503 before start-up completes and
 * while draining), `/metrics` (Prometheus text exposition).
 */
export function adminRoutes(deps: { metrics: GatewayMetrics; health: HealthState }): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const { ready, draining } = deps.health;
    const status = draining ? 'draining' : ready ? 'ready' : 'starting';
    return c.json({ status }, ready && !draining ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const body = await deps.metrics.registry.metrics();
    return c.body(body, 200, { 'content-type': deps.metrics.registry.contentType });
  });
  return app;
}
