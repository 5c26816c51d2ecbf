import type { ProxyContext } from './context.js';

/** The request target as received: node's raw `url`, or the Web Request's path and query. */
export function requestTarget(c: ProxyContext): string {
  const raw = c.env?.incoming?.url;
  if (raw !== undefined && raw.charCodeAt(0) === 47 /* / */) return raw;
  const url = new URL(raw ?? c.req.url, 'http://gateway.invalid');
  return url.pathname + url.search;
}

/** `target` without its query string (which may carry secrets). */
export function withoutQuery(target: string): string {
  const queryAt = target.indexOf('?');
  return queryAt === -1 ? target : target.slice(0, queryAt);
}
