import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics.js';

/**
 * Every metric quotagate exposes, on a registry of its own (never prom-client's
 * global one, so tests and reloads can build as many as they like).
 *
 * Labels are bounded: configured route and plan names, a fixed set of
 * outcomes and reasons. Never a key, subject, token or raw path.
 */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** Requests by route, plan and outcome (`forwarded` or an error code). */
  readonly requests: HotCounter<'route' | 'plan' | 'outcome'>;
  /** Whole request duration in seconds, from the first middleware to the last byte written. */
  readonly requestDuration: HotHistogram<'route' | 'outcome'>;
  /** Time from sending upstream to the upstream's response headers, in seconds. */
  readonly upstreamDuration: HotHistogram<'route'>;
  /**
   * Refused credentials by reason: `missing`, `malformed`, `unknown`,
   * `revoked`, `expired`, `suspended`, `key_store_unavailable` (API keys), a
   * token failure (`token_expired`, … the problem code), or
   * `insufficient_scope`.
   */
  readonly authFailures: Counter<'reason'>;
  /** JWKS fetch attempts by outcome (`ok`, `error`). */
  readonly jwksFetches: Counter<'outcome'>;
  /**
   * Limit decisions by outcome and reason; outcomes are disjoint:
   * `allowed` (the store admitted and charged: reason `allowed`), `denied`
   * (a limit had no room: `window`, `quota`, `local-deny`), `unenforced`
   * (the store failed and the route forwards unchecked: `fail-open`),
   * `refused` (the store failed and the route answers 503: `fail-closed`),
   * `idempotency` (an Idempotency-Key's record answered, nothing was decided
   * or charged: `idempotency-replayed`, `idempotency-in-flight` (409),
   * `idempotency-reused` (422)).
   */
  readonly decisions: HotCounter<'outcome' | 'reason'>;
  /** Duration of one limiter call to the store, in seconds. */
  readonly storeDuration: HotHistogram<'store'>;
  /**
   * Failed or skipped store calls by kind: `circuit_open` (skipped),
   * `queue_timeout` and `connection_retired` (of the gateway's own making,
   * not counted by the breaker), or a Redis error kind
   * (src/redis/error-kinds.ts: `timeout`, `connection`, `oom`, `noperm`, …),
   * `error` when unknown.
   */
  readonly storeErrors: Counter<'store' | 'kind'>;
  /** Readiness probes of the store by result: `ok`, a Redis error kind, or `ledger_unavailable`. */
  readonly storeProbes: Counter<'store' | 'result'>;
  /** The readiness probe's verdict: 1 the store would serve requests now, 0 not. */
  readonly storeReady: Gauge<'store'>;
  /** How many primaries in use report each `maxmemory-policy` (`unknown`: INFO refused or failed). */
  readonly redisMaxmemoryPolicy: Gauge<'policy'>;
  /** Times the readiness probe found that Redis had lost its data since this instance's previous probe. */
  readonly redisEmptied: Counter;
  /** The store's circuit breaker: 0 closed, 1 half-open, 2 open. */
  readonly circuitState: Gauge<'store'>;
  /** Charges given back (refund_on, or a request the gateway refused after charging it), by result (`ok`, `failed`). */
  readonly refunds: Counter<'result'>;
  /** Charges adjusted to a cost settled from the upstream's response (`cost.from_response`), by result (`ok`, `failed`). */
  readonly adjustments: Counter<'result'>;
  /**
   * Requests on `cost.from_response` routes whose charge was settled, by
   * route and source: `reported` (the upstream's value), `missing` or
   * `malformed` (settled at the reserve).
   */
  readonly costSettlements: HotCounter<'route' | 'source'>;
  /** Units of those requests by route and stage: `reserved` at admission, `settled` after the response. */
  readonly costSettlementUnits: HotCounter<'route' | 'stage'>;
  /**
   * Store calls whose reply was lost (timeout, dropped connection), settled
   * once the store answered again, by result: `refunded` (the call had
   * charged; undone), `not_charged` (it had not), `dropped` (too many waited;
   * its charge, if any, stays).
   */
  readonly lostCharges: Counter<'result'>;
  /**
   * API key lookups that reached the database key cache, by result: `hit`
   * and `negative_hit` made no query, `miss` asked the database.
   */
  readonly keyLookups: Counter<'result'>;
  /**
   * Answered database key lookups by the database that answered (`replica`,
   * `primary`) and why that one (KeyLookupServed in src/auth/database-key-store.ts).
   */
  readonly keyLookupsServed: Counter<'served_by' | 'reason'>;
  /** Time one ledger flush took (read markers, upsert, clear), in seconds. */
  readonly ledgerFlushDuration: Histogram;
  /** Ledger flushes that failed (the marks stay; the next flush retries). */
  readonly ledgerFlushFailures: Counter;
  /** Seconds since the ledger last received a complete flush: at most what a crash could lose. */
  readonly ledgerFlushLag: Gauge;
  /** Config reloads (SIGHUP, `POST /admin/reload`) by result: `ok`, or `rejected` (the old config keeps serving). */
  readonly configReloads: Counter<'result'>;
  /** Unix time in seconds of the last reload that was applied; 0 before any. */
  readonly configLastReloadSuccess: Gauge;
  /** Requests inside the gateway right now (received, answer not yet written). */
  readonly inFlight: Gauge;
  /** One database query of a key-cache miss, in seconds, by result (`ok`, `error`). */
  readonly keyLookupDuration: Histogram<'result'>;
  /** Failed database work by operation (`key_lookup`, `last_used_flush`). */
  readonly databaseErrors: Counter<'operation'>;
  /** JWT token cache lookups by result (`hit`: no verification, `miss`). */
  readonly tokenCacheLookups: Counter<'result'>;
  /** Local deny cache checks by result (`hit`: denied with no store call, `miss`). */
  readonly localDenyLookups: HotCounter<'result'>;
}

/** Bucket bounds in seconds; sub-millisecond resolution for the gateway's own work. */
const LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

export function createMetrics(options: { collectProcessMetrics?: boolean } = {}): GatewayMetrics {
  const registry = new Registry();
  if (options.collectProcessMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: 'quotagate_' });
    // prom-client's `…_total` gauges break Prometheus naming (`promtool check
    // metrics` rejects them); the per-type gauges beside them hold the same counts.
    for (const name of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`quotagate_nodejs_active_${name}_total`);
  }
  return {
    registry,
    requests: new HotCounter({
      name: 'quotagate_requests_total',
      help: 'Requests handled, by route, plan and outcome (forwarded, or the error code answered).',
      labelNames: ['route', 'plan', 'outcome'],
      registers: [registry],
    }),
    requestDuration: new HotHistogram({
      name: 'quotagate_request_duration_seconds',
      help: 'Whole request duration through the gateway, in seconds.',
      labelNames: ['route', 'outcome'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    upstreamDuration: new HotHistogram({
      name: 'quotagate_upstream_duration_seconds',
      help: 'Time from forwarding a request to the upstream response headers, in seconds.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'quotagate_auth_failures_total',
      help: 'Authentication failures by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    jwksFetches: new Counter({
      name: 'quotagate_jwks_fetches_total',
      help: 'JWKS fetch attempts by outcome (ok, error); after an error the keys already loaded keep serving.',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    decisions: new HotCounter({
      name: 'quotagate_decisions_total',
      help: 'Limit decisions by outcome (allowed, denied, unenforced: forwarded unchecked, refused: 503 with the store down, idempotency: answered from an Idempotency-Key record) and reason (allowed, window, quota, local-deny, fail-open, fail-closed, idempotency-replayed, idempotency-in-flight, idempotency-reused).',
      labelNames: ['outcome', 'reason'],
      registers: [registry],
    }),
    storeDuration: new HotHistogram({
      name: 'quotagate_store_duration_seconds',
      help: 'Duration of one limiter call to the store, in seconds.',
      labelNames: ['store'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    storeErrors: new Counter({
      name: 'quotagate_store_errors_total',
      help: 'Store calls that failed or were skipped, by kind (circuit_open, queue_timeout, connection_retired, or the Redis error kind: timeout, connection, oom, noperm, ...).',
      labelNames: ['store', 'kind'],
      registers: [registry],
    }),
    storeProbes: new Counter({
      name: 'quotagate_store_probes_total',
      help: 'Readiness probes of the store, by result (ok, a Redis error kind, or ledger_unavailable).',
      labelNames: ['store', 'result'],
      registers: [registry],
    }),
    storeReady: new Gauge({
      name: 'quotagate_store_ready',
      help: 'Whether the last readiness probe found the store able to serve requests (1) or not (0).',
      labelNames: ['store'],
      registers: [registry],
    }),
    redisMaxmemoryPolicy: new Gauge({
      name: 'quotagate_redis_maxmemory_policy',
      help: 'Primaries in use reporting each maxmemory-policy (unknown: INFO refused or failed), from the readiness probe.',
      labelNames: ['policy'],
      registers: [registry],
    }),
    redisEmptied: new Counter({
      name: 'quotagate_redis_emptied_total',
      help: 'Times the readiness probe found Redis had lost its data (restart without persistence, flush, failover to an empty node).',
      registers: [registry],
    }),
    circuitState: new Gauge({
      name: 'quotagate_store_circuit_state',
      help: 'State of the store circuit breaker: 0 closed, 1 half-open, 2 open.',
      labelNames: ['store'],
      registers: [registry],
    }),
    refunds: new Counter({
      name: 'quotagate_refunds_total',
      help: 'Charges given back after an upstream failure (refund_on) or a request the gateway refused after charging it, by result (ok, failed).',
      labelNames: ['result'],
      registers: [registry],
    }),
    adjustments: new Counter({
      name: 'quotagate_charge_adjustments_total',
      help: 'Charges adjusted to a cost settled from the upstream response (cost.from_response), by result (ok, failed).',
      labelNames: ['result'],
      registers: [registry],
    }),
    costSettlements: new HotCounter({
      name: 'quotagate_cost_settlements_total',
      help: 'Charges settled from the upstream response, by route and source (reported; missing or malformed: settled at the reserve).',
      labelNames: ['route', 'source'],
      registers: [registry],
    }),
    costSettlementUnits: new HotCounter({
      name: 'quotagate_cost_settlement_units_total',
      help: 'Units of charges settled from the upstream response, by route and stage (reserved at admission, settled after the response).',
      labelNames: ['route', 'stage'],
      registers: [registry],
    }),
    lostCharges: new Counter({
      name: 'quotagate_lost_charges_total',
      help: 'Store calls whose reply was lost, settled once the store answered again, by result (refunded, not_charged, dropped).',
      labelNames: ['result'],
      registers: [registry],
    }),
    keyLookups: new Counter({
      name: 'quotagate_key_lookups_total',
      help: 'Lookups of database API keys by result: hit and negative_hit (no query), miss (a database query).',
      labelNames: ['result'],
      registers: [registry],
    }),
    keyLookupsServed: new Counter({
      name: 'quotagate_key_lookups_served_total',
      help: 'Answered database key lookups by the database that answered (replica, primary) and why (fresh, replica_miss, replica_lagging, replica_down, recent_change, no_replica, ...).',
      labelNames: ['served_by', 'reason'],
      registers: [registry],
    }),
    ledgerFlushDuration: new Histogram({
      name: 'quotagate_ledger_flush_duration_seconds',
      help: 'Time one usage-ledger flush took, in seconds.',
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    ledgerFlushFailures: new Counter({
      name: 'quotagate_ledger_flush_failures_total',
      help: 'Usage-ledger flushes that failed; the dirty marks stay for the next flush.',
      registers: [registry],
    }),
    ledgerFlushLag: new Gauge({
      name: 'quotagate_ledger_flush_lag_seconds',
      help: 'Seconds since the usage ledger last received a complete flush.',
      registers: [registry],
    }),
    configReloads: new Counter({
      name: 'quotagate_config_reloads_total',
      help: 'Config reloads by result (ok, rejected); after a rejection the previous config keeps serving.',
      labelNames: ['result'],
      registers: [registry],
    }),
    configLastReloadSuccess: new Gauge({
      name: 'quotagate_config_last_reload_success_timestamp_seconds',
      help: 'Unix time of the last config reload that was applied, in seconds; 0 before any.',
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'quotagate_requests_in_flight',
      help: 'Requests inside the gateway now: received, answer not yet written.',
      registers: [registry],
    }),
    keyLookupDuration: new Histogram({
      name: 'quotagate_key_lookup_duration_seconds',
      help: 'Database query of one API key cache miss, in seconds, by result (ok, error).',
      labelNames: ['result'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    databaseErrors: new Counter({
      name: 'quotagate_database_errors_total',
      help: 'Failed database work by operation (key_lookup, last_used_flush); ledger flushes count in quotagate_ledger_flush_failures_total.',
      labelNames: ['operation'],
      registers: [registry],
    }),
    tokenCacheLookups: new Counter({
      name: 'quotagate_token_cache_lookups_total',
      help: 'JWT token cache lookups by result: hit (no signature verification), miss.',
      labelNames: ['result'],
      registers: [registry],
    }),
    localDenyLookups: new HotCounter({
      name: 'quotagate_local_deny_cache_lookups_total',
      help: 'Local deny cache checks by result: hit (denied with no store call), miss (the store decides).',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}

/**
 * `quotagate_db_queries_total{database}`: statements each database has run
 * since start (`primary`, and `key_lookups` when a replica serves them),
 * read from the Database query counters when Prometheus scrapes.
 */
export function registerDatabaseQueries(registry: Registry, read: () => ReadonlyArray<readonly [database: string, count: number]>): void {
  new Counter({
    name: 'quotagate_db_queries_total',
    help: 'Statements run on each database since start (primary; key_lookups when a replica serves them).',
    labelNames: ['database'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [database, count] of read()) this.inc({ database }, count);
    },
  });
}

/** What the replica gauges read when Prometheus scrapes: the latest lag check. */
export interface ReplicaGaugeSource {
  /** `fresh`, `lagging`, `down`, `not_in_recovery` or `unchecked`. */
  readonly state: string;
  /** The lag the latest check measured, in ms; undefined when it could not be measured. */
  readonly lagMs: number | undefined;
}

/** Every state `quotagate_db_replica_state` reports, one series each. */
const REPLICA_STATES = ['fresh', 'lagging', 'down', 'not_in_recovery', 'unchecked'] as const;

/**
 * With a key-lookup replica: `quotagate_db_replica_lag_seconds` (the lag the
 * latest check measured; NaN when it could not be measured) and
 * `quotagate_db_replica_state{state}` (1 for the current state, 0 for the others).
 */
export function registerReplicaGauges(registry: Registry, read: () => ReplicaGaugeSource): void {
  new Gauge({
    name: 'quotagate_db_replica_lag_seconds',
    help: 'How far the key-lookup replica was behind the primary at its latest check, in seconds (NaN when unmeasurable).',
    registers: [registry],
    collect() {
      const { lagMs } = read();
      this.set(lagMs === undefined ? Number.NaN : lagMs / 1000);
    },
  });
  new Gauge({
    name: 'quotagate_db_replica_state',
    help: 'State of the key-lookup replica: 1 for the current one of fresh, lagging, down, not_in_recovery, unchecked.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const { state } = read();
      for (const candidate of REPLICA_STATES) this.set({ state: candidate }, candidate === state ? 1 : 0);
    },
  });
}
