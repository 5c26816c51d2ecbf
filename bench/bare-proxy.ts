import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';
import { isMainModule, serveAsScript } from './process.js';
import type { RunningServer } from './upstream.js';

/**
 * The ceiling for any Node gateway: a reverse proxy that forwards every
 * request with no authentication, no limits and no headers of its own. It
 * uses the same transport as quotagate (node:http in, an undici Pool out,
 * bodies streamed both ways with `pipe`), so the distance between this row and
 * quotagate's in the bench is what quotagate's checks cost.
 */

/** Connections per upstream: quotagate's default `upstreams.<name>.connections`. */
export const BARE_PROXY_CONNECTIONS = 128;
/** quotagate's default `upstreams.<name>.keep_alive_timeout_ms`. */
const KEEP_ALIVE_TIMEOUT_MS = 4_000;

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1); Host, which the pool sets for the
 * upstream; and Expect, which node:http has already answered with
 * `100 Continue` (undici refuses to send it).
 */
const NOT_FORWARDED = new Set([
  'connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'trailer', 'host', 'expect',
]);

export interface BareProxyOptions {
  /** TCP port; 0 picks a free one. */
  readonly port: number;
  /** Interface to bind; 127.0.0.1 when omitted. */
  readonly host?: string;
  /** Origin of the upstream, e.g. `http://127.0.0.1:9000`. */
  readonly upstreamOrigin: string;
}

/** Starts the proxy and resolves once it is listening. */
export async function startBareProxy(options: BareProxyOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const pool = new Pool(options.upstreamOrigin, {
    connections: BARE_PROXY_CONNECTIONS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  });
  const server = createServer((request, response) => {
    void forward(pool, request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    async close() {
      await new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      });
      await pool.close();
    },
  };
}

async function forward(pool: Pool, request: IncomingMessage, response: ServerResponse): Promise<void> {
  let upstream: Dispatcher.ResponseData;
  try {
    upstream = await pool.request({
      method: request.method as Dispatcher.HttpMethod,
      path: request.url ?? '/',
      headers: forwardableHeaders(request.headers),
      body: hasBody(request) ? request : null,
    });
  } catch {
    if (response.destroyed) return;
    response.writeHead(502, { 'Content-Type': 'text/plain', 'Content-Length': '11' });
    response.end('Bad Gateway');
    return;
  }
  try {
    response.writeHead(upstream.statusCode, forwardableHeaders(upstream.headers));
  } catch {
    // node refused a header the upstream sent.
    upstream.body.destroy();
    response.writeHead(502, { 'Content-Type': 'text/plain', 'Content-Length': '11' });
    response.end('Bad Gateway');
    return;
  }
  streamBody(upstream.body, response);
}

/**
 * Pipes the upstream's body to the client. A failing body destroys the
 * client's response (its status is already sent); a client that leaves
 * destroys the body, which aborts the upstream request. This is what
 * `stream.pipeline` does, without the AbortController, DOMException and
 * end-of-stream bookkeeping it allocates for every response (quotagate's
 * forwarder avoids them the same way).
 */
function streamBody(body: Readable, response: ServerResponse): void {
  body.on('error', () => response.destroy());
  response.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  body.pipe(response);
}

function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** `headers` without hop-by-hop fields, including those named in `Connection`. */
function forwardableHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const connection = headers['connection'];
  const named = connection === undefined
    ? undefined
    : new Set(String(connection).toLowerCase().split(',').map((token) => token.trim()));
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || NOT_FORWARDED.has(name) || named?.has(name) === true) continue;
    out[name] = value;
  }
  return out;
}

if (isMainModule(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' }, upstream: { type: 'string' } } });
  serveAsScript(values.port, 9001, (port) =>
    startBareProxy({ port, host: values.host ?? '127.0.0.1', upstreamOrigin: values.upstream ?? process.env['UPSTREAM_URL'] ?? 'http://127.0.0.1:9000' }));
}
