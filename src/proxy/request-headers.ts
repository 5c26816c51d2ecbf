import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../core/identity.js';
import { toWellFormedText } from '../core/unicode-text.js';
import type { ClientAddress } from './client-address.js';
import { connectionNominated, isHopByHop } from './hop-by-hop.js';

/** Prefix of the headers the gateway itself sends upstream; never taken from a client. */
const GATEWAY_HEADER_PREFIX = 'x-quotagate-';

/** What the upstream request's headers are made from, besides the client's own. */
export interface UpstreamHeaderContext {
  /** Lowercase names of the fields that carried the caller's credential; not forwarded. */
  readonly credentialHeaders: readonly string[];
  readonly identity: Identity | undefined;
  readonly client: ClientAddress;
  /** Scheme of the listener the request came in on. */
  readonly protocol: 'http' | 'https';
  /** The gateway's id for the request: replaces the client's `x-request-id`. */
  readonly requestId?: string | undefined;
}

/**
 * Request fields a framework may honour as the request's method
 * (Express's method-override, Symfony, Laravel, Rails via Rack). Withheld on
 * routes where honouring one could change what the gateway routed on.
 */
export const METHOD_OVERRIDE_HEADERS: readonly string[] = Object.freeze(['x-http-method-override', 'x-http-method', 'x-method-override']);

/** Never copied from any client: the gateway sets them, or they carry a gateway API key. */
const ALWAYS_DROPPED: ReadonlySet<string> = new Set(['host', 'expect', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-api-key']);

/** Copied only from a trusted proxy: from anyone else they are claims an upstream might believe. */
const FROM_TRUSTED_PROXY_ONLY: ReadonlySet<string> = new Set(['forwarded', 'x-real-ip']);

/**
 * Names the gateway sets, withholds or vouches for, in their `-` form. A
 * client field that is one of them once `_` is read as `-` (`X_Forwarded_For`,
 * `X-Quotagate_Plan`) is dropped, as Envoy's underscore policy does: CGI-style
 * stacks (Rack, WSGI, PHP) file both spellings under one key, so the forged
 * value could sit beside, or replace, the gateway's.
 */
const GATEWAY_OWNED: ReadonlySet<string> = new Set([...ALWAYS_DROPPED, ...FROM_TRUSTED_PROXY_ONLY, 'x-request-id', ...METHOD_OVERRIDE_HEADERS]);

const LOWER_X = 0x78;

/**
 * The headers for the upstream request, as a flat `[name, value, …]` list
 * (the form undici takes without converting).
 *
 * Dropped from the client's headers: hop-by-hop fields (and those named in
 * `Connection`), `host` (undici sends the upstream's), `expect` (node:http
 * has already answered `100-continue`; undici refuses the field),
 * `x-api-key` (whatever the route: an API key never reaches the upstream),
 * the fields in `credentialHeaders`, every `x-quotagate-*` field, the
 * forwarding fields the gateway sets itself, and any field that equals one
 * of those (or `x-request-id`, `x-real-ip`, `forwarded`, a method override)
 * once `_` is read as `-`. `forwarded` and `x-real-ip` are kept only from a
 * trusted proxy.
 *
 * Added: `x-quotagate-subject`, `-plan`, `-key-id` (when known; each as
 * {@link headerSafe} encodes it), `x-request-id` (the gateway's id, replacing
 * the client's), and `x-forwarded-for`, `-proto`, `-host` (a trusted proxy's
 * proto and host are kept; otherwise the listener's scheme and the request's
 * `Host`).
 */
export function buildUpstreamRequestHeaders(headers: IncomingHttpHeaders, context: UpstreamHeaderContext): string[] {
  const nominated = connectionNominated(headers.connection);
  const trusted = context.client.peerTrusted;
  const credentials = context.credentialHeaders;
  const out: string[] = [];
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || isHopByHop(name, nominated) || isDropped(name, trusted)) continue;
    if (credentials.length > 0 && credentials.includes(name)) continue;
    if (context.requestId !== undefined && name === 'x-request-id') continue;
    if (typeof value === 'string') {
      out.push(name, value);
    } else {
      for (const item of value) out.push(name, item);
    }
  }

  const identity = context.identity;
  if (identity !== undefined) {
    out.push('x-quotagate-subject', headerSafe(identity.subject), 'x-quotagate-plan', headerSafe(identity.plan));
    if (identity.keyId !== undefined) out.push('x-quotagate-key-id', headerSafe(identity.keyId));
  }
  if (context.requestId !== undefined) out.push('x-request-id', context.requestId);
  out.push('x-forwarded-for', context.client.forwardedFor);
  const proto = trusted ? firstValue(headers['x-forwarded-proto']) : undefined;
  out.push('x-forwarded-proto', proto ?? context.protocol);
  const host = (trusted ? firstValue(headers['x-forwarded-host']) : undefined) ?? headers.host;
  if (host !== undefined) out.push('x-forwarded-host', host);
  return out;
}

/** Fields never copied from the client (see {@link buildUpstreamRequestHeaders}); two Set lookups for most names. */
function isDropped(name: string, peerTrusted: boolean): boolean {
  if (ALWAYS_DROPPED.has(name)) return true;
  if (FROM_TRUSTED_PROXY_ONLY.has(name)) return !peerTrusted;
  if (name.startsWith(GATEWAY_HEADER_PREFIX)) return true;
  // Every gateway-owned name with a "-" starts with "x"; only those are re-read with "_" as "-".
  if (name.charCodeAt(0) !== LOWER_X || !name.includes('_')) return false;
  const dashed = name.replaceAll('_', '-');
  return GATEWAY_OWNED.has(dashed) || dashed.startsWith(GATEWAY_HEADER_PREFIX);
}

function firstValue(value: string | string[] | undefined): string | undefined {
  const first = typeof value === 'string' ? value : value?.[0];
  return first === undefined || first === '' ? undefined : first;
}

// Visible ASCII and space, except "%": what a header value carries verbatim.
const NOT_HEADER_SAFE = /[^\x20-\x24\x26-\x7e]/;

/**
 * A value as the upstream receives it in an identity header: verbatim when
 * it is visible ASCII (or space) without `%`, else percent-encoded as UTF-8
 * (`encodeURIComponent`). The encoding is unambiguous: `decodeURIComponent`
 * of the header gives the value back, so `jürgen` (`j%C3%BCrgen`) and the
 * literal `j%C3%BCrgen` (`j%25C3%25BCrgen`) never arrive alike, and a token
 * claim can never inject header syntax. Lone surrogates (not UTF-8) become
 * U+FFFD; token subjects holding one are refused before this.
 */
export function headerSafe(value: string): string {
  if (!NOT_HEADER_SAFE.test(value)) return value;
  try {
    return encodeURIComponent(value);
  } catch {
    return encodeURIComponent(toWellFormedText(value));
  }
}
