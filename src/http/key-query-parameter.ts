/**
 * A route's `key_query_param`: an API key taken from the query (`?api_key=`)
 * for clients that cannot set headers (a browser `<img>`, a webhook
 * sender). The parameter is cut from the query the upstream receives (and so
 * from the Idempotency-Key fingerprint), and the access log never logs a
 * query, so the key reaches neither. Headers remain the better place: a
 * query string is kept in browser history, proxies' logs and Referer headers.
 */

/** What {@link takeKeyParameter} found: the key (first occurrence, decoded) and the query without the parameter. */
export interface KeyParameter {
  readonly key: string | undefined;
  /** The query with every occurrence of the parameter removed, `?` included; '' when nothing is left. */
  readonly query: string;
}

/** `component` percent-decoded (`+` as a space), or undefined when it is not valid UTF-8 percent-encoding. */
function decoded(component: string): string | undefined {
  try {
    return decodeURIComponent(component.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * Takes parameter `name` out of `query` (which starts with `?`, or is ''):
 * every occurrence, also one whose name is percent-encoded, so the upstream
 * never receives it; the other parameters keep their bytes and order.
 */
export function takeKeyParameter(query: string, name: string): KeyParameter {
  if (query.length <= 1) return { key: undefined, query };
  let key: string | undefined;
  const kept: string[] = [];
  for (const part of query.slice(1).split('&')) {
    const equals = part.indexOf('=');
    const rawName = equals === -1 ? part : part.slice(0, equals);
    if (decoded(rawName) !== name) {
      kept.push(part);
      continue;
    }
    // A value that does not decode is kept as sent: it then fails the key format check (401).
    if (key === undefined) key = equals === -1 ? '' : (decoded(part.slice(equals + 1)) ?? part.slice(equals + 1));
  }
  if (key === undefined) return { key, query };
  return { key, query: kept.length === 0 ? '' : `?${kept.join('&')}` };
}
