import type { Hono } from 'hono';
import {
  createSubjectAudited,
  deleteSubjectAudited,
  listSubjectsPage,
  reactivateAudited,
  requireSubject,
  setOverridesAudited,
  setPlanAudited,
  suspendAudited,
} from '../../../admin/subjects.js';
import { unblockAudited } from '../../../admin/blocks.js';
import type { JsonObject } from '../../../db/database.js';
import type { AdminRouteDeps } from './deps.js';
import { configuredBodies, jsonBody, listSubjectsQuery, queryOf, setOverridesBody } from './validation.js';
import { subjectView } from './views.js';

/** Subjects: create, get, list, set plan, set overrides, suspend, reactivate, delete, lift a block. */
export function subjectRoutes(app: Hono, { ctx, config }: AdminRouteDeps): void {
  const bodies = configuredBodies(config.plans);
  app.post('/admin/subjects', async (c) => {
    const body = await jsonBody(c, bodies.createSubject);
    const subject = await createSubjectAudited(ctx, {
      id: body.id,
      plan: body.plan,
      metadata: body.metadata as JsonObject | undefined,
      overrides: body.overrides as JsonObject | undefined,
    });
    return c.json(subjectView(subject), 201);
  });
  app.get('/admin/subjects', async (c) => {
    const query = queryOf(c, listSubjectsQuery);
    const page = await listSubjectsPage(ctx, { limit: query.limit ?? 100, cursor: query.cursor });
    return c.json({ items: page.items.map(subjectView), next_cursor: page.nextCursor ?? null });
  });
  app.get('/admin/subjects/:id', async (c) => {
    return c.json(subjectView(await requireSubject(ctx, c.req.param('id'))));
  });
  app.put('/admin/subjects/:id/plan', async (c) => {
    const { plan } = await jsonBody(c, bodies.setPlan);
    return c.json(subjectView(await setPlanAudited(ctx, c.req.param('id'), plan)));
  });
  app.put('/admin/subjects/:id/overrides', async (c) => {
    const { overrides } = await jsonBody(c, setOverridesBody);
    return c.json(subjectView(await setOverridesAudited(ctx, c.req.param('id'), overrides as JsonObject | null)));
  });
  app.post('/admin/subjects/:id/suspend', async (c) => {
    return c.json(subjectView(await suspendAudited(ctx, c.req.param('id'))));
  });
  app.post('/admin/subjects/:id/reactivate', async (c) => {
    return c.json(subjectView(await reactivateAudited(ctx, c.req.param('id'))));
  });
  app.delete('/admin/subjects/:id', async (c) => {
    await deleteSubjectAudited(ctx, c.req.param('id'));
    return c.body(null, 204);
  });
  app.delete('/admin/subjects/:id/block', async (c) => {
    const id = c.req.param('id');
    return c.json({ subject: id, was_blocked: await unblockAudited(ctx, id) });
  });
}
