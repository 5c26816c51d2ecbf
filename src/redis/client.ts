import { Cluster, type ClusterNode, Redis, type RedisOptions } from 'ioredis';
import type { GatewayConfig } from '../config/schema.js';
import { CLUSTER_RETRY_DELAY_MS, maxClusterRedirections } from './cluster-retries.js';

/** The `store.redis` section of gateway.yaml. */
export type RedisStoreConfig = NonNullable<GatewayConfig['store']['redis']>;

/** What a connection needs of the section (the readiness probe's interval is not a connection's). */
export type RedisConnectionConfig = Omit<RedisStoreConfig, 'probe_interval_ms'>;

/** A connection to a single Redis (possibly found through Sentinel) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** Whether `client` is a Redis Cluster client (else one Redis, possibly found through Sentinel). */
export function isClusterClient(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/** Longest pause between two reconnection attempts, in ms. */
const MAX_RECONNECT_DELAY_MS = 2_000;

/** The first attempt goes at once (a connection retired after a timeout is replaced without a pause), then 100 ms more each time. */
const reconnectDelayMs = (attempt: number): number => Math.min((attempt - 1) * 100, MAX_RECONNECT_DELAY_MS);

/**
 * A client for `config`: `url` → one Redis, `sentinel` → the master that the
 * sentinels name, `cluster` → a Redis Cluster found from its seed nodes.
 *
 * It connects at once and, whenever the connection drops, reconnects forever
 * (backing off to every 2 s), so the gateway recovers by itself when Redis
 * returns. Meanwhile it fails fast instead of queueing: commands are rejected
 * while disconnected (no offline queue), a sent command that gets no reply
 * rejects after `command_timeout_ms`, and a command whose connection dropped
 * is failed, never resent (a resent consume could charge twice).
 *
 * The caller should listen to `error` events (ioredis logs unhandled ones to
 * stderr) and may await `waitUntilReady`.
 *
 * `overrides.commandTimeoutMs` replaces command_timeout_ms as the client's own
 * command timeout: a caller that bounds each of its calls itself (the
 * limiter's StoreCallGate) sets a longer one, a backstop for the commands
 * the client sends by itself (the ready check on a new connection).
 */
export function createRedisClient(config: RedisConnectionConfig, overrides: { readonly commandTimeoutMs?: number } = {}): RedisClient {
  const options: RedisOptions = {
    commandTimeout: overrides.commandTimeoutMs ?? config.command_timeout_ms,
    connectTimeout: config.connect_timeout_ms,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: reconnectDelayMs,
    lazyConnect: false,
    // ioredis sends CLIENT SETINFO on every new connection; Redis before 7.2
    // answers ERR to both, each counted in INFO errorstats (a Cluster opens a
    // connection per slot refresh, i.e. per MOVED during a resharding).
    disableClientInfo: true,
  };
  if (config.cluster !== undefined) {
    return new Cluster(config.cluster.nodes.map(parseHostPort), {
      redisOptions: { ...options, ...secret('password', config.cluster.password) },
      enableOfflineQueue: false,
      clusterRetryStrategy: reconnectDelayMs,
      slotsRefreshTimeout: config.connect_timeout_ms,
      // A resharding's MOVED/ASK/TRYAGAIN and a failover's CLUSTERDOWN are
      // retried until the command timeout, never failed earlier (cluster-retries.ts).
      maxRedirections: maxClusterRedirections(config.command_timeout_ms),
      retryDelayOnClusterDown: CLUSTER_RETRY_DELAY_MS,
      retryDelayOnTryAgain: CLUSTER_RETRY_DELAY_MS,
      retryDelayOnFailover: CLUSTER_RETRY_DELAY_MS,
      lazyConnect: false,
    });
  }
  if (config.sentinel !== undefined) {
    const { master_name, sentinels, password, sentinel_password } = config.sentinel;
    return new Redis({
      ...options,
      sentinels: sentinels.map(parseHostPort),
      name: master_name,
      sentinelRetryStrategy: reconnectDelayMs,
      failoverDetector: true,
      ...secret('password', password),
      ...secret('sentinelPassword', sentinel_password),
    });
  }
  if (config.url !== undefined) return new Redis(config.url, options);
  throw new Error('store.redis: set exactly one of url, sentinel, cluster');
}

/** `{ [name]: value }`, or nothing when the value is absent or empty (`${REDIS_PASSWORD:-}` unset). */
function secret<K extends string>(name: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined || value === '' ? {} : ({ [name]: value } as Record<K, string>);
}

/** `host:port` or `[v6]:port` (validated by the config schema) → an ioredis node. */
function parseHostPort(value: string): ClusterNode & { host: string; port: number } {
  const separator = value.lastIndexOf(':');
  const host = value.slice(0, separator).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(value.slice(separator + 1)) };
}

/** Resolves once `client` is ready for commands; rejects after `timeoutMs` or if it ends. */
export function waitUntilReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('end', onEnd);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onReady = () => done();
    const onEnd = () => done(new Error('Redis connection ended before it was ready'));
    const timer = setTimeout(() => done(new Error(`Redis not ready after ${timeoutMs} ms`)), timeoutMs);
    client.on('ready', onReady);
    client.on('end', onEnd);
  });
}

/** Longest closeRedisClient waits for QUIT's reply, in ms, before it disconnects. */
const QUIT_TIMEOUT_MS = 1_000;

/**
 * Closes `client`: QUIT when connected (pending replies arrive first), else an
 * immediate disconnect, which also stops reconnection attempts. A QUIT that
 * gets no reply within a second (a blackholed connection) is given up.
 */
export async function closeRedisClient(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    const quit = await Promise.race([
      client.quit().then(() => true, () => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), QUIT_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (quit) return;
    // Fall through: the connection is gone, or QUIT went unanswered.
  }
  client.disconnect();
}
