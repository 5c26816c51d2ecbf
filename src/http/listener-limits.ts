import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { GatewayConfig } from '../config/schema.js';

/**
 * What one client connection may hold on a listener: the server-side
 * timeouts and the connection cap (`proxy.*` in gateway.yaml). They are set
 * on the node:http server itself, so they cost nothing per request beyond a
 * null check; the request-body pace is the forwarder's (proxy/body-pace.ts).
 */
export interface ListenerLimits {
  /** From a connection's opening (first request) or a request's first byte (later ones) to the end of its headers, in ms. */
  readonly headersTimeoutMs: number;
  /** How long an idle keep-alive connection stays open after a response, in ms. */
  readonly keepAliveTimeoutMs: number;
  /** Longest time to receive a whole request (headers and body) from its first byte, in ms. */
  readonly requestTimeoutMs: number;
  /** Most connections open at once; further ones are closed as they arrive. Absent: no cap. */
  readonly maxConnections?: number;
}

/** The listener limits of `proxy:` (a reload cannot change them: they are set on the server at start). */
export function listenerLimitsOf(proxy: GatewayConfig['proxy']): ListenerLimits {
  return {
    headersTimeoutMs: proxy.headers_timeout_ms,
    keepAliveTimeoutMs: proxy.keep_alive_timeout_ms,
    requestTimeoutMs: proxy.request_timeout_ms,
    maxConnections: proxy.max_connections,
  };
}

/** How often node looks for requests past headers/request timeout: a quarter of the shorter one, within 10 ms – 30 s. */
function connectionsCheckingIntervalMs(limits: ListenerLimits): number {
  const shorter = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return Math.min(30_000, Math.max(10, Math.floor(shorter / 4)));
}

/**
 * The node:http server options for `limits`. node enforces `headersTimeout`
 * (from the connection's opening, or a later request's first byte, to the
 * end of the headers: a connection that never sends a byte is closed too)
 * and `requestTimeout` (to the end of the body) itself, answering `408` and
 * closing; they are checked every
 * {@link connectionsCheckingIntervalMs}, so one fires up to a quarter late.
 */
export function listenerServerOptions(limits: ListenerLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: connectionsCheckingIntervalMs(limits),
  };
}

/** Responses of pipelined requests waiting for the connection (see {@link closeQueuedResponses}). */
const QUEUED_RESPONSES = Symbol('quotagate.queuedResponses');

type TrackedSocket = Socket & { [QUEUED_RESPONSES]?: Set<ServerResponse> };

/**
 * Applies what the server options cannot express:
 * - `maxConnections`: node closes connections beyond it as they arrive;
 * - pipelined requests whose connection closes before their turn to answer
 *   (an HTTP/1.0 response without a length ends the connection): node never
 *   tells their responses, so whoever waits on them would wait for ever. They
 *   are destroyed and emit `close`, as a response whose client left does.
 */
export function enforceListenerLimits(server: Server, limits: ListenerLimits): void {
  if (limits.maxConnections !== undefined) server.maxConnections = limits.maxConnections;
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (response.socket === null) closeQueuedResponses(request.socket as TrackedSocket, response);
  });
}

/** Tracks a response queued behind others on `socket`; if the socket closes before its turn, it is closed too. */
function closeQueuedResponses(socket: TrackedSocket, response: ServerResponse): void {
  let queued = socket[QUEUED_RESPONSES];
  if (queued === undefined) {
    const responses = (queued = socket[QUEUED_RESPONSES] = new Set());
    socket.once('close', () => {
      for (const waiting of responses) {
        waiting.destroy();
        waiting.emit('close');
      }
      responses.clear();
    });
  }
  queued.add(response);
  // Its turn came: node now reports the connection's close to it itself.
  response.once('socket', () => queued.delete(response));
}
