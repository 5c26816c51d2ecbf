import type { Hono } from 'hono';
import { GatewayError } from '../../../core/errors.js';
import { listApiKeys } from '../../../db/api-keys.js';
import { getSubject } from '../../../db/subjects.js';
import type { AdminRouteDeps } from './deps.js';
import { createKeyAudited, revokeKeyAudited, rotateKeyAudited } from './operations.js';
import { createKeyBody, jsonBody, rotateBody } from './validation.js';
import { keyView } from './views.js';

/**
 * API keys: create and rotate (the only responses that hold a plain key),
 * list (prefix, name, dates; never the hash), revoke. Revoking or rotating a
 * key invalidates its subject's cached keys: the database never hands the
 * hash back, and dropping the subject drops the key with it.
 */
export function keyRoutes(app: Hono, deps: AdminRouteDeps): void {
  const { ctx } = deps;
  app.post('/admin/subjects/:id/keys', async (c) => {
    const body = await jsonBody(c, createKeyBody);
    const issued = await createKeyAudited(ctx, c.req.param('id'), {
      name: body.name,
      scopes: body.scopes,
      expiresAt: body.expires_at,
    });
    return c.json({ ...keyView(issued.key), key: issued.plainKey }, 201, { 'cache-control': 'no-store' });
  });
  app.get('/admin/subjects/:id/keys', async (c) => {
    const id = c.req.param('id');
    if ((await getSubject(deps.db, id)) === undefined) throw new GatewayError('subject_not_found', `There is no subject "${id}".`);
    return c.json({ items: (await listApiKeys(deps.db, id)).map(keyView) });
  });
  app.post('/admin/keys/:keyId/rotate', async (c) => {
    const { grace_ms: graceMs } = await jsonBody(c, rotateBody);
    const rotated = await rotateKeyAudited(ctx, c.req.param('keyId'), graceMs);
    await deps.invalidate((invalidator) => invalidator.subjectChanged(rotated.key.subjectId));
    return c.json({ ...keyView(rotated.key), key: rotated.plainKey, replaced: keyView(rotated.replaced) }, 201, {
      'cache-control': 'no-store',
    });
  });
  app.post('/admin/keys/:keyId/revoke', async (c) => {
    const key = await revokeKeyAudited(ctx, c.req.param('keyId'));
    await deps.invalidate((invalidator) => invalidator.subjectChanged(key.subjectId));
    return c.json(keyView(key));
  });
}
