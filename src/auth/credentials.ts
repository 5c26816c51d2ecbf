/** An API key as presented by a caller, and the header that carried it. */
export interface PresentedKey {
  readonly key: string;
  /** Lowercase name of the header it came in; that header is not forwarded upstream. */
  readonly header: 'x-api-key' | 'authorization';
}

const BEARER = /^bearer[ \t]+/i;

/**
 * Finds the API key in a request's headers: `X-API-Key`, else
 * `Authorization: Bearer <key>` when the token starts with `<prefix>_` (other
 * bearer tokens are left to JWT authentication). Undefined when neither holds one.
 */
export function presentedApiKey(
  xApiKey: string | undefined,
  authorization: string | undefined,
  prefix: string,
): PresentedKey | undefined {
  if (xApiKey !== undefined && xApiKey !== '') return { key: xApiKey.trim(), header: 'x-api-key' };
  if (authorization === undefined) return undefined;
  const match = BEARER.exec(authorization);
  if (match === null) return undefined;
  const token = authorization.slice(match[0].length).trim();
  return token.startsWith(`${prefix}_`) ? { key: token, header: 'authorization' } : undefined;
}

/**
 * The token of `Authorization: Bearer <token>` (scheme case-insensitive,
 * surrounding whitespace trimmed), or undefined for another scheme or none.
 */
export function presentedBearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = BEARER.exec(authorization);
  if (match === null) return undefined;
  const token = authorization.slice(match[0].length).trim();
  return token === '' ? undefined : token;
}

/**
 * Whether `authorization` is `Bearer <token>` (scheme case-insensitive) and
 * the token starts with `keyPrefix` (`<prefix>_`): an API key, which is
 * never forwarded, whatever the route. No regex: it runs on every request
 * that carries the header.
 */
export function isBearerApiKey(authorization: string, keyPrefix: string): boolean {
  if (authorization.length < 7 || authorization.slice(0, 6).toLowerCase() !== 'bearer') return false;
  let at = 6;
  while (authorization.charCodeAt(at) === 0x20 || authorization.charCodeAt(at) === 0x09) at++;
  return at > 6 && authorization.startsWith(keyPrefix, at);
}
