import type { Hono } from 'hono';
import { GatewayError } from '../../../core/errors.js';
import type { JsonObject } from '../../../db/database.js';
import { getSubject, listSubjects } from '../../../db/subjects.js';
import type { AdminRouteDeps } from './deps.js';
import {
  createSubjectAudited,
  deleteSubjectAudited,
  reactivateAudited,
  setOverridesAudited,
  setPlanAudited,
  suspendAudited,
} from './operations.js';
import { configuredBodies, jsonBody, listSubjectsQuery, queryOf, setOverridesBody } from './validation.js';
import { subjectView } from './views.js';

/** Subjects: create, get, list, set plan, set overrides, suspend, reactivate, delete. */
export function subjectRoutes(app: Hono, deps: AdminRouteDeps): void {
  const { ctx } = deps;
  const bodies = configuredBodies(deps.config.plans);
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
    const page = await listSubjects(deps.db, { limit: query.limit ?? 100, ...(query.cursor === undefined ? {} : { cursor: query.cursor }) });
    return c.json({ items: page.items.map(subjectView), next_cursor: page.nextCursor ?? null });
  });
  app.get('/admin/subjects/:id', async (c) => {
    const id = c.req.param('id');
    const subject = await getSubject(deps.db, id);
    if (subject === undefined) throw new GatewayError('subject_not_found', `There is no subject "${id}".`);
    return c.json(subjectView(subject));
  });
  app.put('/admin/subjects/:id/plan', async (c) => {
    const { plan } = await jsonBody(c, bodies.setPlan);
    const subject = await setPlanAudited(ctx, c.req.param('id'), plan);
    await deps.invalidate((invalidator) => invalidator.subjectChanged(subject.id));
    return c.json(subjectView(subject));
  });
  app.put('/admin/subjects/:id/overrides', async (c) => {
    const { overrides } = await jsonBody(c, setOverridesBody);
    const subject = await setOverridesAudited(ctx, c.req.param('id'), overrides as JsonObject | null);
    await deps.invalidate((invalidator) => invalidator.subjectChanged(subject.id));
    return c.json(subjectView(subject));
  });
  app.post('/admin/subjects/:id/suspend', async (c) => {
    const subject = await suspendAudited(ctx, c.req.param('id'));
    await deps.invalidate((invalidator) => invalidator.subjectChanged(subject.id));
    return c.json(subjectView(subject));
  });
  app.post('/admin/subjects/:id/reactivate', async (c) => {
    const subject = await reactivateAudited(ctx, c.req.param('id'));
    await deps.invalidate((invalidator) => invalidator.subjectChanged(subject.id));
    return c.json(subjectView(subject));
  });
  app.delete('/admin/subjects/:id', async (c) => {
    const id = c.req.param('id');
    await deleteSubjectAudited(ctx, id);
    await deps.invalidate((invalidator) => invalidator.subjectChanged(id));
    return c.body(null, 204);
  });
}
