import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { MiddlewareHandler } from 'hono';
import type { Forwarder } from '../../proxy/forwarder.js';
import type { ProxyEnv } from '../context.js';

export interface ForwardOptions {
  readonly forwarder: Forwarder;
  /** Default largest request body in bytes; a route's `max_body_bytes` overrides it. */
  readonly maxBodyBytes: number;
  /** Called with the upstream's time to response headers, in seconds. */
  readonly onUpstreamTimed: (routeName: string, seconds: number) => void;
}

/**
 * Streams the admitted request to the route's upstream and the upstream's
 * answer back, on node's own request and response objects (no Web stream
 * conversion on the hot path). Upstream failures before the response starts
 * are thrown as GatewayErrors (502, 504, 413) and answered by onError.
 */
export function forward(options: ForwardOptions): MiddlewareHandler<ProxyEnv> {
  return async function forwardHandler(c) {
    const { incoming, outgoing } = c.env ?? {};
    if (incoming === undefined || outgoing === undefined) {
      throw new Error('forwarding needs the node request and response (serve the app with @hono/node-server)');
    }
    const { route, identity } = c.var;
    const outcome = await options.forwarder.forward({
      upstream: route.config.upstream,
      incoming,
      outgoing,
      method: c.req.method,
      path: c.var.forwardPath,
      identity,
      responseHeaders: c.var.rateLimitHeaders,
      maxBodyBytes: route.config.max_body_bytes ?? options.maxBodyBytes,
      credentialHeaders: c.var.credentialHeaders,
    });
    options.onUpstreamTimed(route.config.name, outcome.upstreamMs / 1000);
    return RESPONSE_ALREADY_SENT;
  };
}
