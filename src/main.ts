/**
 * The composition root: the only module that reads process.env, opens the
 * listeners (through http/listeners.ts), installs signal handlers or exits.
 * It loads the config, builds the concrete parts, hands them to buildApp(),
 * serves the apps and owns shutdown. Nothing runs at import; src/bin.ts
 * calls main(), which hands the command line to cli/commands.ts.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { type AppDeps, buildApp } from './app.js';
import { auditSpikeBlock } from './admin/blocks.js';
import { LocalDenialCounter } from './core/denial-fleet.js';
import { DenialTally } from './core/denial-tally.js';
import { BlockedSubjects, LocalSubjectBlocks } from './core/subject-blocks.js';
import { addDenials, pruneDenials } from './db/denials.js';
import { RedisDenialCounter } from './redis/denial-counters.js';
import { appendEventsToStream } from './redis/event-append.js';
import { RedisSubjectBlocks } from './redis/subject-blocks.js';
import { DenialFlusher } from './usage/denial-flusher.js';
import { FileKeyStore } from './auth/file-key-store.js';
import { createJwtAuthenticator } from './auth/jwt-authenticator.js';
import { runCommand } from './cli/commands.js';
import type { CommandIo } from './cli/io.js';
import { type CacheInvalidator, NO_CACHE_INVALIDATION } from './auth/cache-invalidation.js';
import { type DatabaseKeys, buildDatabaseKeys } from './auth/database-keys.js';
import { ConfigError, loadConfigFile } from './config/load.js';
import { configWarnings } from './config/warnings.js';
import { type DatabaseConnections, describeDatabase, openDatabases } from './db/connect.js';
import { loadMigrations, migrate } from './db/migrations.js';
import type { ReloadResult } from './config/restart.js';
import type { GatewayConfig } from './config/schema.js';
import { type Clock, systemClock } from './core/clock.js';
import type { DirtyUsageSource, UsageHistory } from './core/usage-ledger.js';
import { listenerLimitsOf } from './http/listener-limits.js';
import { loadUiBundle, type UiBundle } from './http/ui/ui-bundle.js';
import { drain, listenAdmin, listenProxy, settledBy, urlOf } from './http/listeners.js';
import type { HealthState } from './http/routes/admin.js';
import { CIRCUIT_STATE_VALUE, CircuitBreaker } from './limiter/circuit-breaker.js';
import { GuardedLimiter } from './limiter/guarded-limiter.js';
import type { Limiter } from './limiter/limiter.js';
import { LocalDenyCache } from './limiter/local-deny-cache.js';
import { MemoryEventOutbox } from './limiter/memory-event-outbox.js';
import { MemoryLimiter } from './limiter/memory-limiter.js';
import { ConfigReloader, type Reloader, type ServingGeneration } from './reload.js';
import { RedisLimiter } from './limiter/redis-limiter.js';
import { closeRedisClient, createRedisClient, type RedisClient, type RedisStoreConfig, waitUntilReady } from './redis/client.js';
import { logClientErrors } from './redis/client-error-log.js';
import { classifyRedisError, FirstErrorOfKindLog } from './redis/error-kinds.js';
import { type ProbeReport, RedisReadinessProbe } from './redis/readiness-probe.js';
import { ALWAYS_READY } from './core/readiness.js';
import { readNoscriptErrors } from './redis/noscript-errors.js';
import type { GatewayMetrics } from './metrics/metrics.js';
import { createMetrics, registerDatabaseQueries, registerReplicaGauges } from './metrics/metrics.js';
import { registerNoscriptGauge } from './metrics/noscript-gauge.js';
import { ClientAddressResolver } from './proxy/client-address.js';
import { Forwarder } from './proxy/forwarder.js';
import { bodyPaceLimitsOf } from './proxy/body-pace.js';
import { UpstreamPools } from './proxy/upstream-pools.js';
import { DatabaseUsageLedger } from './usage/database-ledger.js';
import { LedgerFlusher } from './usage/ledger-flusher.js';
import type { EventOutbox } from './core/quota-events.js';
import { webhookSigningKey } from './core/webhook-signature.js';
import { webhookName } from './config/schema.js';
import { webhookSecrets } from './config/webhook-secrets.js';
import type { Database } from './db/database.js';
import { registerWebhookMetrics } from './metrics/webhook-metrics.js';
import { RedisEventOutbox } from './redis/event-outbox.js';
import { WebhookDeliverer } from './usage/webhook-deliverer.js';

/** A gateway that is serving; returned by startGateway for main() and for tests. */
export interface RunningGateway {
  /** `http://host:port` of the proxy listener. */
  readonly proxyUrl: string;
  /** `http://host:port` of the admin listener. */
  readonly adminUrl: string;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to
   * `shutdown.drain_timeout_ms`, then closes what is left (client
   * connections, upstream requests of every config generation, admin
   * connections), flushes the usage ledger and releases every client.
   * Resolves once everything is closed.
   */
  shutdown(): Promise<void>;
  /** Tells every instance that a key or subject changed (the admin API's; no-op without a database). */
  readonly cacheInvalidator: CacheInvalidator;
  /** The opened databases; undefined when started with `database: false`. */
  readonly databases: DatabaseConnections | undefined;
  /**
   * The store's event outbox, which the webhook deliverer reads (with the
   * memory store, the in-process queue its limiter writes to; tests append
   * events to it).
   */
  readonly eventOutbox: EventOutbox;
  /**
   * On the memory store, the outbox its limiter writes quota events to
   * (bounded by `events.stream_max_length`), for the webhook deliverer to
   * claim from; undefined on Redis, whose events go to the event streams.
   */
  readonly memoryEventOutbox: MemoryEventOutbox | undefined;
  /**
   * Re-reads the config file (StartOptions.loadConfig) and swaps in routes,
   * plans and upstreams; `trigger` (`SIGHUP`, `admin`) is logged. Resolves
   * with a refusal, never rejects, for an invalid or unappliable file.
   */
  reload(trigger: string): Promise<ReloadResult>;
}

export interface StartOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Collect default process metrics (off in tests that build many gateways). */
  readonly processMetrics?: boolean;
  /** The admin API's bearer token (runServe reads the variable `admin.token_env` names); absent or empty: the API is off. */
  readonly adminToken?: string | undefined;
  /**
   * Open the `postgres` section's database and migrate it (default true).
   * Tests of gateways that need no database pass false: the embedded engine
   * takes seconds to start.
   */
  readonly database?: boolean;
  /** Reads the config file again for a reload; absent: reloads are refused (no file to read). */
  readonly loadConfig?: () => Promise<GatewayConfig>;
  /**
   * Tests only (`quotagate serve` never sets it): the epoch ms the Redis
   * store's scripts take as now instead of Redis TIME
   * (RedisLimiter.nowForTesting), so a test's manual clock moves the
   * store's windows too, and no test waits for a real boundary.
   */
  readonly redisNowForTesting?: () => number;
  /**
   * The secret of each `events.webhooks` entry, in order (runServe reads the
   * variables their `secret_env` names); required when any is configured.
   */
  readonly webhookSecrets?: readonly string[];
  /** Where the pages' bundle is read from (default: dist/ui beside the code, uiAssetsDirectory()); tests point it elsewhere. */
  readonly uiDirectory?: string;
}

/** Builds every part from `config` and starts both listeners. */
export async function startGateway(config: GatewayConfig, options: StartOptions): Promise<RunningGateway> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const health: HealthState = { ready: false, draining: false, store: ALWAYS_READY };
  const metrics = createMetrics({ collectProcessMetrics: options.processMetrics ?? true });
  const databases = options.database === false ? undefined : await openMigratedDatabases(config, logger);
  // A subject changed at any instance (a credit grant, a reset, a new plan): its local denial here is forgotten too.
  let forgetDenial: (subjectId: string) => void = () => {};
  const databaseKeys =
    databases === undefined ? undefined : await startDatabaseKeys(config, databases, clock, metrics, logger, (subjectId) => forgetDenial(subjectId));
  const ledger = databases === undefined ? undefined : new DatabaseUsageLedger(databases.primary);
  const { limiter, store, probe, outbox, memoryEventOutbox, redisClient } = await buildGuardedLimiter(config, clock, metrics, logger, ledger, health, options.redisNowForTesting);
  // Under limit_by: key, the subject's keys' local denials too.
  forgetDenial = (subjectId) => {
    limiter.forget(subjectId);
    limiter.forgetKeysOf(subjectId);
  };
  const flusher = ledger === undefined ? undefined : startLedgerFlusher(config, store, ledger, clock, metrics, logger);
  const abuse = await startAbuseDetection(config, redisClient, databases, clock, logger, memoryEventOutbox);
  // Signed with the wall clock whatever `clock` is: receivers check webhook-timestamp against theirs.
  const deliverer = databases === undefined ? undefined : startWebhookDeliverer(config, outbox, databases.primary, options.webhookSecrets ?? [], systemClock, metrics, logger);
  const ui = loadUiBundle(options.uiDirectory);
  if (!ui.ok && (config.dashboard.enabled || config.dashboard.operator_page)) {
    logger.warn({ problem: ui.problem }, 'the dashboard pages are not built; they answer 503 until the gateway restarts with them');
  }
  const lasting: LastingParts = {
    limiter,
    databaseKeys: databaseKeys?.keys,
    databases,
    metrics,
    clock,
    logger,
    health,
    adminToken: options.adminToken,
    abuse: abuse.parts,
    ui,
  };
  const reloader = new ConfigReloader({
    initial: config,
    build: (generationConfig, generationReloader) => buildGeneration(generationConfig, lasting, generationReloader),
    load: options.loadConfig ?? (() => Promise.reject(new ConfigError(['no config file to reload: the gateway was started from a config object']))),
    metrics,
    logger,
    clock,
  });
  // The first verdict is known before /readyz can be asked (bounded by command_timeout_ms).
  await probe?.start();
  const proxyLimits = listenerLimitsOf(config.proxy);
  const proxyServer = await listenProxy(reloader.proxy, config.listeners.proxy, proxyLimits);
  // The admin listener gets the same timeouts; its connections are few and not capped.
  const adminServer = await listenAdmin(reloader.admin, config.listeners.admin, { ...proxyLimits, maxConnections: undefined });
  health.ready = true;

  return {
    proxyUrl: urlOf(proxyServer),
    adminUrl: urlOf(adminServer),
    cacheInvalidator: databaseKeys?.keys.invalidator ?? NO_CACHE_INVALIDATION,
    databases,
    eventOutbox: outbox,
    memoryEventOutbox,
    reload: (trigger) => reloader.reload(trigger),
    async shutdown() {
      health.draining = true;
      const drainTimeoutMs = reloader.config.shutdown.drain_timeout_ms;
      const deadlineMs = performance.now() + drainTimeoutMs;
      await drain(proxyServer, drainTimeoutMs);
      // What the drain did not finish by the deadline is cut: every generation's
      // upstream requests (old ones after a reload too), then admin connections.
      if ((await settledBy(reloader.close(), deadlineMs)) === 'late') await reloader.destroy();
      await drain(adminServer, Math.max(1, deadlineMs - performance.now()));
      // The last charges reach the ledger before the store closes.
      await flusher?.stop().catch((error: unknown) => logger.error({ err: error }, 'final usage ledger flush failed'));
      await abuse.stop();
      // Attempts in flight finish (each within its timeout_ms); what is left stays pending in the database.
      await deliverer?.stop();
      await outbox.close().catch((error: unknown) => logger.warn({ err: error }, 'closing the event outbox failed'));
      await probe?.stop();
      await limiter.close().catch((error: unknown) => logger.warn({ err: error }, 'closing the limit store failed'));
      await databaseKeys?.close();
      await databases?.close();
    },
  };
}

/** The parts every config generation shares: built once at start, closed at shutdown. */
interface LastingParts {
  readonly limiter: GuardedLimiter;
  /** The database key lookup path; undefined without a database (keys then come from gateway.yaml only). */
  readonly databaseKeys: DatabaseKeys | undefined;
  readonly databases: DatabaseConnections | undefined;
  readonly metrics: GatewayMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly health: HealthState;
  readonly adminToken: string | undefined;
  readonly abuse: NonNullable<AppDeps['abuse']>;
  /** The compiled web pages, read once at start (a reload may turn the pages on or off, not rebuild them). */
  readonly ui: UiBundle;
}

/**
 * Everything built from one config that a reload replaces: the client
 * address resolver, the forwarder with its upstream pools, the JWT
 * authenticator and both apps. `reloader` serves the generation (the admin
 * API's `POST /admin/reload` asks it).
 */
function buildGeneration(config: GatewayConfig, lasting: LastingParts, reloader: Reloader): ServingGeneration {
  const { limiter, databaseKeys, metrics, clock, logger } = lasting;
  const clientAddress = new ClientAddressResolver(config.proxy.trusted_proxies);
  const forwarder = new Forwarder({
    pools: new UpstreamPools(config.upstreams),
    clientAddress,
    requestBodyPace: bodyPaceLimitsOf(config.proxy),
  });
  const apps = buildApp({
    config,
    limiter,
    keyStore: databaseKeys?.keyStore ?? new FileKeyStore(config.auth.api_keys.keys),
    onApiKeyAccepted: databaseKeys?.onKeyAccepted,
    tokenAuthenticator: createJwtAuthenticator(config.auth.jwt, {
      planNames: Object.keys(config.plans),
      clock,
      onJwksFetch: (issuer, outcome) => {
        metrics.jwksFetches.inc({ outcome: outcome.ok ? 'ok' : 'error' });
        if (!outcome.ok) logger.warn({ issuer, err: outcome.error }, 'JWKS fetch failed; the keys already loaded stay in use');
      },
      onTokenCacheLookup: (result) => metrics.tokenCacheLookups.inc({ result }),
    }),
    forwarder,
    clientAddress,
    metrics,
    clock,
    logger,
    health: lasting.health,
    abuse: lasting.abuse,
    ui: lasting.ui,
    usage: {
      peek: (subject, policies) => limiter.peek({ subject, policies }),
      reset: (subject, policies) => limiter.reset(subject, policies),
      forget: (subject) => limiter.forget(subject),
      addCredits: (subject, grants) => limiter.addCredits(subject, grants),
      creditBalance: (subject, metric) => limiter.creditBalance(subject, metric),
    },
    admin: {
      token: lasting.adminToken,
      db: lasting.databases?.primary,
      invalidator: databaseKeys?.invalidator ?? NO_CACHE_INVALIDATION,
      reload: () => reloader.reload('admin'),
    },
  });
  return { config, proxy: apps.proxy, admin: apps.admin.fetch, retire: () => forwarder.close(), destroy: () => forwarder.destroy() };
}

/**
 * The database key lookup path: cache, invalidation (Redis pub/sub on two
 * connections of its own with the Redis store, else local) and batched
 * last_used_at. Start-up waits up to connect_timeout_ms for the
 * subscription, then goes on (the subscriber keeps reconnecting).
 */
async function startDatabaseKeys(
  config: GatewayConfig,
  databases: DatabaseConnections,
  clock: Clock,
  metrics: GatewayMetrics,
  logger: Logger,
  onSubjectChanged: (subjectId: string) => void,
): Promise<{ keys: DatabaseKeys; close(): Promise<void> }> {
  registerDatabaseQueries(metrics.registry, () =>
    databases.keyLookups === databases.primary
      ? [['primary', databases.primary.queryCount]]
      : [['primary', databases.primary.queryCount], ['key_lookups', databases.keyLookups.queryCount]],
  );
  const redisConfig = config.store.type === 'redis' ? config.store.redis : undefined;
  const clients: RedisClient[] = [];
  const connect = (role: string, redis: RedisStoreConfig): RedisClient => {
    const client = createRedisClient(redis);
    logClientErrors(client, logger, { role });
    clients.push(client);
    return client;
  };
  const keys = buildDatabaseKeys({
    config,
    primary: databases.primary,
    ...(databases.replicaChecks === undefined ? {} : { replica: { lookups: databases.keyLookups, checks: databases.replicaChecks } }),
    clock,
    ...(redisConfig === undefined
      ? {}
      : {
          redis: {
            publisher: connect('key-invalidation-publisher', redisConfig),
            subscriber: connect('key-invalidation-subscriber', redisConfig),
            keyPrefix: redisConfig.key_prefix,
          },
        }),
    onLookup: (result) => metrics.keyLookups.inc({ result }),
    onQueryTimed: (seconds, ok) => {
      metrics.keyLookupDuration.observe({ result: ok ? 'ok' : 'error' }, seconds);
      if (!ok) metrics.databaseErrors.inc({ operation: 'key_lookup' });
    },
    onServed: (served) => metrics.keyLookupsServed.inc({ served_by: served.servedBy, reason: served.reason }),
    onReplicaVerdict: (verdict, previous) => {
      if (verdict.state === previous.state) return;
      const line = { state: verdict.state, was: previous.state, lagMs: verdict.lagMs };
      if (verdict.state === 'fresh') logger.info(line, 'key lookups go to the replica');
      else logger.warn(line, 'key lookups go to the primary: the replica is not fresh');
    },
    onUnknownPlan: (plan) => logger.warn({ plan }, 'a stored subject has a plan gateway.yaml does not define; using the fallback plan'),
    onError: (what, error) => {
      if (what === 'last_used_flush') metrics.databaseErrors.inc({ operation: what });
      logger.warn({ err: error, what }, 'key lookup path');
    },
    onResubscribed: () => logger.info('key invalidation resubscribed; key cache cleared'),
    onSubjectChanged,
  });
  const replicaMonitor = keys.replicaMonitor;
  if (replicaMonitor !== undefined) registerReplicaGauges(metrics.registry, () => replicaMonitor.verdict);
  // Without Redis only the replica's first check is awaited, and nothing rejects.
  await keys.ready(redisConfig?.connect_timeout_ms ?? 0).catch((error: unknown) => {
    logger.warn({ err: error }, 'key invalidation not subscribed at start; keys are cached for at most auth.api_keys.cache.ttl_ms meanwhile');
  });
  return {
    keys,
    async close() {
      await keys.close();
      await Promise.allSettled(clients.map((client) => closeRedisClient(client)));
    },
  };
}

/** The configured database, migrated; the embedded engine refuses a data directory another process holds. */
async function openMigratedDatabases(config: GatewayConfig, logger: Logger): Promise<DatabaseConnections> {
  const databases = await openDatabases(config.postgres);
  try {
    const report = await migrate(databases.primary, loadMigrations());
    for (const migration of report.applied) logger.info({ migration: migration.fileName }, 'migration applied');
    logger.info({ database: describeDatabase(config.postgres) }, 'database ready');
    return databases;
  } catch (error) {
    await databases.close();
    throw error;
  }
}

/** Copies the store's charged usage to the ledger every `usage.flush_interval_ms`. */
function startLedgerFlusher(
  config: GatewayConfig,
  source: DirtyUsageSource,
  ledger: DatabaseUsageLedger,
  clock: Clock,
  metrics: GatewayMetrics,
  logger: Logger,
): LedgerFlusher {
  const flusher = new LedgerFlusher({
    source,
    sink: ledger,
    clock,
    intervalMs: config.usage.flush_interval_ms,
    leftoverSweepIntervalMs: LEFTOVER_SWEEP_INTERVAL_MS,
    metrics,
    onError: (error) => logger.warn({ err: error }, 'usage ledger flush failed; it is retried'),
  });
  flusher.start();
  return flusher;
}

/** How often the flusher also looks for usage marks left by instances that died, in ms. */
const LEFTOVER_SWEEP_INTERVAL_MS = 300_000;

/**
 * The configured store, behind the local deny cache, the circuit breaker and
 * the failure policy; with a ledger, the store also restores counters from it
 * and marks what it charged (`store` is then the flusher's source). With
 * Redis, also its readiness probe (not started), which keeps `health.store`.
 */
async function buildGuardedLimiter(
  config: GatewayConfig,
  clock: Clock,
  metrics: GatewayMetrics,
  logger: Logger,
  ledger: UsageHistory | undefined,
  health: HealthState,
  redisNowForTesting: (() => number) | undefined,
): Promise<{
  limiter: GuardedLimiter;
  store: Limiter & DirtyUsageSource;
  probe?: RedisReadinessProbe;
  outbox: EventOutbox;
  memoryEventOutbox: MemoryEventOutbox | undefined;
  redisClient?: RedisClient;
}> {
  const { store, idempotency } = config;
  const storeName = store.type;
  const idempotencyTimes = { inFlightTtlMs: idempotency.in_flight_ttl_ms, ttlMs: idempotency.ttl_ms };
  // Each kind of Redis error is logged once with its cause, again only after the store answered.
  const errorLog = new FirstErrorOfKindLog((kind, cause, error) => logger.warn({ err: error, kind, cause }, 'redis store error'));
  let probe: RedisReadinessProbe | undefined;
  let limiter: Limiter & DirtyUsageSource;
  let outbox: EventOutbox;
  let memoryEventOutbox: MemoryEventOutbox | undefined;
  // Quota events are always detected (plans without thresholds emit none): they wait in the outbox for a deliverer.
  const streamMaxLength = config.events.stream_max_length;
  let redisClient: RedisClient | undefined;
  if (store.type === 'redis' && store.redis !== undefined) {
    const client = await connectRedisClient(store.redis, logger, metrics);
    // The deliverer's reads get a connection of their own: never queued behind (or ahead of) the limiter's calls.
    outbox = new RedisEventOutbox({
      client: config.events.webhooks.length === 0 ? client : eventOutboxClient(store.redis, logger),
      keyPrefix: store.redis.key_prefix,
      ownsClient: config.events.webhooks.length > 0,
      appendMaxLength: config.events.stream_max_length,
    });
    redisClient = client;
    limiter = new RedisLimiter({
      client,
      keyPrefix: store.redis.key_prefix,
      ownsClient: true,
      idempotency: idempotencyTimes,
      commandTimeoutMs: store.redis.command_timeout_ms,
      connectTimeoutMs: store.redis.connect_timeout_ms,
      onLostCharge: (outcome) => metrics.lostCharges.inc({ result: outcome }),
      events: { streamMaxLength },
      ...(ledger === undefined ? {} : { ledger }),
      ...(redisNowForTesting === undefined ? {} : { nowForTesting: redisNowForTesting }),
    });
    probe = new RedisReadinessProbe({
      client,
      keyPrefix: store.redis.key_prefix,
      intervalMs: store.redis.probe_interval_ms,
      clock,
      ...(ledger === undefined ? {} : { ledger }),
      onReport: readinessReporter(health, metrics, logger, errorLog),
    });
  } else {
    // The memory limiter's events queue here, for the deliverer (bounded by events.stream_max_length; the oldest go first).
    memoryEventOutbox = new MemoryEventOutbox(streamMaxLength, () => clock.now());
    outbox = memoryEventOutbox;
    limiter = new MemoryLimiter({
      clock,
      events: memoryEventOutbox,
      idempotency: {
        ...idempotencyTimes,
        maxBytes: idempotency.memory.max_bytes,
        subjectMaxBytes: idempotency.memory.subject_max_bytes,
      },
      ...(ledger === undefined ? {} : { ledger }),
    });
    metrics.storeReady.set({ store: storeName }, 1);
  }
  const breaker = new CircuitBreaker({
    failureThreshold: store.circuit_breaker.failure_threshold,
    openMs: store.circuit_breaker.open_ms,
    clock,
    onStateChange: (state) => {
      metrics.circuitState.set({ store: storeName }, CIRCUIT_STATE_VALUE[state]);
      logger[state === 'open' ? 'warn' : 'info']({ store: storeName, state }, 'store circuit breaker');
    },
  });
  metrics.circuitState.set({ store: storeName }, CIRCUIT_STATE_VALUE[breaker.state]);
  const guarded = new GuardedLimiter({
    limiter,
    storeName,
    breaker,
    denyCache: new LocalDenyCache(store.local_deny_cache.max_entries, clock),
    metrics,
    clock,
    storeRetryAfterSeconds: Math.max(1, Math.ceil(store.circuit_breaker.open_ms / 1000)),
    ...(store.type === 'redis'
      ? {
          classifyError: (error: unknown) => {
            const kind = classifyRedisError(error);
            errorLog.note(kind, error);
            return kind;
          },
        }
      : {}),
  });
  return {
    limiter: guarded,
    store: limiter,
    outbox,
    memoryEventOutbox,
    ...(probe === undefined ? {} : { probe }),
    ...(redisClient === undefined ? {} : { redisClient }),
  };
}

/** Subjects whose denials one instance counts per minute between two flushes; more are not counted (a flood of distinct callers). */
const DENIAL_TALLY_MAX_SUBJECTS = 10_000;
/** How often counted denials go to the fleet counter and the database, in ms: spikes are seen within about this. */
const DENIAL_FLUSH_INTERVAL_MS = 1_000;
/** Events the memory store's outbox holds (until the deliverer takes them). */
const MEMORY_OUTBOX_CAPACITY = 10_000;

/**
 * Denial counting and abuse rules: the tally the limit step counts denials
 * in, the list of blocked subjects it checks, and the flusher that adds the
 * counts to the fleet's (Redis, or this instance's) and the `denials`
 * table every second, raising spikes. With Redis, blocks are shared
 * through it (a subscriber connection of their own); on the memory store
 * they are this instance's.
 */
async function startAbuseDetection(
  config: GatewayConfig,
  redisClient: RedisClient | undefined,
  databases: DatabaseConnections | undefined,
  clock: Clock,
  logger: Logger,
  /** The memory store's outbox (the limiter's events go there too); absent on Redis. */
  memoryEventOutbox: MemoryEventOutbox | undefined,
): Promise<{ parts: NonNullable<AppDeps['abuse']>; stop(): Promise<void> }> {
  const tally = new DenialTally(DENIAL_TALLY_MAX_SUBJECTS);
  const blocked = new BlockedSubjects();
  const redis = config.store.type === 'redis' ? config.store.redis : undefined;
  let subscriber: RedisClient | undefined;
  let redisBlocks: RedisSubjectBlocks | undefined;
  if (redisClient !== undefined && redis !== undefined) {
    subscriber = createRedisClient(redis);
    logClientErrors(subscriber, logger, { role: 'block-subscriber' });
    redisBlocks = RedisSubjectBlocks.start({
      client: redisClient,
      subscriber,
      keyPrefix: redis.key_prefix,
      blocked,
      nowMs: () => clock.now(),
      onError: (error) => logger.warn({ err: error }, 'subject blocks: subscription or reload failed; it is retried'),
    });
    // Blocks are known before the first request when Redis answers; a Redis that the limiter could not
    // reach at start costs no second wait (the list loads once the subscription is made).
    if (redisClient.status === 'ready') await redisBlocks.waitUntilSubscribed(redis.connect_timeout_ms).catch((error: unknown) => {
      logger.warn({ err: error }, 'subject blocks not loaded at start; they are once the subscription is made');
    });
  }
  const blocks = redisBlocks ?? new LocalSubjectBlocks(blocked, () => clock.now());
  const primary = databases?.primary;
  const flusher = new DenialFlusher({
    tally,
    fleet: redisClient !== undefined && redis !== undefined ? new RedisDenialCounter(redisClient, redis.key_prefix) : new LocalDenialCounter(),
    sink: primary === undefined ? undefined : { add: (counts) => addDenials(primary, counts), prune: (before) => pruneDenials(primary, before) },
    events:
      redisClient !== undefined && redis !== undefined
        ? { append: (events) => appendEventsToStream(redisClient, redis.key_prefix, events) }
        : (memoryEventOutbox ?? new MemoryEventOutbox(MEMORY_OUTBOX_CAPACITY, () => clock.now())),
    blocks,
    auditBlock: primary === undefined ? undefined : (spike) => auditSpikeBlock(primary, spike, clock.now()),
    clock,
    intervalMs: DENIAL_FLUSH_INTERVAL_MS,
    onSpike: (spike) =>
      logger.warn(
        { plan: spike.plan, denials: spike.denials, threshold: spike.threshold, action: spike.action, minute: new Date(spike.minuteMs).toISOString() },
        spike.action === 'block' ? 'denial spike: subject blocked' : 'denial spike',
      ),
    onError: (what, error) => logger.warn({ err: error, what }, 'denial flush step failed'),
  });
  flusher.start();
  return {
    parts: { denials: tally, blocked, blocks },
    async stop() {
      await flusher.stop();
      redisBlocks?.close();
      if (subscriber !== undefined) await closeRedisClient(subscriber).catch(() => undefined);
    },
  };
}

/**
 * What each readiness probe report changes: `health.store` (for /readyz), the
 * probe metrics, and the log — a line when the verdict or the warnings
 * change, and one when Redis was found emptied; not one per probe.
 */
function readinessReporter(
  health: HealthState,
  metrics: GatewayMetrics,
  logger: Logger,
  errorLog: FirstErrorOfKindLog,
): (report: ProbeReport) => void {
  let first = true;
  return (report) => {
    const previous = health.store;
    const { readiness } = report;
    health.store = readiness;
    metrics.storeProbes.inc({ store: 'redis', result: report.result });
    metrics.storeReady.set({ store: 'redis' }, readiness.state === 'up' ? 1 : 0);
    metrics.redisMaxmemoryPolicy.reset();
    for (const policy of new Set(report.policies)) {
      metrics.redisMaxmemoryPolicy.set({ policy }, report.policies.filter((p) => p === policy).length);
    }
    if (report.emptied) {
      metrics.redisEmptied.inc();
      logger.warn('redis lost its data since the last readiness probe (restart without persistence, flush, or failover to an empty node); counters are restored from the ledger, if any');
    }
    if (readiness.state === 'up') errorLog.forget();
    if (readiness.state !== previous.state || readiness.reason !== previous.reason || first) {
      if (readiness.state === 'up') logger.info('redis store ready (readiness probe)');
      else logger.warn({ result: report.result, reason: readiness.reason, err: report.error }, 'redis store not ready (readiness probe)');
    }
    if (readiness.warnings.join('\n') !== previous.warnings.join('\n')) {
      for (const warning of readiness.warnings) logger.warn({ warning }, 'redis store warning (readiness probe)');
    }
    first = false;
  };
}

/**
 * The event outbox's own Redis client (it reconnects by itself; the
 * deliverer retries what fails meanwhile). Off the request path, so its
 * commands (a SCAN step, an XAUTOCLAIM) get a longer timeout than the
 * limiter's.
 */
function eventOutboxClient(redis: RedisStoreConfig, logger: Logger): RedisClient {
  const client = createRedisClient(redis, { commandTimeoutMs: Math.max(OUTBOX_COMMAND_TIMEOUT_MS, redis.command_timeout_ms) });
  logClientErrors(client, logger, { role: 'event-outbox' });
  return client;
}

/** The outbox client's command timeout, ms, unless command_timeout_ms is longer. */
const OUTBOX_COMMAND_TIMEOUT_MS = 2_000;

/**
 * The webhook deliverer (docs/events.md), when `events.webhooks` names an
 * endpoint: it reads `outbox`, records events and their deliveries in `db`
 * and delivers them, every `events.delivery.poll_interval_ms`, off the
 * request path; with its metrics. Undefined without endpoints.
 */
function startWebhookDeliverer(
  config: GatewayConfig,
  outbox: EventOutbox,
  db: Database,
  secrets: readonly string[],
  clock: Clock,
  metrics: GatewayMetrics,
  logger: Logger,
): WebhookDeliverer | undefined {
  const { webhooks, delivery } = config.events;
  if (webhooks.length === 0) return undefined;
  if (secrets.length !== webhooks.length) throw new Error(`events.webhooks: ${webhooks.length} endpoints and ${secrets.length} secrets`);
  const endpoints = webhooks.map((webhook, index) => ({
    name: webhookName(webhook, index),
    url: webhook.url,
    signingKey: webhookSigningKey(secrets[index]!),
    types: new Set<string>(webhook.types),
    timeoutMs: webhook.timeout_ms,
  }));
  let deliverer: WebhookDeliverer | undefined;
  const reported = registerWebhookMetrics(
    metrics.registry,
    endpoints.map((endpoint) => endpoint.name),
    () => deliverer?.queueDepth() ?? Promise.reject(new Error('no deliverer')),
  );
  deliverer = new WebhookDeliverer({
    outbox,
    db,
    endpoints,
    delivery,
    consumer: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
    clock,
    onAttempt: (endpoint, outcome, seconds) => {
      reported.onAttempt(endpoint, outcome, seconds);
      if (outcome === 'dead_lettered') logger.warn({ endpoint }, 'webhook delivery dead-lettered after its last attempt; redeliver with POST /admin/events/{id}/redeliver');
    },
    onError: (what, error) => logger.warn({ err: error, what }, 'webhook delivery step failed; it is retried (logged again once it recovered)'),
    onRecovered: (what) => logger.info({ what }, 'webhook delivery step works again'),
  });
  deliverer.start();
  return deliverer;
}

/**
 * The limiter's Redis client. Start-up waits up to connect_timeout_ms for
 * Redis, then goes on without it: routes answer by their `on_store_error`
 * until the client, which reconnects by itself, is ready.
 */
async function connectRedisClient(redis: RedisStoreConfig, logger: Logger, metrics: GatewayMetrics): Promise<RedisClient> {
  // The limiter times each command itself, from when it is sent; the client's own timeout is a backstop.
  const client = createRedisClient(redis, { commandTimeoutMs: redis.command_timeout_ms + CLIENT_TIMEOUT_BACKSTOP_MS });
  registerNoscriptGauge(metrics.registry, () => readNoscriptErrors(client));
  logClientErrors(client, logger, { logReady: true });
  await waitUntilReady(client, redis.connect_timeout_ms).catch((error: unknown) => {
    logger.warn({ err: error }, 'redis not reachable at start; routes follow on_store_error until it is');
  });
  return client;
}

/**
 * How much longer than command_timeout_ms the limiter client's own command
 * timeout is, in ms: it bounds what the client sends by itself (the ready
 * check of a new connection, which a blackhole would otherwise stall for good).
 */
const CLIENT_TIMEOUT_BACKSTOP_MS = 1_000;

function configPath(argv: readonly string[], env: NodeJS.ProcessEnv): string {
  const flagAt = argv.indexOf('--config');
  return (flagAt !== -1 ? argv[flagAt + 1] : undefined) ?? env.QUOTAGATE_CONFIG ?? 'gateway.yaml';
}

/** What a caller of runServe adds around the gateway (`npm run demo` prints its banner). */
export interface ServeHooks {
  /**
   * Called once the gateway listens. `print` writes to stdout through the
   * log's own stream, so its text comes after every line logged so far
   * (migrations, "database ready", "quotagate listening"): pino writes
   * asynchronously, and a plain process.stdout.write could overtake them.
   */
  readonly onListening?: (gateway: RunningGateway, print: (text: string) => void) => void;
}

/**
 * `quotagate serve`: loads the config (`--config`, else $QUOTAGATE_CONFIG,
 * else ./gateway.yaml), starts the gateway with the admin token from the
 * variable `admin.token_env` names, reloads on SIGHUP and `POST
 * /admin/reload`, and runs until SIGTERM or SIGINT, then drains. Resolves to
 * the exit code: 0 after a signal, 1 when the config or the start failed.
 */
export async function runServe(argv: readonly string[], hooks: ServeHooks = {}): Promise<number> {
  const path = configPath(argv, process.env);
  let config: GatewayConfig;
  try {
    config = await loadConfigFile(path, process.env);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  // pino's default stream (asynchronous, on fd 1), made here so that hooks can print in order with the log.
  const logStream = pino.destination({ dest: 1, sync: false });
  const logger = pino({ level: config.logging.level, base: { service: 'quotagate' } }, logStream);
  for (const warning of configWarnings(config)) logger.warn({ config: path, path: warning.path }, warning.message);
  const tokenEnv = config.admin.token_env;
  let gateway: RunningGateway;
  try {
    gateway = await startGateway(config, {
      logger,
      adminToken: tokenEnv === undefined ? undefined : process.env[tokenEnv],
      webhookSecrets: webhookSecrets(config, process.env),
      loadConfig: () => loadConfigFile(path, process.env),
    });
  } catch (error) {
    // A port in use, a data directory held by another process, a database that refuses: say so plainly.
    logger.fatal({ err: error }, 'quotagate could not start');
    return 1;
  }
  // The reloader logs and counts the outcome; a refusal keeps the old config serving.
  const reloadOnHangup = (): void =>
    void gateway.reload('SIGHUP').catch((error: unknown) => logger.error({ err: error }, 'config reload failed'));
  process.on('SIGHUP', reloadOnHangup);
  logger.info({ proxy: gateway.proxyUrl, admin: gateway.adminUrl, config: path }, 'quotagate listening');
  hooks.onListening?.(gateway, (text) => logStream.write(text));
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  // shutdown() stops the proxy listener before its first await, so by this
  // log line no new connection is accepted.
  const stopped = gateway.shutdown();
  logger.info({ signal, drainTimeoutMs: config.shutdown.drain_timeout_ms }, 'draining');
  await stopped;
  logger.info('stopped');
  return 0;
}

const processIo: CommandIo = {
  env: process.env,
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

/** Runs the command in `argv` (without node and script) and exits with its status. */
export async function main(argv: readonly string[]): Promise<never> {
  process.exit(await runCommand(argv, processIo, (rest) => runServe(rest)));
}
