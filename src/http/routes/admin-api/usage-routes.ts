import type { Hono } from 'hono';
import { GatewayError } from '../../../core/errors.js';
import type { Policy } from '../../../core/policy.js';
import { listAudit, InvalidCursorError } from '../../../db/audit-log.js';
import { getSubject, type Subject } from '../../../db/subjects.js';
import type { UsageStore } from '../../usage-store.js';
import type { AdminRouteDeps } from './deps.js';
import { grantCreditsAudited, policiesOfSubject, recordResetAudited } from './operations.js';
import { auditQuery, configuredBodies, jsonBody, queryOf, validationFailed } from './validation.js';
import { auditView, creditView, policyUsageView } from './views.js';

/** Usage (from the limit store), counter reset, credit grants and the audit log. */
export function usageRoutes(app: Hono, deps: AdminRouteDeps): void {
  const { ctx } = deps;
  const bodies = configuredBodies(deps.config.plans);
  app.get('/admin/subjects/:id/usage', async (c) => {
    const { subject, policies } = await subjectPolicies(deps, c.req.param('id'));
    const states = await storeCall(deps.usage, (usage) => usage.peek(subject.id, policies));
    const now = deps.clock.now();
    return c.json({ subject: subject.id, plan: subject.plan, policies: states.map((state) => policyUsageView(state, now)) });
  });
  app.post('/admin/subjects/:id/reset', async (c) => {
    const { subject, policies } = await subjectPolicies(deps, c.req.param('id'));
    await storeCall(deps.usage, (usage) => usage.reset(subject.id, policies));
    await recordResetAudited(ctx, subject.id, policies);
    await deps.invalidate((invalidator) => invalidator.subjectChanged(subject.id));
    return c.json({ subject: subject.id, reset: policies.map((policy) => policy.name) });
  });
  app.post('/admin/subjects/:id/credits', async (c) => {
    const body = await jsonBody(c, bodies.credits);
    const subjectId = c.req.param('id');
    const grant = await grantCreditsAudited(ctx, subjectId, {
      metric: body.metric,
      amount: body.amount,
      expiresAt: body.expires_at,
      reason: body.reason,
    });
    deps.usage?.forget(subjectId);
    await deps.invalidate((invalidator) => invalidator.subjectChanged(subjectId));
    return c.json(creditView(grant), 201);
  });
  app.get('/admin/audit', async (c) => {
    const query = queryOf(c, auditQuery);
    try {
      const page = await listAudit(deps.db, {
        limit: query.limit ?? 100,
        ...(query.subject === undefined ? {} : { subjectId: query.subject }),
        ...(query.target === undefined ? {} : { target: query.target }),
        ...(query.from === undefined ? {} : { from: query.from }),
        ...(query.to === undefined ? {} : { to: query.to }),
        ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
      });
      return c.json({ items: page.items.map(auditView), next_cursor: page.nextCursor ?? null });
    } catch (error) {
      if (error instanceof InvalidCursorError) throw validationFailed([{ path: 'cursor', message: 'not a cursor this API handed out' }]);
      throw error;
    }
  });
}

async function subjectPolicies(deps: AdminRouteDeps, id: string): Promise<{ subject: Subject; policies: readonly Policy[] }> {
  const subject = await getSubject(deps.db, id);
  if (subject === undefined) throw new GatewayError('subject_not_found', `There is no subject "${id}".`);
  const policies = policiesOfSubject(deps.config.plans, subject.plan, subject.overrides);
  if (policies === undefined) throw new GatewayError('internal_error', `The subject's plan "${subject.plan}" is not configured.`);
  return { subject, policies };
}

async function storeCall<T>(usage: UsageStore | undefined, call: (usage: UsageStore) => Promise<T>): Promise<T> {
  if (usage === undefined) throw new GatewayError('usage_unavailable', 'This gateway cannot read its limit store.');
  try {
    return await call(usage);
  } catch {
    throw new GatewayError('usage_unavailable', 'The limit store did not answer; retry later.', {}, [['retry-after', '1']]);
  }
}
