import type { Handler } from 'hono';
import type { ReloadResult } from '../../../config/restart.js';

/**
 * `POST /admin/reload`: re-reads gateway.yaml, as SIGHUP does. 200
 * `{ status: "reloaded", routes, plans, upstreams }` once the new config
 * serves; otherwise the old config keeps serving and the answer says why:
 * 422 `{ status: "rejected", reason: "invalid", problems }` with the lines
 * check-config prints, or 409 with `reason: "needs_restart"` naming the
 * sections that cannot change live.
 */
export function reloadRoute(reload: () => Promise<ReloadResult>): Handler {
  return async function reloadConfig(c) {
    const result = await reload();
    if (result.ok) {
      return c.json({ status: 'reloaded', routes: result.routes, plans: result.plans, upstreams: result.upstreams }, 200);
    }
    return c.json(
      { status: 'rejected', reason: result.reason, problems: result.problems },
      result.reason === 'invalid' ? 422 : 409,
      { 'cache-control': 'no-store' },
    );
  };
}
