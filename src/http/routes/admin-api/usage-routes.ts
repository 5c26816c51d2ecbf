import type { Hono } from 'hono';
import { grantCreditsAudited, listAuditPage, resetUsageAudited, storeUsage } from '../../../admin/usage.js';
import type { AdminRouteDeps } from './deps.js';
import { historyCsv, usageHistory } from '../../../admin/usage-history.js';
import { auditQuery, configuredBodies, historyQuery, jsonBody, queryOf } from './validation.js';
import { auditView, creditView, historyView, policyUsageView } from './views.js';

/** Usage (from the limit store), counter reset, credit grants and the audit log. */
export function usageRoutes(app: Hono, { ctx, config, clock }: AdminRouteDeps): void {
  const bodies = configuredBodies(config.plans);
  app.get('/admin/subjects/:id/usage', async (c) => {
    const { subject, states, credits, keys } = await storeUsage(ctx, c.req.param('id'));
    const now = clock.now();
    const policies = states.map((state) => policyUsageView(state, now));
    return c.json({
      subject: subject.id,
      plan: subject.plan,
      policies,
      ...(credits.length === 0 ? {} : { credits }),
      // Under `limit_by: key`: each key's own counters.
      ...(keys.length === 0
        ? {}
        : { keys: keys.map((key) => ({ key_id: key.keyId, name: key.name, policies: key.states.map((state) => policyUsageView(state, now)) })) }),
    });
  });
  app.get('/admin/subjects/:id/usage/history', async (c) => {
    const query = queryOf(c, historyQuery);
    const id = c.req.param('id');
    const { items, nextCursor } = await usageHistory(ctx, id, query.key, {
      granularity: query.granularity,
      fromMs: query.from?.getTime(),
      toMs: query.to?.getTime(),
      limit: query.limit ?? 100,
      cursor: query.cursor,
    });
    if (c.req.header('accept')?.includes('text/csv') === true) {
      if (nextCursor !== undefined) c.header('link', `<?${new URLSearchParams({ ...c.req.query(), cursor: nextCursor })}>; rel="next"`);
      return c.body(historyCsv(id, items), 200, { 'content-type': 'text/csv; charset=utf-8' });
    }
    return c.json({
      subject: id,
      ...(query.key === undefined ? {} : { key_id: query.key }),
      granularity: query.granularity,
      items: items.map(historyView),
      next_cursor: nextCursor ?? null,
    });
  });
  app.post('/admin/subjects/:id/reset', async (c) => {
    const { subject, policies } = await resetUsageAudited(ctx, c.req.param('id'));
    return c.json({ subject: subject.id, reset: policies.map((policy) => policy.name) });
  });
  app.post('/admin/subjects/:id/credits', async (c) => {
    const body = await jsonBody(c, bodies.credits);
    const grant = await grantCreditsAudited(ctx, c.req.param('id'), {
      metric: body.metric,
      amount: body.amount,
      expiresAt: body.expires_at,
      reason: body.reason,
    });
    return c.json(creditView(grant), 201);
  });
  app.get('/admin/audit', async (c) => {
    const query = queryOf(c, auditQuery);
    const page = await listAuditPage(ctx, {
      limit: query.limit ?? 100,
      ...(query.subject === undefined ? {} : { subjectId: query.subject }),
      ...(query.target === undefined ? {} : { target: query.target }),
      ...(query.from === undefined ? {} : { from: query.from }),
      ...(query.to === undefined ? {} : { to: query.to }),
      ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
    });
    return c.json({ items: page.items.map(auditView), next_cursor: page.nextCursor ?? null });
  });
}

