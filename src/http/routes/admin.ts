import { Hono } from 'hono';
import type { StoreReadiness } from '../../core/readiness.js';
import type { GatewayMetrics } from '../../metrics/metrics.js';

/** Whether the gateway should receive traffic; set by main.ts as it starts and drains. */
export interface HealthState {
  /** True once both listeners are up and the config is loaded. */
  ready: boolean;
  /** True from SIGTERM on: stop sending new traffic here. */
  draining: boolean;
  /** The store as its readiness probe last found it (the memory store: always up). */
  store: StoreReadiness;
}

export interface AdminDeps {
  readonly metrics: GatewayMetrics;
  readonly health: HealthState;
  /** Whether some route forwards when the store is down (`on_store_error: open`). */
  readonly servesWithoutStore: boolean;
}

const STORE_STATUS: Record<StoreReadiness['state'], string> = { up: 'up', down: 'down', unknown: 'probing' };

/**
 * The admin listener (127.0.0.1 by default): `/healthz` (liveness: the
 * process answers), `/readyz` (readiness, with the store's state), `/metrics`
 * (Prometheus text exposition).
 *
 * `/readyz` answers 503 before start-up completes, while draining, and while
 * the store's readiness probe finds it unable to serve (down, refusing the
 * gateway's commands, out of memory, emptied with no ledger to restore it) if
 * no route could serve without it (all `on_store_error: closed`); otherwise
 * 200. Taking every instance out of a load balancer for a store outage would
 * also stop the routes that fail open, so then the outage is reported
 * (`"store": "down"` and a `reason`), not failed. The verdict comes from the
 * probe, not from request traffic: an instance taken out of rotation is put
 * back by its own probe. `warnings` name risks that fail nothing yet (an
 * evicting `maxmemory-policy`).
 */
export function adminRoutes(deps: AdminDeps): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const { ready, draining, store } = deps.health;
    const status = draining ? 'draining' : ready ? 'ready' : 'starting';
    const serving = ready && !draining && (store.state === 'up' || deps.servesWithoutStore);
    const body = {
      status,
      store: STORE_STATUS[store.state],
      ...(store.reason === undefined ? {} : { reason: store.reason }),
      ...(store.warnings.length === 0 ? {} : { warnings: store.warnings }),
    };
    return c.json(body, serving ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const body = await deps.metrics.registry.metrics();
    return c.body(body, 200, { 'content-type': deps.metrics.registry.contentType });
  });
  return app;
}
