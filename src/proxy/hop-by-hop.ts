/**
 * Hop-by-hop header fields (RFC 9110 §7.6.1): they describe one connection,
 * not the message, so a proxy must not forward them in either direction.
 *
 * Header maps here are the shape both node:http (`IncomingMessage.headers`)
 * and undici (`ResponseData.headers`) produce: lowercase names, a string or,
 * for repeated fields, an array of strings.
 */

/**
 * Fields that are hop-by-hop whatever `Connection` says. Besides RFC 9110's
 * list this has `proxy-connection` and `keep-alive` (HTTP/1.0 habits still
 * sent by clients) and `http2-settings` (connection-specific, RFC 9113 §3.2.1).
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);

const NONE: readonly string[] = Object.freeze([]);

/**
 * The extra field names a `Connection` header nominates as hop-by-hop,
 * lowercased, without the ones already in {@link HOP_BY_HOP_HEADERS} and
 * without `close`. Returns a shared empty array in the common cases (no
 * header, `keep-alive`, `close`), so the hot path allocates nothing.
 */
export function connectionNominated(connection: string | readonly string[] | undefined): readonly string[] {
  if (connection === undefined) return NONE;
  const value = typeof connection === 'string' ? connection : connection.join(',');
  if (value.indexOf(',') === -1) {
    const token = value.trim().toLowerCase();
    return token === '' || token === 'close' || HOP_BY_HOP_HEADERS.has(token) ? NONE : [token];
  }
  let nominated: string[] | undefined;
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token === '' || token === 'close' || HOP_BY_HOP_HEADERS.has(token)) continue;
    (nominated ??= []).push(token);
  }
  return nominated ?? NONE;
}

/**
 * Whether a lowercase field name must not be forwarded, given the names the
 * message's `Connection` header nominated ({@link connectionNominated}).
 */
export function isHopByHop(name: string, nominated: readonly string[]): boolean {
  return HOP_BY_HOP_HEADERS.has(name) || (nominated.length > 0 && nominated.includes(name));
}

/**
 * A copy of `headers` without its hop-by-hop fields (the fixed list and every
 * field its `Connection` header names). Field values are shared, not copied;
 * `undefined` entries are dropped. The copy has no prototype, so a field named
 * `__proto__` is just a field.
 */
export function stripHopByHop<V extends string | readonly string[]>(
  headers: Readonly<Record<string, V | undefined>>,
): Record<string, V> {
  const nominated = connectionNominated(headers['connection']);
  const kept = Object.create(null) as Record<string, V>;
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || isHopByHop(name, nominated)) continue;
    kept[name] = value;
  }
  return kept;
}
