import { connectionNominated, isHopByHop } from './hop-by-hop.js';

/** Response headers as undici parses them: lowercase names, arrays for repeated fields. */
export type UpstreamResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * The headers for the client's response, as a flat `[name, value, …]` list
 * (the form `ServerResponse.writeHead` takes): the upstream's headers without
 * hop-by-hop fields (and those named in `Connection`), then the gateway's
 * own `gatewayHeaders` (the rate-limit headers). A gateway header replaces
 * every upstream field of the same name, so a client never sees two
 * conflicting `RateLimit` answers. Names in `gatewayHeaders` should be
 * lowercase; they are compared case-insensitively either way.
 */
export function buildClientResponseHeaders(
  upstream: UpstreamResponseHeaders,
  gatewayHeaders: ReadonlyArray<readonly [string, string]>,
): string[] {
  const nominated = connectionNominated(upstream['connection']);
  const overridden = gatewayHeaders.length === 0 ? undefined : gatewayHeaders.map(([name]) => name.toLowerCase());
  const out: string[] = [];
  for (const name of Object.keys(upstream)) {
    const value = upstream[name];
    if (value === undefined || isHopByHop(name, nominated)) continue;
    if (overridden !== undefined && overridden.includes(name)) continue;
    if (typeof value === 'string') {
      out.push(name, value);
    } else {
      for (const item of value) out.push(name, item);
    }
  }
  for (const [name, value] of gatewayHeaders) out.push(name, value);
  return out;
}
