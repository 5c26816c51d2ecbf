import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { parse as parseYaml } from 'yaml';
import { GatewayError } from '../../../core/errors.js';
import { isDatabaseUnavailable } from '../../../db/errors.js';
import { payloadTooLarge } from '../../../proxy/body-limit.js';
import { asGatewayError, problemResponse } from '../../problem-response.js';
import { adminActor, adminAuth, adminDisabled } from './admin-auth.js';
import type { AdminApiDeps, AdminRouteDeps } from './deps.js';
import { eventRoutes } from './event-routes.js';
import { keyRoutes } from './key-routes.js';
import { reloadRoute } from './reload-route.js';
import { subjectRoutes } from './subject-routes.js';
import { usageRoutes } from './usage-routes.js';
import { viewRoutes } from './view-routes.js';

/** Largest admin API request body, in bytes; larger ones get 413 `payload_too_large`. */
const ADMIN_MAX_BODY_BYTES = 64 * 1024;

/**
 * The admin API under `/admin/*` on the admin listener: JSON in and out
 * (bodies up to {@link ADMIN_MAX_BODY_BYTES}, nested at most 32 deep),
 * problem+json errors (`validation_failed` lists every bad field with its
 * path), a bearer token on every route but `GET /admin/openapi` (the
 * OpenAPI 3.1 document, openapi/admin.yaml, as JSON). Off — 404
 * `admin_disabled` — without a token (every route) or a database (every
 * route but the document and reload). A database that cannot be reached is
 * 503 `database_unavailable` with `Retry-After`.
 */
export function adminApi(deps: AdminApiDeps): Hono {
  const app = new Hono();
  // Bodies are small JSON documents: anything larger is refused before it is read whole.
  app.use(
    '/admin/*',
    bodyLimit({
      maxSize: ADMIN_MAX_BODY_BYTES,
      onError: () => {
        throw payloadTooLarge(ADMIN_MAX_BODY_BYTES);
      },
    }),
  );
  const hasToken = deps.token !== undefined && deps.token !== '';
  app.get('/admin/openapi', async (c) => {
    // Served without a token, but only while some admin operation is (every /admin/* route is off without a token).
    if (!hasToken) throw adminDisabled('no_token');
    const document: unknown = parseYaml(await readFile(openapiDocumentPath(), 'utf8'));
    return c.json(document as object);
  });
  if (deps.reload !== undefined) app.post('/admin/reload', adminAuth(deps.token), reloadRoute(deps.reload));
  const token = deps.db === undefined ? undefined : deps.token;
  app.use('/admin/*', adminAuth(token, hasToken ? 'no_database' : 'no_token'));
  if (deps.db !== undefined && token !== undefined && token !== '') {
    const routeDeps: AdminRouteDeps = {
      config: deps.config,
      clock: deps.clock,
      ctx: {
        db: deps.db,
        plans: deps.config.plans,
        keyPrefix: deps.config.auth.api_keys.prefix,
        clock: deps.clock,
        actor: adminActor(token),
        usage: deps.usage,
        blocks: deps.blocks,
        // The write committed and stands; the caches expire by their TTL instead.
        subjectChanged: (subjectId) =>
          deps.invalidator.subjectChanged(subjectId).catch((error: unknown) => {
            deps.logger.warn({ err: error }, 'cache invalidation failed; caches expire by their TTL');
          }),
      },
    };
    subjectRoutes(app, routeDeps);
    keyRoutes(app, routeDeps);
    usageRoutes(app, routeDeps);
    eventRoutes(app, routeDeps);
    viewRoutes(app, routeDeps);
  }
  app.all('/admin/*', () => {
    throw new GatewayError('route_not_found', 'No admin API route matches this request.');
  });
  app.onError((error, c) => {
    const gatewayError = isDatabaseUnavailable(error) ? databaseUnavailable() : asGatewayError(error);
    if (gatewayError.code === 'database_unavailable') deps.logger.warn({ err: error, path: c.req.path }, 'admin request: database unavailable');
    if (gatewayError.code === 'internal_error') deps.logger.error({ err: error, path: c.req.path }, 'admin request failed');
    return problemResponse(c, gatewayError);
  });
  return app;
}

/** Seconds a client of the admin API is told to wait while the database cannot be reached. */
const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * The answer to any admin operation the database could not serve (refused
 * or dropped connection, server shutting down or starting, statement
 * timeout): 503 with Retry-After, never a 500. Nothing was changed: every
 * write runs in one transaction with its audit row.
 */
function databaseUnavailable(): GatewayError {
  return new GatewayError(
    'database_unavailable',
    'The database cannot be reached; nothing was changed. Retry later.',
    {},
    [['retry-after', String(DATABASE_RETRY_AFTER_SECONDS)]],
  );
}

/**
 * openapi/admin.yaml at the repository (or image) root: four levels above
 * this module under src/ (tsx), five under dist/src/ (compiled).
 */
export function openapiDocumentPath(moduleDir: string = import.meta.dirname): string {
  const candidates = [resolve(moduleDir, '../../../../openapi/admin.yaml'), resolve(moduleDir, '../../../../../openapi/admin.yaml')];
  return candidates.find((path) => existsSync(path)) ?? candidates[0]!;
}
