import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../core/identity.js';
import type { ClientAddress } from './client-address.js';
import { connectionNominated, isHopByHop } from './hop-by-hop.js';

/** Prefix of the headers the gateway itself sends upstream; never taken from a client. */
export const GATEWAY_HEADER_PREFIX = 'x-quotagate-';

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
 * The headers for the upstream request, as a flat `[name, value, …]` list
 * (the form undici takes without converting).
 *
 * Dropped from the client's headers: hop-by-hop fields (and those named in
 * `Connection`), `host` (undici sends the upstream's), `expect` (node:http
 * has already answered `100-continue`; undici refuses the field), the
 * credential fields, every `x-quotagate-*` field, and the forwarding fields
 * the gateway sets itself. `forwarded` and `x-real-ip` are kept only from a
 * trusted proxy: from anyone else they are claims an upstream might believe.
 *
 * Added: `x-quotagate-subject`, `-plan`, `-key-id` (when known), `x-request-id`
 * (the gateway's id, replacing the client's), and
 * `x-forwarded-for`, `-proto`, `-host` (a trusted proxy's proto and host are
 * kept; otherwise the listener's scheme and the request's `Host`).
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

/** Fields never copied from the client (see {@link buildUpstreamRequestHeaders}). */
function isDropped(name: string, peerTrusted: boolean): boolean {
  switch (name) {
    case 'host':
    case 'expect':
    case 'x-forwarded-for':
    case 'x-forwarded-proto':
    case 'x-forwarded-host':
      return true;
    case 'forwarded':
    case 'x-real-ip':
      return !peerTrusted;
    default:
      return name.startsWith(GATEWAY_HEADER_PREFIX);
  }
}

function firstValue(value: string | string[] | undefined): string | undefined {
  const first = typeof value === 'string' ? value : value?.[0];
  return first === undefined || first === '' ? undefined : first;
}

// Visible ASCII and space: what a header value can carry verbatim.
const NOT_HEADER_SAFE = /[^\x20-\x7e]/;

/**
 * `value` when it can be sent as a header value verbatim; otherwise its
 * percent-encoding (RFC 3986), so that an identity from a token claim can
 * never inject header syntax or arrive mangled as Latin-1.
 */
export function headerSafe(value: string): string {
  return NOT_HEADER_SAFE.test(value) ? encodeURIComponent(value) : value;
}
