/** The request target as received: node's raw `url` (origin form), or the path and query of an absolute-form one. */
export function requestTarget(rawUrl: string | undefined): string {
  if (rawUrl !== undefined && rawUrl.charCodeAt(0) === 47 /* / */) return rawUrl;
  const url = new URL(rawUrl ?? '/', 'http://gateway.invalid');
  return url.pathname + url.search;
}

/** `target` without its query string (which may carry secrets). */
export function withoutQuery(target: string): string {
  const queryAt = target.indexOf('?');
  return queryAt === -1 ? target : target.slice(0, queryAt);
}
