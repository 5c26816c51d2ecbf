import { Hono } from 'hono';
import type { Logger } from 'pino';
import { ApiKeyAuthenticator } from './auth/api-key-authenticator.js';
import type { Authenticator } from './auth/authenticator.js';
import type { CredentialMode } from './auth/caller-authentication.js';
import { KeyOrTokenAuthenticator } from './auth/key-or-token-authenticator.js';
import { type CacheInvalidator, NO_CACHE_INVALIDATION } from './auth/cache-invalidation.js';
import type { ApiKeyRecord, KeyStore } from './auth/key-store.js';
import { buildPlans } from './config/plans.js';
import type { GatewayConfig } from './config/schema.js';
import type { Clock } from './core/clock.js';
import type { SettledUnits, SettlementSource } from './core/cost-settlement.js';
import type { ReloadResult } from './config/restart.js';
import { accessLog } from './http/middleware/access-log.js';
import { bodyLimit } from './http/middleware/body-limit.js';
import { forward } from './http/middleware/forward.js';
import { identify } from './http/middleware/identify.js';
import { limit } from './http/middleware/limit.js';
import { matchRoute } from './http/middleware/match-route.js';
import { type ProxyRequestListener, proxyHandler } from './http/proxy-handler.js';
import { RouteTable } from './http/route-table.js';
import { type HealthState, adminRoutes } from './http/routes/admin.js';
import { adminApi } from './http/routes/admin-api/admin-api.js';
import { customerDashboard, DASHBOARD_PATH } from './http/routes/customer-dashboard.js';
import { OPERATOR_PAGE_PATH, operatorUi } from './http/routes/operator-ui.js';
import { planCatalogue } from './http/routes/plan-catalogue.js';
import type { UiBundle } from './http/ui/ui-bundle.js';
import { uiPage } from './http/ui/ui-page.js';
import { preCheck } from './http/routes/pre-check.js';
import { selfHistory } from './http/routes/self-history.js';
import { selfUsage } from './http/routes/self-usage.js';
import { ledgerHistory } from './admin/usage-history.js';
import type { DenialTally } from './core/denial-tally.js';
import type { BlockedSubjects, SubjectBlockStore } from './core/subject-blocks.js';
import type { UsageStore } from './core/usage-store.js';
import type { Database } from './db/database.js';
import type { GuardedLimiter } from './limiter/guarded-limiter.js';
import type { GatewayMetrics } from './metrics/metrics.js';
import type { ClientAddressResolver } from './proxy/client-address.js';
import type { Forwarder } from './proxy/forwarder.js';
import { bodyPaceLimitsOf } from './proxy/body-pace.js';

/** Everything the HTTP apps need, built by main.ts (or a test). */
export interface AppDeps {
  readonly config: GatewayConfig;
  /** The limiter behind its guards (local deny cache, circuit breaker, failure policy). */
  readonly limiter: GuardedLimiter;
  readonly keyStore: KeyStore;
  /** Bearer-token (JWT) authentication; required when a route uses `auth: jwt` or `auth: any`. */
  readonly tokenAuthenticator?: Authenticator | undefined;
  readonly forwarder: Forwarder;
  readonly clientAddress: ClientAddressResolver;
  readonly metrics: GatewayMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly health: HealthState;
  /** Called for each accepted API key (batches the database's last_used_at). */
  readonly onApiKeyAccepted?: ((record: ApiKeyRecord) => void) | undefined;
  /** The limit store's read and reset, for the usage endpoints; absent: they answer 503. */
  readonly usage?: UsageStore | undefined;
  /** Abuse detection: the denial counter (denial path only), this instance's blocked subjects, and the shared block store. */
  readonly abuse?: {
    readonly denials: DenialTally;
    readonly blocked: BlockedSubjects;
    readonly blocks: SubjectBlockStore;
  };
  /** The compiled web pages (read at start by main.ts); absent or not ok: the pages answer 503. */
  readonly ui?: UiBundle | undefined;
  /** The admin API: off (404 `admin_disabled`) without a token or a database. */
  readonly admin?: {
    readonly token: string | undefined;
    readonly db: Database | undefined;
    readonly invalidator: CacheInvalidator;
    /** Re-reads gateway.yaml for `POST /admin/reload`. */
    readonly reload?: (() => Promise<ReloadResult>) | undefined;
  };
}

export interface GatewayApps {
  /** The proxy listener (node:http): every request is routed, identified, limited and forwarded. */
  readonly proxy: ProxyRequestListener;
  /** The admin listener: health, readiness, metrics. */
  readonly admin: Hono;
}

/** Wires middleware and routes. Does no I/O; `main.ts` serves the result. */
export function buildApp(deps: AppDeps): GatewayApps {
  const { config, metrics } = deps;
  const authenticators = credentialAuthenticators(deps);
  const plans = buildPlans(config.plans);
  const onAuthFailure = (reason: string) => metrics.authFailures.inc({ reason });
  const routeTable = new RouteTable(config.routes);
  const historyDb = deps.admin?.db;
  const { access_log: accessLogConfig } = config.logging;
  const ui: UiBundle = deps.ui ?? { ok: false, problem: 'no page bundle was given to buildApp' };
  const proxy = proxyHandler({
    // Answered by the gateway itself, before the route table; charges nothing.
    selfUsage: selfUsage({ authenticators, onAuthFailure, clientAddress: deps.clientAddress, plans, usage: deps.usage, clock: deps.clock }),
    planCatalogue: planCatalogue(config.plans),
    dashboard: config.dashboard.enabled
      ? customerDashboard(uiPage(ui, { name: 'customer', basePath: DASHBOARD_PATH, title: 'Your API usage' }))
      : undefined,
    selfHistory: selfHistory({
      authenticators,
      onAuthFailure,
      clientAddress: deps.clientAddress,
      plans,
      history: historyDb === undefined ? undefined : (subject, query) => ledgerHistory({ db: historyDb, clock: deps.clock }, subject, query),
    }),
    preCheck: preCheck({
      authenticators,
      onAuthFailure,
      clientAddress: deps.clientAddress,
      plans,
      routes: routeTable,
      usage: deps.usage,
      clock: deps.clock,
      requestBodyPace: bodyPaceLimitsOf(config.proxy),
    }),
    matchRoute: matchRoute(routeTable),
    bodyLimit: bodyLimit({ maxBodyBytes: config.proxy.max_body_bytes }),
    identify: identify({
      authenticators,
      clientAddress: deps.clientAddress,
      anonymousPlan: config.auth.anonymous_plan,
      apiKeyPrefix: config.auth.api_keys.prefix,
      onAuthFailure,
    }),
    limit: limit({
      limiter: deps.limiter,
      plans,
      resetFormat: config.headers.reset_format,
      headerSets: {
        ietf: config.headers.ietf,
        legacy: config.headers.legacy,
        legacyPerWindow: config.headers.legacy_per_window,
      },
      clock: deps.clock,
      maxBodyBytes: config.proxy.max_body_bytes,
      requestBodyPace: bodyPaceLimitsOf(config.proxy),
      idempotency: {
        maxBodyBytes: config.idempotency.max_body_bytes,
        maxResponseBytes: config.idempotency.max_response_bytes,
      },
      denials: deps.abuse?.denials,
      blocked: deps.abuse?.blocked,
    }),
    forward: forward({
      forwarder: deps.forwarder,
      maxBodyBytes: config.proxy.max_body_bytes,
      onUpstreamTimed: upstreamTimer(metrics),
      refund: (receipt) => deps.limiter.refund(receipt),
      adjust: (receipt, delta) => deps.limiter.adjust(receipt, delta),
      onSettled: settlementRecorder(metrics),
    }),
    logAccess: accessLogConfig.enabled ? accessLog({ logger: deps.logger, includeSubject: accessLogConfig.include_subject }) : undefined,
    metrics,
    logger: deps.logger,
  });
  const admin = adminRoutes({
    metrics,
    health: deps.health,
    servesWithoutStore: config.routes.some((route) => route.on_store_error === 'open'),
  });
  // Before the admin API: the page loads without a token (its API calls carry one).
  if (config.dashboard.operator_page) {
    admin.route('/', operatorUi(uiPage(ui, { name: 'operator', basePath: OPERATOR_PAGE_PATH, title: 'quotagate operator' })));
  }
  admin.route(
    '/',
    adminApi({
      token: deps.admin?.token,
      db: deps.admin?.db,
      invalidator: deps.admin?.invalidator ?? NO_CACHE_INVALIDATION,
      usage: deps.usage,
      blocks: deps.abuse?.blocks,
      config,
      clock: deps.clock,
      logger: deps.logger,
      reload: deps.admin?.reload,
    }),
  );
  return { proxy, admin };
}

/** The authenticator of each credential mode; throws when a route needs tokens and none were given. */
function credentialAuthenticators(deps: AppDeps): Partial<Record<CredentialMode, Authenticator>> {
  const apiKeys = new ApiKeyAuthenticator({
    prefix: deps.config.auth.api_keys.prefix,
    keyStore: deps.keyStore,
    clock: deps.clock,
    ...(deps.onApiKeyAccepted === undefined ? {} : { onKeyAccepted: deps.onApiKeyAccepted }),
  });
  const tokens = deps.tokenAuthenticator;
  if (tokens === undefined) {
    const route = deps.config.routes.find((r) => r.auth === 'jwt' || r.auth === 'any');
    if (route !== undefined) throw new Error(`route "${route.name}" uses auth: ${route.auth}, but no token authenticator was given`);
    return { api_key: apiKeys };
  }
  return { api_key: apiKeys, jwt: tokens, any: new KeyOrTokenAuthenticator(apiKeys, tokens) };
}

/** Records upstream time per route through one histogram cell per route, resolved on first use (hot path). */
function upstreamTimer(metrics: GatewayMetrics): (routeName: string, seconds: number) => void {
  const cells = new Map<string, ReturnType<GatewayMetrics['upstreamDuration']['labels']>>();
  return (routeName, seconds) => {
    let cell = cells.get(routeName);
    if (cell === undefined) {
      cell = metrics.upstreamDuration.labels(routeName);
      cells.set(routeName, cell);
    }
    cell.observe(seconds);
  };
}

/** Counts settled charges per route through cells resolved on first use (only `cost.from_response` routes reach it). */
function settlementRecorder(metrics: GatewayMetrics): (routeName: string, reserved: number, settled: SettledUnits) => void {
  const cells = new Map<string, SettlementCells>();
  return (routeName, reserved, settled) => {
    let route = cells.get(routeName);
    if (route === undefined) {
      route = {
        sources: {
          reported: metrics.costSettlements.labels(routeName, 'reported'),
          missing: metrics.costSettlements.labels(routeName, 'missing'),
          malformed: metrics.costSettlements.labels(routeName, 'malformed'),
        },
        reserved: metrics.costSettlementUnits.labels(routeName, 'reserved'),
        settled: metrics.costSettlementUnits.labels(routeName, 'settled'),
      };
      cells.set(routeName, route);
    }
    route.sources[settled.source].inc();
    route.reserved.inc(reserved);
    route.settled.inc(settled.units);
  };
}

type CounterCellOf = ReturnType<GatewayMetrics['costSettlements']['labels']>;

interface SettlementCells {
  readonly sources: Readonly<Record<SettlementSource, CounterCellOf>>;
  readonly reserved: CounterCellOf;
  readonly settled: CounterCellOf;
}
