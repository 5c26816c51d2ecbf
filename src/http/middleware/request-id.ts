import { randomUUID } from 'node:crypto';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { MiddlewareHandler } from 'hono';
import { type ProxyEnv, requestHeader } from '../context.js';

/** Longest client `X-Request-Id` kept, in characters; longer ones are replaced. */
export const MAX_REQUEST_ID_LENGTH = 128;

/** Characters a kept id may hold: nothing that could split a log line or a header. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:@\/+=-]+$/;

/** Whether `value` is kept as the request's id: 1–128 of letters, digits and `._:@/+=-`. */
export function isWellFormedRequestId(value: string | undefined): value is string {
  return value !== undefined && value.length > 0 && value.length <= MAX_REQUEST_ID_LENGTH && SAFE_REQUEST_ID.test(value);
}

/**
 * Names each request: the client's `X-Request-Id` when well-formed (see
 * {@link isWellFormedRequestId}), else a new UUID. Sets `requestId`, which
 * forward() sends upstream and adds to the forwarded response; every answer
 * the gateway writes itself (problems included) carries it here.
 */
export function requestId(): MiddlewareHandler<ProxyEnv> {
  return async function requestIdMiddleware(c, next) {
    const offered = requestHeader(c, 'x-request-id');
    const id = isWellFormedRequestId(offered) ? offered : randomUUID();
    c.set('requestId', id);
    await next();
    // A forwarded response is written by the forwarder (with the id); c.res is then a shared marker.
    if (c.res !== RESPONSE_ALREADY_SENT) c.res.headers.set('x-request-id', id);
  };
}
