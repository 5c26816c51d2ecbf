import type { IncomingHttpHeaders } from 'node:http';
import { takeKeyParameter } from '../key-query-parameter.js';
import { GatewayError } from '../../core/errors.js';
import { isPathRefusal, normalizeRequestPath } from '../../core/request-path.js';
import { METHOD_OVERRIDE_HEADERS } from '../../proxy/request-headers.js';
import type { Exchange } from '../exchange.js';
import { requestTarget } from '../request-target.js';
import type { CompiledRoute, RouteTable } from '../route-table.js';

/**
 * Finds the route for the request (first match wins) on the path the
 * upstream will be sent (core/request-path.ts): a path another server could
 * read as another path is refused with 400 `bad_request`, as is one whose
 * route would change were case ignored; an unmatched path is answered 404
 * `route_not_found`. Neither is forwarded.
 *
 * Method overrides: on a route that lists `methods`, and on any route where
 * the overriding method would match another route, the override headers are
 * withheld from the upstream (`methodOverrideWithheld`) and a `_method` query
 * parameter is refused with 400 (the query is forwarded byte for byte, so it
 * is not rewritten).
 *
 * Sets `route` and `forwardPath` (normalized path plus the original query,
 * less the route's `key_query_param`, whose value goes to `queryApiKey`).
 */
export function matchRoute(routes: RouteTable): (exchange: Exchange) => void {
  return function matchRouteStep(exchange) {
    const target = requestTarget(exchange.req.url);
    const queryStart = target.indexOf('?');
    const path = normalizeRequestPath(queryStart === -1 ? target : target.slice(0, queryStart));
    if (isPathRefusal(path)) throw new GatewayError('bad_request', `The request path ${path.refused}.`);
    const method = exchange.req.method ?? 'GET';
    const route = routes.match(method, path);
    if (route === 'ambiguous-case') {
      throw new GatewayError('bad_request', 'The request path matches another route when case is ignored; use the case the API documents.');
    }
    if (route === undefined) throw new GatewayError('route_not_found', `No route matches ${method} ${path}.`);
    let query = queryStart === -1 ? '' : target.slice(queryStart);
    const keyParameter = route.config.key_query_param;
    if (keyParameter !== undefined && query.length > 1) {
      const taken = takeKeyParameter(query, keyParameter);
      query = taken.query;
      exchange.queryApiKey = taken.key;
    }
    if (query.length > 1 && hasMethodParameter(query) && !overrideHarmless(routes, route, path, queryMethodOverride(query))) {
      throw new GatewayError('bad_request', `Route "${route.config.name}" does not take a _method query parameter (method override).`);
    }
    const overridden = headerMethodOverride(exchange.req.headers);
    if (overridden !== undefined && !overrideHarmless(routes, route, path, overridden)) exchange.methodOverrideWithheld = true;
    exchange.route = route;
    exchange.forwardPath = path + query;
  };
}

/** The first method override header's value, if the request has one. */
function headerMethodOverride(headers: IncomingHttpHeaders): string | undefined {
  for (const name of METHOD_OVERRIDE_HEADERS) {
    const value = headers[name];
    if (value !== undefined) return typeof value === 'string' ? value : value.join(', ');
  }
  return undefined;
}

/** Whether the query (with its `?`) may name `_method`: cheap, before it is parsed. */
function hasMethodParameter(query: string): boolean {
  return query.includes('_method') || query.includes('%');
}

/** Every `_method` value of the query joined, or undefined when there is none. */
function queryMethodOverride(query: string): string | undefined {
  let values: string[];
  try {
    values = new URLSearchParams(query).getAll('_method');
  } catch {
    return undefined;
  }
  return values.length === 0 ? undefined : values.join(', ');
}

const METHOD_TOKEN = /^[A-Z]{1,16}$/;

/**
 * Whether honouring an override to `overridden` could change nothing the
 * gateway decided: the route admits every method, the value is one method,
 * and that method matches the same route. Undefined (no override): harmless.
 */
function overrideHarmless(routes: RouteTable, route: CompiledRoute, path: string, overridden: string | undefined): boolean {
  if (overridden === undefined) return true;
  if (route.config.methods !== undefined) return false;
  const method = overridden.trim().toUpperCase();
  return METHOD_TOKEN.test(method) && routes.match(method, path) === route;
}
