import { connectionNominated, isHopByHop } from './hop-by-hop.js';

/** Response headers as undici parses them: lowercase names, arrays for repeated fields. */
export type UpstreamResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * Lowercase names of the fields the gateway writes on proxied responses
 * (src/core/ratelimit-headers.ts, the overage and shadow marks, the request
 * id): an upstream field whose name is not here is never one a gateway
 * header replaces, which one Set lookup tells without comparing names.
 */
export const GATEWAY_FIELD_NAMES: ReadonlySet<string> = new Set([
  'ratelimit-policy',
  'ratelimit',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  ...['second', 'minute', 'hour', 'day', 'month'].flatMap((w) => [`x-ratelimit-limit-${w}`, `x-ratelimit-remaining-${w}`]),
  'x-quotagate-limit',
  'x-quotagate-overage',
  'x-quotagate-shadow',
  'x-request-id',
]);

/** Whether `gatewayHeaders` (or the request id) writes the upstream field `name` (lowercase, as undici gives it). */
function replacedByGateway(name: string, gatewayHeaders: ReadonlyArray<readonly [string, string]>, requestId: string | undefined): boolean {
  if (!GATEWAY_FIELD_NAMES.has(name)) return false;
  if (requestId !== undefined && name === 'x-request-id') return true;
  for (let i = 0; i < gatewayHeaders.length; i++) {
    const own = gatewayHeaders[i]![0];
    if (own.length === name.length && own.toLowerCase() === name) return true;
  }
  return false;
}

/**
 * The headers for the client's response, as a flat `[name, value, …]` list
 * (the form `ServerResponse.writeHead` takes): the upstream's headers without
 * hop-by-hop fields (and those named in `Connection`), then the gateway's
 * own `gatewayHeaders` (the rate-limit headers), then `x-request-id` when
 * `requestId` is given. A gateway header replaces every upstream field of
 * the same name, so a client never sees two conflicting `RateLimit`
 * answers; names are compared case-insensitively. Allocates nothing but the
 * list for the common response (no upstream field the gateway writes too).
 */
export function buildClientResponseHeaders(
  upstream: UpstreamResponseHeaders,
  gatewayHeaders: ReadonlyArray<readonly [string, string]>,
  requestId?: string,
): string[] {
  const nominated = connectionNominated(upstream['connection']);
  const out: string[] = [];
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || isHopByHop(name, nominated)) continue;
    if (replacedByGateway(name, gatewayHeaders, requestId)) continue;
    if (typeof value === 'string') {
      out.push(name, value);
    } else {
      for (const item of value) out.push(name, item);
    }
  }
  for (let i = 0; i < gatewayHeaders.length; i++) out.push(gatewayHeaders[i]![0], gatewayHeaders[i]![1]);
  if (requestId !== undefined) out.push('x-request-id', requestId);
  return out;
}
