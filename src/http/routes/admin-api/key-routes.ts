import type { Hono } from 'hono';
import { createKeyAudited, listSubjectKeys, revokeKeyAudited, rotateKeyAudited } from '../../../admin/keys.js';
import type { AdminRouteDeps } from './deps.js';
import { createKeyBody, jsonBody, rotateBody } from './validation.js';
import { keyView } from './views.js';

/**
 * API keys: create and rotate (the only responses that hold a plain key,
 * never stored by a cache: `Cache-Control: no-store`), list (prefix, name,
 * dates; never the hash), revoke.
 */
export function keyRoutes(app: Hono, { ctx }: AdminRouteDeps): void {
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
    return c.json({ items: (await listSubjectKeys(ctx, c.req.param('id'))).map(keyView) });
  });
  app.post('/admin/keys/:keyId/rotate', async (c) => {
    const { grace_ms: graceMs } = await jsonBody(c, rotateBody);
    const rotated = await rotateKeyAudited(ctx, c.req.param('keyId'), graceMs);
    return c.json({ ...keyView(rotated.key), key: rotated.plainKey, replaced: keyView(rotated.replaced) }, 201, {
      'cache-control': 'no-store',
    });
  });
  app.post('/admin/keys/:keyId/revoke', async (c) => {
    return c.json(keyView(await revokeKeyAudited(ctx, c.req.param('keyId'))));
  });
}
