import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort, type ChildProcesses } from './children.js';

/**
 * The rows of the bench. Each target is something autocannon can load: a URL,
 * the headers every request carries, and how to start (and stop) whatever
 * serves it. Every target forwards to (or is) the one shared bench upstream.
 * To add a row, add an entry to `defineTargets`.
 */

/**
 * The plain bench API key. A public bench credential: its SHA-256 is in
 * bench/gateway.bench.yaml, and it grants nothing anywhere else.
 */
export const BENCH_API_KEY = 'qg_sCnAQd6ysowCPvW8Aw1Qoi_4emljv';

/** The path every bench request asks for. */
export const BENCH_PATH = '/bench/hello';

export interface BenchTarget {
  /** Short name, used by `--only` and in the table. */
  readonly name: string;
  /** One line saying what the row measures. */
  readonly description: string;
  /** What autocannon requests. */
  readonly url: string;
  /** Headers sent with every request. */
  readonly headers: Readonly<Record<string, string>>;
  /** Whether the row uses the bench's Redis (its commands per request are then counted). */
  readonly usesRedis: boolean;
  /** Starts what the target needs beyond the shared upstream; resolves once it answers. */
  start(): Promise<StartedTarget>;
}

export interface StartedTarget {
  /** The process whose CPU time and peak RSS the row reports (with its descendants): the proxy, or the upstream itself. */
  readonly pid: number;
  /** The last lines this target's processes wrote, oldest first. */
  outputTail(): readonly string[];
  /** Why a process of this target stopped on its own (with its last output); undefined while all run. */
  unexpectedExit(): string | undefined;
  /** Stops what start() started. */
  stop(): Promise<void>;
}

export interface TargetContext {
  /** Origin of the shared bench upstream, already running. */
  readonly upstreamUrl: string;
  /** Its process id. */
  readonly upstreamPid: number;
  /** The Redis of the Redis-backed rows (started only when a selected row uses it, so read when a row starts). */
  readonly redisUrl: () => string;
  /** CPUs the proxy runs on (`taskset -c`), when pinning is in effect. */
  readonly proxyCpus: string | undefined;
  readonly children: ChildProcesses;
}

/** Every target, in table order. The ratios in the report assume `upstream` and `bare` exist. */
export async function defineTargets(context: TargetContext): Promise<BenchTarget[]> {
  const [barePort, fastifyPort, gatewayPort, adminPort, redisGatewayPort, redisAdminPort] = [
    await findFreePort(),
    await findFreePort(),
    await findFreePort(),
    await findFreePort(),
    await findFreePort(),
    await findFreePort(),
  ];
  const pinned = context.proxyCpus === undefined ? {} : { cpus: context.proxyCpus };
  const fastifyUrl = `http://127.0.0.1:${fastifyPort}`;
  const redisGatewayUrl = `http://127.0.0.1:${redisGatewayPort}`;
  const bareUrl = `http://127.0.0.1:${barePort}`;
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  return [
    {
      name: 'upstream',
      description: 'the bench upstream, directly (no proxy)',
      url: `${context.upstreamUrl}${BENCH_PATH}`,
      headers: {},
      usesRedis: false,
      start: async () => ({ pid: context.upstreamPid, outputTail: () => [], unexpectedExit: () => undefined, stop: async () => {} }),
    },
    {
      name: 'bare',
      description: 'bare Node reverse proxy (node:http + undici Pool, no checks): the ceiling',
      url: `${bareUrl}${BENCH_PATH}`,
      headers: {},
      usesRedis: false,
      start: async () => {
        const server = await context.children.start({
          name: 'bare proxy',
          entry: 'bench/bare-proxy.ts',
          args: ['--port', String(barePort), '--upstream', context.upstreamUrl],
          readyUrl: bareUrl,
          ...pinned,
        });
        return server;
      },
    },
    {
      name: 'fastify',
      description: 'Fastify + @fastify/rate-limit (Redis store, ioredis) + @fastify/http-proxy, limit keyed on X-API-Key, never reached: the peer',
      url: `${fastifyUrl}${BENCH_PATH}`,
      headers: { 'X-API-Key': BENCH_API_KEY },
      usesRedis: true,
      start: async () => {
        const server = await context.children.start({
          name: 'fastify',
          entry: 'bench/fastify-proxy.ts',
          args: ['--port', String(fastifyPort), '--upstream', context.upstreamUrl, '--redis', context.redisUrl()],
          readyUrl: fastifyUrl,
          ...pinned,
        });
        return server;
      },
    },
    {
      name: 'quotagate',
      description: 'quotagate, memory store, valid key in X-API-Key, hour/day/month limits never reached, embedded ledger database (a fresh data directory)',
      url: `${gatewayUrl}${BENCH_PATH}`,
      headers: { 'X-API-Key': BENCH_API_KEY },
      usesRedis: false,
      start: async () => {
        const server = await context.children.start({
          name: 'quotagate',
          entry: 'src/bin.ts',
          args: ['serve', '--config', 'bench/gateway.bench.yaml'],
          env: {
            QG_PORT: String(gatewayPort),
            QG_ADMIN_PORT: String(adminPort),
            UPSTREAM_URL: context.upstreamUrl,
            QG_DATA_DIR: freshDataDir(),
          },
          readyUrl: gatewayUrl,
          ...pinned,
        });
        return server;
      },
    },
    {
      name: 'quotagate-redis',
      description: "quotagate, Redis store (the bench's Redis), otherwise as quotagate",
      url: `${redisGatewayUrl}${BENCH_PATH}`,
      headers: { 'X-API-Key': BENCH_API_KEY },
      usesRedis: true,
      start: async () => {
        const server = await context.children.start({
          name: 'quotagate-redis',
          entry: 'src/bin.ts',
          args: ['serve', '--config', 'bench/gateway.bench-redis.yaml'],
          env: {
            QG_PORT: String(redisGatewayPort),
            QG_ADMIN_PORT: String(redisAdminPort),
            UPSTREAM_URL: context.upstreamUrl,
            QG_DATA_DIR: freshDataDir(),
            REDIS_URL: context.redisUrl(),
          },
          readyUrl: redisGatewayUrl,
          ...pinned,
        });
        return server;
      },
    },
  ];
}

/** A new, empty directory for one start's embedded database, under the system's temp directory. */
function freshDataDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'quotagate-bench-')), 'data');
}
