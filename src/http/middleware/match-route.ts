import type { MiddlewareHandler } from 'hono';
import { GatewayError } from '../../core/errors.js';
import { normalizeRequestPath } from '../../core/request-path.js';
import type { ProxyContext, ProxyEnv } from '../context.js';
import type { RouteTable } from '../route-table.js';

/** The request target as received: node's raw `url`, or the Web Request's path and query. */
function requestTarget(c: ProxyContext): string {
  const raw = c.env?.incoming?.url;
  if (raw !== undefined && raw.charCodeAt(0) === 47 /* / */) return raw;
  const url = new URL(raw ?? c.req.url, 'http://gateway.invalid');
  return url.pathname + url.search;
}

/**
 * Finds the route for the request (first match wins). An unmatched path is
 * answered 404 `route_not_found` here and never forwarded; a path that could
 * be read two ways (dot segments, encoded dots) is refused with 400.
 * Sets `route` and `forwardPath` (normalized path plus the original query).
 */
export function matchRoute(routes: RouteTable): MiddlewareHandler<ProxyEnv> {
  return async function matchRouteMiddleware(c, next) {
    const target = requestTarget(c);
    const queryStart = target.indexOf('?');
    const rawPath = queryStart === -1 ? target : target.slice(0, queryStart);
    const path = normalizeRequestPath(rawPath);
    if (path === undefined) {
      throw new GatewayError('bad_request', 'The request path contains dot segments or malformed escapes.');
    }
    const route = routes.match(c.req.method, path);
    if (route === undefined) {
      throw new GatewayError('route_not_found', `No route matches ${c.req.method} ${path}.`);
    }
    c.set('route', route);
    c.set('forwardPath', queryStart === -1 ? path : path + target.slice(queryStart));
    await next();
  };
}
