import type { Hono } from 'hono';
import { denialTotals, nearLimits, topConsumers } from '../../../admin/operator-views.js';
import type { AdminRouteDeps } from './deps.js';
import { denialsQuery, nearLimitsQuery, queryOf, topConsumersQuery } from './validation.js';

/**
 * The operator views (`/admin/views/*`): subjects near their limits, top
 * consumers of a period, denials over the last minutes or hours. Read from
 * the database (the usage ledger and the denials table), never the store.
 */
export function viewRoutes(app: Hono, { ctx }: AdminRouteDeps): void {
  app.get('/admin/views/near-limits', async (c) => {
    const query = queryOf(c, nearLimitsQuery);
    const page = await nearLimits(ctx, { thresholdPercent: query.threshold, plan: query.plan, cursor: query.cursor, limit: query.limit ?? 100 });
    return c.json({
      threshold: query.threshold,
      items: page.items.map((item) => ({ subject: item.subject, key_id: item.keyId ?? null, plan: item.plan, policies: item.policies })),
      next_cursor: page.nextCursor ?? null,
    });
  });
  app.get('/admin/views/top-consumers', async (c) => {
    const query = queryOf(c, topConsumersQuery);
    const page = await topConsumers(ctx, { policy: query.policy, period: query.period, cursor: query.cursor, limit: query.limit ?? 100 });
    return c.json({
      policy: query.policy,
      period_start: new Date(page.periodStartMs).toISOString(),
      period_end: Number.isFinite(page.periodEndMs) ? new Date(page.periodEndMs).toISOString() : null,
      items: page.items.map((item) => ({ subject: item.subject, key_id: item.keyId ?? null, used: item.used })),
      next_cursor: page.nextCursor ?? null,
    });
  });
  app.get('/admin/views/denials', async (c) => {
    const query = queryOf(c, denialsQuery);
    const page = await denialTotals(ctx, { windowMinutes: query.window, subject: query.subject, cursor: query.cursor, limit: query.limit ?? 100 });
    return c.json({
      window_minutes: query.window,
      since: new Date(page.sinceMs).toISOString(),
      items: page.items.map((item) => ({ subject: item.subject, denials: item.denials, last_minute: new Date(item.lastMinuteMs).toISOString() })),
      next_cursor: page.nextCursor ?? null,
    });
  });
}
