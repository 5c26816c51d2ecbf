import fastifyHttpProxy from '@fastify/http-proxy';
import fastifyRateLimit from '@fastify/rate-limit';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { parseArgs } from 'node:util';
import { BARE_PROXY_CONNECTIONS } from './bare-proxy.js';
import { isMainModule, serveAsScript } from './process.js';
import type { RunningServer } from './upstream.js';

/**
 * The peer a user would otherwise pick: Fastify with @fastify/rate-limit on a
 * Redis store (an ioredis client; one EVALSHA per request) in front of
 * @fastify/http-proxy (undici, through @fastify/reply-from). Keyed on the same
 * `X-API-Key` header as quotagate's bench route, with a limit no bench run
 * reaches, so every request pays for the key, the limit check and the
 * forwarding, and none is denied. There is no key check: the row is a
 * generic rate-limited proxy, not an API-key gateway.
 */

/** A limit per key and hour that no bench run reaches. */
const LIMIT_PER_HOUR = 1_000_000_000;
/** quotagate's default `upstreams.<name>.keep_alive_timeout_ms`, as the bare proxy. */
const KEEP_ALIVE_TIMEOUT_MS = 4_000;
/** The header the limit is keyed on (as quotagate's bench route). */
const KEY_HEADER = 'x-api-key';

export interface FastifyProxyOptions {
  /** TCP port; 0 picks a free one. */
  readonly port: number;
  readonly host?: string;
  /** Origin of the upstream, e.g. `http://127.0.0.1:9000`. */
  readonly upstreamOrigin: string;
  /** The Redis of the rate-limit store, e.g. `redis://127.0.0.1:6379`. */
  readonly redisUrl: string;
}

/** Starts the Fastify proxy and resolves once it is listening. */
export async function startFastifyProxy(options: FastifyProxyOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const redis = new Redis(options.redisUrl, { connectTimeout: 1_000, maxRetriesPerRequest: 1 });
  const app = Fastify({ logger: false });
  await app.register(fastifyRateLimit, {
    redis,
    nameSpace: `qgbench-fastify-${process.pid}-`,
    max: LIMIT_PER_HOUR,
    timeWindow: 3_600_000,
    // Without the header the limit falls back to the client address, as a user's setup would.
    keyGenerator: (request) => {
      const key = request.headers[KEY_HEADER];
      return typeof key === 'string' ? key : request.ip;
    },
  });
  await app.register(fastifyHttpProxy, {
    upstream: options.upstreamOrigin,
    undici: { connections: BARE_PROXY_CONNECTIONS, pipelining: 1, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS },
  });
  await app.listen({ port: options.port, host });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    async close() {
      await app.close();
      redis.disconnect();
    },
  };
}

if (isMainModule(import.meta.url)) {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, host: { type: 'string' }, upstream: { type: 'string' }, redis: { type: 'string' } },
  });
  serveAsScript(values.port, 9002, (port) =>
    startFastifyProxy({
      port,
      host: values.host ?? '127.0.0.1',
      upstreamOrigin: values.upstream ?? process.env['UPSTREAM_URL'] ?? 'http://127.0.0.1:9000',
      redisUrl: values.redis ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
    }));
}
