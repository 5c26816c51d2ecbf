import { z } from 'zod';
import { KEY_PREFIX_PATTERN } from '../core/api-key.js';
import { QUOTA_EVENT_TYPES } from '../core/quota-events.js';
import { isIP } from 'node:net';
import { CALENDAR_WINDOW_NAMES, type CalendarWindowName, WINDOW_NAMES, type WindowName } from '../core/windows.js';
import { checkJwtReferences, defaultJwtConfig, jwtSchema, scopeSchema } from './jwt-schema.js';
import { describeValue } from './format-issues.js';
import { pathPrefixSchema } from './route-path.js';

/**
 * The one schema of gateway.yaml. Unknown keys are errors everywhere; every
 * duration is in milliseconds and says so in its name; every number has
 * bounds. Cross-field rules are in `checkReferences` below.
 * docs/configuration.md documents every field; keep the two in step.
 */

const MAX_TIMEOUT_MS = 600_000;
const MAX_LIMIT = 1_000_000_000_000;

const port = z.int().min(0).max(65_535);
const host = z.string().min(1);
const durationMs = (defaultMs: number) => z.int().min(1).max(MAX_TIMEOUT_MS).default(defaultMs);
const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
  error: 'expected a name of lowercase letters, digits, "-" and "_" (at most 64)',
});
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

const listenerSchema = (defaultHost: string, defaultPort: number) =>
  z.strictObject({ host: host.default(defaultHost), port: port.default(defaultPort) });

const upstreamSchema = z.strictObject({
  /** Origin of the upstream service: scheme, host and port only. */
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).refine(
    (value) => {
      // zod runs this even when the URL check above failed: leave such a
      // value to that check's issue (and never let `new URL` throw).
      if (!URL.canParse(value)) return true;
      const url = new URL(value);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return true;
      return (url.pathname === '/' || url.pathname === '') && url.search === '' && url.hash === '';
    },
    { error: 'expected an origin (scheme, host, port) with no path, query or fragment' },
  ),
  connect_timeout_ms: durationMs(2_000),
  /** Time to wait for the upstream's response headers. */
  headers_timeout_ms: durationMs(30_000),
  /** Longest pause between two chunks of the upstream's response body. */
  body_timeout_ms: durationMs(30_000),
  /** Most concurrent connections to this upstream. */
  connections: z.int().min(1).max(10_000).default(128),
  keep_alive_timeout_ms: durationMs(4_000),
  /** Longest wait for a free connection once all `connections` are busy; then 503 `upstream_busy`. */
  queue_timeout_ms: durationMs(2_000),
});

/** Most units a route may charge (or reserve) per request. */
const MAX_ROUTE_COST = 1_000_000;
const routeCostUnits = z.int().min(1).max(MAX_ROUTE_COST);
/** An HTTP field name (RFC 9110 token); compared without case. */
const fieldName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, {
  error: 'expected an HTTP field name (1–128 letters, digits or !#$%&\'*+-.^_`|~)',
});

/**
 * A cost known only after the work: `reserve` units are checked and charged
 * at admission, then the charge is settled to what the upstream reports in
 * one response header or trailer (src/http/cost-settlement.ts).
 */
const settledCostSchema = z.strictObject({
  /** Units admitted and charged before forwarding; the charge when no valid value is reported. */
  reserve: routeCostUnits,
  /** Where the upstream reports the units used: exactly one of `header` or `trailer`. */
  from_response: z
    .strictObject({ header: fieldName.optional(), trailer: fieldName.optional() })
    .refine((from) => (from.header === undefined) !== (from.trailer === undefined), {
      error: 'expected exactly one of header or trailer',
    }),
});

const routeSchema = z.strictObject({
  name,
  /** Methods this route matches; all methods when omitted. */
  methods: z.array(z.enum(HTTP_METHODS)).min(1).optional(),
  /** Matches whole path segments: `/api` matches `/api` and `/api/x`, not `/apix`. */
  path_prefix: pathPrefixSchema,
  upstream: name,
  /** `jwt`: a bearer token from a configured issuer; `any`: an API key or a token. */
  auth: z.enum(['api_key', 'jwt', 'any', 'none']).default('api_key'),
  /** `auth: jwt` and `any`: send a verified token's Authorization header on to the upstream (an API key never is). */
  forward_token: z.boolean().default(true),
  /** Scopes the credential must grant (all of them) to use this route: a token's scopes claim, or an API key's scopes. */
  scopes: z.array(scopeSchema).min(1).optional(),
  /** Units this route charges against every window, per request; or a reserve settled from the response. */
  cost: z
    .union([routeCostUnits, settledCostSchema], {
      error: (issue) => `expected a positive integer or a mapping of reserve and from_response, got ${describeValue(issue.input)}`,
    })
    .default(1),
  /** What to do when the limit store fails: forward unchecked (open) or 503 (closed). */
  on_store_error: z.enum(['open', 'closed']).default('closed'),
  hide_headers: z.boolean().default(false),
  /** Overrides `proxy.max_body_bytes` for this route. */
  max_body_bytes: z.int().min(0).max(1_073_741_824).optional(),
  /**
   * Also accept the API key from this query parameter (`api_key`), for
   * clients that cannot send headers; off by default. Cut from the query the
   * upstream receives; never logged. `auth: api_key` or `any` only.
   */
  key_query_param: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'expected 1–64 letters, digits, ".", "-" or "_"' }).optional(),
  /** A metered quota this route also charges (defined under a plan's `quotas`). */
  quota: name.optional(),
  /**
   * Gives back this many units of the `quota` metric's lifetime window once
   * the upstream answered 2xx (`DELETE /repos/{id}` releasing what `POST
   * /repos` counted), never below zero. The route then charges its cost to
   * the plan's windows only, not to the quota.
   */
  release: z.int().min(1).max(1_000_000).optional(),
  /** `shadow`: this route's would-be denials are forwarded, marked `X-Quotagate-Shadow: would-deny` (as a plan's `mode`). */
  mode: z.enum(['enforce', 'shadow']).default('enforce'),
  /** Give the charge back when the upstream fails this way: connection error, timeout, or a 5xx answer. */
  refund_on: z.array(z.enum(['error', 'timeout', '5xx'])).default([]),
  /** Methods whose Idempotency-Key is honoured (see `idempotency`); others ignore the header. Empty: none. */
  idempotency_methods: z.array(z.enum(HTTP_METHODS)).default(['POST', 'PATCH']),
});

const windowLimit = z.int().min(1).max(MAX_LIMIT).optional();

/** A shorter window allowing more than a longer one can never be reached. */
function checkWindowOrder(limits: Partial<Record<WindowName, number>>, ctx: z.RefinementCtx): void {
  const set = WINDOW_NAMES.filter((w) => limits[w] !== undefined);
  for (let i = 0; i + 1 < set.length; i++) {
    const shorter = set[i]!;
    const longer = set[i + 1]!;
    if (limits[shorter]! > limits[longer]!) {
      ctx.addIssue({
        code: 'custom',
        path: [shorter],
        message: `${limits[shorter]} exceeds the ${longer} limit of ${limits[longer]}`,
      });
    }
  }
}

/** A plan's `limits`: the calendar windows, limiting all its traffic. */
const limitsSchema = z
  .strictObject(Object.fromEntries(CALENDAR_WINDOW_NAMES.map((w) => [w, windowLimit])) as {
    [K in CalendarWindowName]: z.ZodOptional<z.ZodInt>;
  })
  .superRefine(checkWindowOrder);

/**
 * One metered quota of a plan: its windows (a calendar window, or
 * `lifetime`: counted forever, given back by a route's `release`) and, for
 * a soft limit, `overage: { max }`: past the limit of the quota's longest
 * calendar window, up to `max` more units a period are admitted and
 * recorded as overage.
 */
const quotaSchema = z
  .strictObject({
    ...(Object.fromEntries(WINDOW_NAMES.map((w) => [w, windowLimit])) as { [K in WindowName]: z.ZodOptional<z.ZodInt> }),
    overage: z.strictObject({ max: z.int().min(1).max(MAX_LIMIT) }).optional(),
  })
  .superRefine((quota, ctx) => {
    checkWindowOrder(quota, ctx);
    if (quota.overage !== undefined && !CALENDAR_WINDOW_NAMES.some((w) => quota[w] !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['overage'], message: 'overage needs a calendar window (second … month) to go past; a lifetime limit is hard' });
    }
  });

/** The default thresholds of a plan's watched windows, in percent (DESIGN.md section 5; issue 15). */
export const DEFAULT_THRESHOLDS: readonly number[] = Object.freeze([80, 95, 100]);

/** Percentages of a limit, 1..100, ascending, each once. */
const thresholdList = z.array(z.int().min(1).max(100)).superRefine((percents, ctx) => {
  for (let i = 1; i < percents.length; i++) {
    if (percents[i]! <= percents[i - 1]!) {
      const problem = percents[i] === percents[i - 1] ? `${percents[i]} is listed twice` : `${percents[i]} comes after ${percents[i - 1]}`;
      ctx.addIssue({ code: 'custom', path: [i], message: `${problem}; list thresholds ascending, each once` });
    }
  }
});

/**
 * A plan's `thresholds`: one list for every watched window (each quota
 * window, and the month window), or per window by its RateLimit-Policy
 * name (`search.month`, `month`), `default` for the others. `[]` turns a
 * window's events off. Checked against the plan's windows in checkThresholds.
 */
const thresholdsSchema = z.union([thresholdList, z.record(z.string(), thresholdList)], {
  error: (issue) => `expected a list of percentages or a mapping of window name to such a list, got ${describeValue(issue.input)}`,
});

const planSchema = z.strictObject({
  /** Metered quotas: metric name → calendar windows and limits, charged by routes naming the metric. */
  quotas: z.record(name, quotaSchema).default({}),
  /** Status of a quota denial: 429, or 402 (Payment Required) for plans sold by usage. */
  quota_status: z.union([z.literal(429), z.literal(402)], { error: 'expected 429 or 402' }).default(429),
  /** Calendar windows and their limits; a plan with none is unlimited. */
  limits: limitsSchema.default({}),
  upgrade_url: z.url({ error: 'expected a URL' }).optional(),
  /** The plan's name for people, in the public catalogue (`GET /_quotagate/plans`); default its key. */
  display_name: z.string().min(1).max(200).optional(),
  /**
   * `shadow`: decide and charge as usual, but forward what would be denied
   * (with `X-Quotagate-Shadow: would-deny`), to try a limit without
   * breaking callers. A hot reload switches it.
   */
  mode: z.enum(['enforce', 'shadow']).default('enforce'),
  /** Listed in the public catalogue; false hides it (internal, anonymous, legacy plans). */
  public: z.boolean().default(true),
  /** Most live (neither revoked nor expired) API keys a subject on this plan may hold; no cap when absent. */
  max_keys: z.int().min(1).max(100_000).optional(),
  /**
   * Prepaid credits: the quota windows (`<metric>.<window>`) whose requests,
   * once the window has no room, are charged to the subject's credits of
   * the metric instead.
   */
  credits: z.strictObject({ covers: z.array(z.string()).min(1, { error: 'name at least one quota window, e.g. [search.month]' }) }).optional(),
  /**
   * Quota events: percent of each quota window and of the month window at
   * which a `quota.threshold` event is emitted, once per subject and period;
   * the same windows emit `quota.exhausted` at their first denial of a
   * period. See docs/events.md.
   */
  thresholds: thresholdsSchema.default(() => [...DEFAULT_THRESHOLDS]),
  /**
   * What the plan's windows and quotas count: `subject` (every request of a
   * subject together) or `key` (each API key of the subject apart, as
   * Kong's `limit_by: credential`; callers without a key id — JWT,
   * `auth: none` — count per subject).
   */
  limit_by: z.enum(['subject', 'key']).default('subject'),
  /**
   * Denial spikes: more than `denials_per_minute` denials of one subject in
   * a calendar minute, across the fleet, raise `subject.denial_spike` once;
   * `action: block` also refuses the subject everywhere (403
   * `subject_blocked`) for `block_seconds`.
   */
  abuse: z
    .strictObject({
      denials_per_minute: z.int().min(1).max(1_000_000),
      action: z.enum(['notify', 'block']).default('notify'),
      /** Seconds a block lasts, 1 to 30 days. */
      block_seconds: z.int().min(1).max(30 * 86_400).default(600),
    })
    .optional(),
})
  .superRefine(checkCredits)
  .superRefine(checkThresholds)
  .superRefine((plan, ctx) => {
    // Credits are a subject's balance; counters per key would each spend it apart.
    if (plan.limit_by === 'key' && plan.credits !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['limit_by'], message: 'credits are per subject: a plan with credits counts by subject' });
    }
  });

/** The windows a plan's thresholds may name: each quota window (`search.month`) and the month window (`month`). */
function watchedWindowNames(plan: { quotas: Record<string, z.output<typeof quotaSchema>>; limits: Partial<Record<WindowName, number>> }): string[] {
  const names = plan.limits.month === undefined ? [] : ['month'];
  for (const [metric, quota] of Object.entries(plan.quotas)) {
    for (const window of WINDOW_NAMES) if (quota[window] !== undefined) names.push(`${metric}.${window}`);
  }
  return names;
}

/** A plan's `thresholds` mapping names `default` or windows the plan watches. */
function checkThresholds(
  plan: { quotas: Record<string, z.output<typeof quotaSchema>>; limits: Partial<Record<WindowName, number>>; thresholds: number[] | Record<string, number[]> },
  ctx: z.RefinementCtx,
): void {
  if (Array.isArray(plan.thresholds)) return;
  const watched = watchedWindowNames(plan);
  for (const key of Object.keys(plan.thresholds)) {
    if (key === 'default' || watched.includes(key)) continue;
    ctx.addIssue({
      code: 'custom',
      path: ['thresholds', key],
      message: `"${key}" is neither default nor a quota window or the month window of this plan (defined: ${watched.join(', ') || 'none'})`,
    });
  }
}

/** A plan's `credits.covers` names quota windows of the plan, none allowing overage, each once. */
function checkCredits(plan: { quotas: Record<string, z.output<typeof quotaSchema>>; credits?: { covers: string[] } | undefined }, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  plan.credits?.covers.forEach((name, index) => {
    const path = ['credits', 'covers', index];
    const dot = name.lastIndexOf('.');
    const [metric, window] = [name.slice(0, dot), name.slice(dot + 1)];
    const quota = dot > 0 && Object.hasOwn(plan.quotas, metric) ? plan.quotas[metric] : undefined;
    if (quota === undefined || !(WINDOW_NAMES as readonly string[]).includes(window) || quota[window as WindowName] === undefined) {
      const defined = Object.entries(plan.quotas).flatMap(([m, q]) => WINDOW_NAMES.filter((w) => q[w] !== undefined).map((w) => `${m}.${w}`));
      ctx.addIssue({ code: 'custom', path, message: `"${name}" is not a quota window of this plan (defined: ${defined.join(', ') || 'none'})` });
      return;
    }
    if (quota.overage !== undefined && CALENDAR_WINDOW_NAMES.findLast((w) => quota[w] !== undefined) === window) {
      ctx.addIssue({ code: 'custom', path, message: `"${name}" allows overage; a window is either soft (overage) or covered by credits, not both` });
    }
    if (seen.has(name)) ctx.addIssue({ code: 'custom', path, message: `"${name}" is listed twice` });
    seen.add(name);
  });
}

const keyEntrySchema = z.strictObject({
  /** A stable, non-secret id shown to the upstream; defaults to the hash's first 12 hex digits. */
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'expected 1–64 letters, digits, ".", "-" or "_"' }).optional(),
  /** Lowercase hex SHA-256 of the key (`quotagate keys hash <key>`). Never the key itself. */
  hash: z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected a lowercase hex SHA-256 (64 characters)' }),
  subject: z.string().min(1).max(256),
  plan: name,
  name: z.string().max(200).optional(),
  /** Scopes the key grants, checked against routes' `scopes` as a token's are. */
  scopes: z.array(scopeSchema).min(1).optional(),
});

const KEY_CACHE_DEFAULTS = { max_entries: 100_000, ttl_ms: 300_000, negative_max_entries: 10_000, negative_ttl_ms: 10_000 };
const LOOKUP_THROTTLE_DEFAULTS = { unknown_per_second: 10, max_clients: 100_000 };

const apiKeysSchema = z.strictObject({
  prefix: z.string().regex(KEY_PREFIX_PATTERN, {
    error: 'expected 2–16 lowercase letters or digits, starting with a letter',
  }).default('qg'),
  keys: z.array(keyEntrySchema).default([]),
  /** Keys from the database, kept in memory so a hit makes no query; changes are pushed, the TTL is a safety net. */
  cache: z
    .strictObject({
      /** Most keys kept; the least recently used go first. 0 turns the cache off. */
      max_entries: z.int().min(0).max(10_000_000).default(100_000),
      /** How long a cached key is trusted without asking the database. */
      ttl_ms: z.int().min(1).max(3_600_000).default(300_000),
      /** Most unknown key hashes remembered. 0 turns the negative cache off. */
      negative_max_entries: z.int().min(0).max(10_000_000).default(10_000),
      /** How long an unknown key hash is answered without asking the database. */
      negative_ttl_ms: z.int().min(1).max(3_600_000).default(10_000),
    })
    .default(KEY_CACHE_DEFAULTS),
  /** Database lookups of unknown keys per client address; past the budget, 429 `auth_throttled` without a query. */
  lookup_throttle: z
    .strictObject({
      /** Lookups that miss every cache and find no key, per client address and second. */
      unknown_per_second: z.int().min(1).max(1_000_000).default(LOOKUP_THROTTLE_DEFAULTS.unknown_per_second),
      /** Most client addresses tracked (an LRU); bounds the throttle's memory. */
      max_clients: z.int().min(1).max(10_000_000).default(LOOKUP_THROTTLE_DEFAULTS.max_clients),
    })
    .default(LOOKUP_THROTTLE_DEFAULTS),
});

const authSchema = z.strictObject({
  api_keys: apiKeysSchema.default({ prefix: 'qg', keys: [], cache: KEY_CACHE_DEFAULTS, lookup_throttle: LOOKUP_THROTTLE_DEFAULTS }),
  /** The plan of callers on `auth: none` routes, counted by client IP. */
  anonymous_plan: name.default('anonymous'),
  /** Bearer tokens (JWT) from trusted issuers, for `auth: jwt` and `auth: any` routes. */
  jwt: jwtSchema.default(defaultJwtConfig),
});

const cidr = z.string().refine(isCidrOrAddress, { error: 'expected an IP address or CIDR block' });

/** The proxy listener's resource limits (docs/configuration.md gives what Envoy and nginx ship). */
const PROXY_LIMIT_DEFAULTS = {
  max_connections: 10_000,
  headers_timeout_ms: 10_000,
  keep_alive_timeout_ms: 5_000,
  body_idle_timeout_ms: 10_000,
  body_min_bytes_per_s: 1_024,
  request_timeout_ms: 300_000,
} as const;

const proxySchema = z
  .strictObject({
    /** Largest request body forwarded; larger ones get 413. */
    max_body_bytes: z.int().min(0).max(1_073_741_824).default(10 * 1024 * 1024),
    /** Peers whose X-Forwarded-For / -Proto / -Host are believed. */
    trusted_proxies: z.array(cidr).default([]),
    /** Most client connections open at once; further ones are closed as they arrive. */
    max_connections: z.int().min(1).max(1_000_000).default(PROXY_LIMIT_DEFAULTS.max_connections),
    /** From a connection's (or a request's) first byte to the end of its headers. */
    headers_timeout_ms: durationMs(PROXY_LIMIT_DEFAULTS.headers_timeout_ms),
    /** How long an idle keep-alive connection is kept open. */
    keep_alive_timeout_ms: durationMs(PROXY_LIMIT_DEFAULTS.keep_alive_timeout_ms),
    /** Longest pause between two chunks of a request body (also the grace before the minimum rate applies). */
    body_idle_timeout_ms: durationMs(PROXY_LIMIT_DEFAULTS.body_idle_timeout_ms),
    /** Slowest average a request body may arrive at, in bytes per second; 0 turns the check off. */
    body_min_bytes_per_s: z.int().min(0).max(1_073_741_824).default(PROXY_LIMIT_DEFAULTS.body_min_bytes_per_s),
    /** Longest time to receive a whole request, headers and body, from its first byte. */
    request_timeout_ms: z.int().min(1).max(3_600_000).default(PROXY_LIMIT_DEFAULTS.request_timeout_ms),
  })
  .superRefine((proxy, ctx) => {
    if (proxy.headers_timeout_ms > proxy.request_timeout_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['headers_timeout_ms'],
        message: `${proxy.headers_timeout_ms} exceeds request_timeout_ms (${proxy.request_timeout_ms})`,
      });
    }
  });

const MIB = 1024 * 1024;

/** Idempotency-Key records (docs/http-interface.md, "Idempotency"). */
const idempotencySchema = z
  .strictObject({
    /** Largest body of a request with an Idempotency-Key; it is read whole and hashed before the charge. Larger: 413. */
    max_body_bytes: z.int().min(0).max(64 * MIB).default(MIB),
    /** Largest response body kept for replay; a larger response is not kept and its key is released. */
    max_response_bytes: z.int().min(0).max(64 * MIB).default(MIB),
    /** How long a completed response is replayed. */
    ttl_ms: z.int().min(1_000).max(7 * 86_400_000).default(86_400_000),
    /** How long an admitted request holds its key before it completes (a gateway dying mid-request frees it then). */
    in_flight_ttl_ms: durationMs(120_000),
    /** The memory store's bounds on what the records hold (response bytes plus a fixed overhead per record). */
    memory: z
      .strictObject({
        /** All subjects together; past it, the least recently active subject's records go first. */
        max_bytes: z.int().min(1).max(16 * 1024 * MIB).default(256 * MIB),
        /** One subject's share; past it, that subject's own least recently used records go. */
        subject_max_bytes: z.int().min(1).max(16 * 1024 * MIB).default(16 * MIB),
      })
      .default({ max_bytes: 256 * MIB, subject_max_bytes: 16 * MIB }),
  })
  .superRefine((idempotency, ctx) => {
    if (idempotency.memory.subject_max_bytes > idempotency.memory.max_bytes) {
      ctx.addIssue({
        code: 'custom',
        path: ['memory', 'subject_max_bytes'],
        message: `${idempotency.memory.subject_max_bytes} exceeds memory.max_bytes (${idempotency.memory.max_bytes})`,
      });
    }
  });

/** The defaults of `idempotency`, for the section left out. */
export const IDEMPOTENCY_DEFAULTS = {
  max_body_bytes: MIB,
  max_response_bytes: MIB,
  ttl_ms: 86_400_000,
  in_flight_ttl_ms: 120_000,
  memory: { max_bytes: 256 * MIB, subject_max_bytes: 16 * MIB },
};

const headersSchema = z.strictObject({
  /** X-RateLimit-Reset as seconds until reset (default) or as epoch seconds. */
  reset_format: z.enum(['delta-seconds', 'epoch-seconds']).default('delta-seconds'),
  /** IETF RateLimit-Policy and RateLimit on limited responses. */
  ietf: z.boolean().default(true),
  /** X-RateLimit-Limit, -Remaining and -Reset (the most constraining policy). */
  legacy: z.boolean().default(true),
  /** X-RateLimit-Limit-<Window> and -Remaining-<Window> for each rate window. */
  legacy_per_window: z.boolean().default(true),
});

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/, {
  error: 'expected host:port',
});

const redisSchema = z.strictObject({
  /** A single Redis: `redis://[:password@]host:port[/db]` or `rediss://` for TLS. */
  url: z.string().regex(/^rediss?:\/\/\S+$/, { error: 'expected a redis:// or rediss:// URL' }).optional(),
  /** Redis Sentinel: the master's name and at least one sentinel. */
  sentinel: z
    .strictObject({
      master_name: z.string().min(1),
      sentinels: z.array(hostPort).min(1),
      password: z.string().optional(),
      sentinel_password: z.string().optional(),
    })
    .optional(),
  /** Redis Cluster: seed nodes; the rest are discovered. */
  cluster: z.strictObject({ nodes: z.array(hostPort).min(1), password: z.string().optional() }).optional(),
  /** Longest wait for one limiter call before the route's `on_store_error` applies. */
  command_timeout_ms: z.int().min(1).max(60_000).default(100),
  connect_timeout_ms: durationMs(1_000),
  /** Pause between two readiness probes of Redis (off the request path), for `/readyz`. */
  probe_interval_ms: z.int().min(50).max(60_000).default(1_000),
  /** First part of every Redis key (`<prefix>:v1:{<subject>}:…`), to share a Redis with other apps. */
  key_prefix: z.string().regex(/^[a-z0-9_-]{1,32}$/, { error: 'expected 1–32 of a-z, 0-9, "-", "_"' }).default('qg'),
});

const storeSchema = z
  .strictObject({
    /** `memory`: one instance, counters in process. `redis`: shared by every instance. */
    type: z.enum(['memory', 'redis']).default('memory'),
    redis: redisSchema.optional(),
    /** Stops calling a failing store; each route's `on_store_error` answers meanwhile. */
    circuit_breaker: z
      .strictObject({
        /** Consecutive failed calls that open the circuit. */
        failure_threshold: z.int().min(1).max(1_000).default(5),
        /** How long the circuit stays open before one probe call is let through. */
        open_ms: durationMs(1_000),
      })
      .default({ failure_threshold: 5, open_ms: 1_000 }),
    /** Subjects denied until a period ends, answered locally without a store call. 0 disables it. */
    local_deny_cache: z
      .strictObject({ max_entries: z.int().min(0).max(10_000_000).default(10_000) })
      .default({ max_entries: 10_000 }),
  })
  .superRefine((store, ctx) => {
    if (store.type === 'memory') {
      if (store.redis !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['redis'], message: 'given, but store.type is "memory"' });
      }
      return;
    }
    if (store.redis === undefined) {
      ctx.addIssue({ code: 'custom', path: ['redis'], message: 'required when store.type is "redis"' });
      return;
    }
    const modes = (['url', 'sentinel', 'cluster'] as const).filter((mode) => store.redis![mode] !== undefined);
    if (modes.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['redis'],
        message: `set exactly one of url, sentinel, cluster${modes.length > 1 ? ` (got ${modes.join(', ')})` : ''}`,
      });
    }
  });

const postgresUrl = z.string().regex(/^postgres(ql)?:\/\/\S+$/, { error: 'expected a postgres:// or postgresql:// URL' });

const postgresSchema = z
  .strictObject({
    /** A PostgreSQL server: `postgres://user:password@host:port/db`. Absent: the embedded PGlite engine. */
    url: postgresUrl.optional(),
    /** A read replica that serves API key lookups only; every write goes to `url`. */
    replica_url: postgresUrl.optional(),
    /**
     * How far behind the primary the replica may be and still serve key
     * lookups, in ms; checked every half of it (at most every second) off the
     * request path. Beyond it, or while the replica is down, lookups go to `url`.
     */
    replica_max_lag_ms: durationMs(1_000),
    /** Where the embedded engine keeps its files (no `url`); `memory://` keeps nothing. */
    data_dir: z.string().min(1).default('./data'),
    /** Most connections to the server (and to the replica, each). */
    max_connections: z.int().min(1).max(1_000).default(10),
    /** Longest one statement may run on the server before it is cancelled. */
    statement_timeout_ms: durationMs(5_000),
    connect_timeout_ms: durationMs(5_000),
  })
  .superRefine((postgres, ctx) => {
    if (postgres.replica_url !== undefined && postgres.url === undefined) {
      ctx.addIssue({ code: 'custom', path: ['replica_url'], message: 'needs postgres.url (the embedded engine has no replica)' });
    }
  });

/** One webhook endpoint of `events.webhooks`. */
const webhookSchema = z.strictObject({
  /** The endpoint's label in metrics, the admin API and the database; default its index in the list (`0`, `1`, …). */
  name: name.optional(),
  /** Where events are POSTed: an http:// or https:// URL (never logged nor used as a label). */
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
  /** Name of the environment variable holding the endpoint's Standard Webhooks secret (`whsec_<base64>`). */
  secret_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, { error: 'expected an environment variable name' }),
  /** The event types sent to this endpoint; default every type. */
  types: z.array(z.enum(QUOTA_EVENT_TYPES)).min(1).default([...QUOTA_EVENT_TYPES]),
  /** Longest one delivery attempt may take, connection to the end of the response; then it counts as failed. */
  timeout_ms: z.int().min(1).max(60_000).default(5_000),
});

/** The defaults of `events.delivery`, for the section left out. */
export const EVENT_DELIVERY_DEFAULTS = {
  max_attempts: 8,
  backoff_base_ms: 1_000,
  backoff_max_ms: 300_000,
  max_pending: 10_000,
  concurrency: 4,
  poll_interval_ms: 500,
  reclaim_after_ms: 60_000,
};

/** How events are delivered (docs/events.md): retries, the queue's bound, how many at once. */
const eventDeliverySchema = z
  .strictObject({
    /** Attempts per event and endpoint, the first included; after the last failure the delivery is dead-lettered. */
    max_attempts: z.int().min(1).max(100).default(EVENT_DELIVERY_DEFAULTS.max_attempts),
    /** Backoff before retry n is a random delay in [0, min(backoff_max_ms, backoff_base_ms × 2^(n−1))] (full jitter). */
    backoff_base_ms: z.int().min(1).max(3_600_000).default(EVENT_DELIVERY_DEFAULTS.backoff_base_ms),
    backoff_max_ms: z.int().min(1).max(86_400_000).default(EVENT_DELIVERY_DEFAULTS.backoff_max_ms),
    /** Most deliveries waiting in the database; at the bound, no more events are taken from the outbox until some are done. */
    max_pending: z.int().min(1).max(10_000_000).default(EVENT_DELIVERY_DEFAULTS.max_pending),
    /** Attempts in flight at once per endpoint (so a slow endpoint never holds another's). */
    concurrency: z.int().min(1).max(256).default(EVENT_DELIVERY_DEFAULTS.concurrency),
    /** Pause between two looks for new events and due retries. */
    poll_interval_ms: z.int().min(10).max(60_000).default(EVENT_DELIVERY_DEFAULTS.poll_interval_ms),
    /** Outbox entries another instance took and did not record within this are taken over (it crashed). */
    reclaim_after_ms: z.int().min(100).max(3_600_000).default(EVENT_DELIVERY_DEFAULTS.reclaim_after_ms),
  })
  .superRefine((delivery, ctx) => {
    if (delivery.backoff_max_ms < delivery.backoff_base_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['backoff_max_ms'],
        message: `${delivery.backoff_max_ms} is below backoff_base_ms (${delivery.backoff_base_ms})`,
      });
    }
  });

/** The default of `events.stream_max_length`. */
const EVENT_STREAM_MAX_LENGTH = 100_000;

/** Quota events (docs/events.md): where the limit store writes them, and the webhooks that deliver them. */
const eventsSchema = z
  .strictObject({
    /**
     * Most events kept waiting for delivery: each Redis event stream is
     * trimmed to about this many entries (XADD MAXLEN ~; on a Cluster, per
     * slot's stream), the memory store's outbox to exactly this many (the
     * oldest dropped first).
     */
    stream_max_length: z.int().min(1_000).max(10_000_000).default(EVENT_STREAM_MAX_LENGTH),
    /** Endpoints that receive signed events; none: events are not delivered (nor read from the outbox). */
    webhooks: z.array(webhookSchema).max(32).default([]),
    delivery: eventDeliverySchema.default(EVENT_DELIVERY_DEFAULTS),
  })
  .superRefine((events, ctx) => {
    const seen = new Set<string>();
    events.webhooks.forEach((webhook, index) => {
      const label = webhook.name ?? String(index);
      if (seen.has(label)) ctx.addIssue({ code: 'custom', path: ['webhooks', index, 'name'], message: `duplicate webhook name "${label}"` });
      seen.add(label);
    });
  });

/** The label of `events.webhooks[index]`: its name, else its index. */
export function webhookName(webhook: { readonly name?: string | undefined }, index: number): string {
  return webhook.name ?? String(index);
}

const configObject = z.strictObject({
  listeners: z
    .strictObject({
      proxy: listenerSchema('0.0.0.0', 8080).default({ host: '0.0.0.0', port: 8080 }),
      admin: listenerSchema('127.0.0.1', 8081).default({ host: '127.0.0.1', port: 8081 }),
    })
    .default({ proxy: { host: '0.0.0.0', port: 8080 }, admin: { host: '127.0.0.1', port: 8081 } }),
  store: storeSchema.default({
    type: 'memory',
    circuit_breaker: { failure_threshold: 5, open_ms: 1_000 },
    local_deny_cache: { max_entries: 10_000 },
  }),
  proxy: proxySchema.default({ max_body_bytes: 10 * 1024 * 1024, trusted_proxies: [], ...PROXY_LIMIT_DEFAULTS }),
  headers: headersSchema.default({ reset_format: 'delta-seconds', ietf: true, legacy: true, legacy_per_window: true }),
  idempotency: idempotencySchema.default(IDEMPOTENCY_DEFAULTS),
  postgres: postgresSchema.default({
    data_dir: './data',
    replica_max_lag_ms: 1_000,
    max_connections: 10,
    statement_timeout_ms: 5_000,
    connect_timeout_ms: 5_000,
  }),
  auth: authSchema.default(() => ({
    api_keys: { prefix: 'qg', keys: [], cache: KEY_CACHE_DEFAULTS, lookup_throttle: LOOKUP_THROTTLE_DEFAULTS },
    anonymous_plan: 'anonymous',
    jwt: defaultJwtConfig(),
  })),
  upstreams: z.record(name, upstreamSchema),
  routes: z.array(routeSchema).min(1),
  plans: z.record(name, planSchema),
  /** The admin API on the admin listener; off unless a bearer token is configured. */
  admin: z
    .strictObject({
      /** Name of the environment variable holding the admin API's bearer token; unset or empty: the API is off. */
      token_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, { error: 'expected an environment variable name' }).optional(),
    })
    .default({}),
  /** The usage ledger: how often charged counts are copied to the database (DESIGN.md section 3). */
  usage: z
    .strictObject({
      /** Pause between two ledger flushes; at most this much usage is lost in a crash. */
      flush_interval_ms: z.int().min(100).max(600_000).default(5_000),
    })
    .default({ flush_interval_ms: 5_000 }),
  events: eventsSchema.default({ stream_max_length: EVENT_STREAM_MAX_LENGTH, webhooks: [], delivery: EVENT_DELIVERY_DEFAULTS }),
  /** The web pages the gateway serves itself (docs/dashboard.md): on by default, each can be turned off. */
  dashboard: z
    .strictObject({
      /** The customer page at `/_quotagate/dashboard` on the proxy listener (the caller signs in with an API key). */
      enabled: z.boolean().default(true),
      /** The operator page at `/admin/ui` on the admin listener (every call it makes needs the admin token). */
      operator_page: z.boolean().default(true),
    })
    .default({ enabled: true, operator_page: true }),
  shutdown: z
    .strictObject({ drain_timeout_ms: durationMs(10_000) })
    .default({ drain_timeout_ms: 10_000 }),
  logging: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** One JSON line per proxied request, at level info; never a key or token. */
      access_log: z
        .strictObject({
          enabled: z.boolean().default(true),
          /** Also log the charged subject (a customer identifier; off by default). */
          include_subject: z.boolean().default(false),
        })
        .default({ enabled: true, include_subject: false }),
    })
    .default({ level: 'info', access_log: { enabled: true, include_subject: false } }),
});

export const configSchema = configObject.superRefine(checkReferences);

/** The parsed, defaulted configuration. */
export type GatewayConfig = z.output<typeof configSchema>;
export type RouteConfig = GatewayConfig['routes'][number];
export type UpstreamConfig = GatewayConfig['upstreams'][string];
export type PlanConfig = GatewayConfig['plans'][string];
export type KeyEntryConfig = GatewayConfig['auth']['api_keys']['keys'][number];
export type PostgresConfig = GatewayConfig['postgres'];
export type IdempotencyConfig = GatewayConfig['idempotency'];
export type EventsConfig = GatewayConfig['events'];

/** Rules that span fields: every reference names something defined, names are unique. */
function checkReferences(config: z.output<typeof configObject>, ctx: z.RefinementCtx): void {
  const upstreams = Object.keys(config.upstreams);
  const plans = Object.keys(config.plans);
  const seenRoutes = new Set<string>();
  config.routes.forEach((route, index) => {
    if (seenRoutes.has(route.name)) {
      ctx.addIssue({ code: 'custom', path: ['routes', index, 'name'], message: `duplicate route name "${route.name}"` });
    }
    seenRoutes.add(route.name);
    if (!upstreams.includes(route.upstream)) {
      ctx.addIssue({
        code: 'custom',
        path: ['routes', index, 'upstream'],
        message: `unknown upstream "${route.upstream}" (defined: ${upstreams.join(', ') || 'none'})`,
      });
    }
    const metric = route.quota;
    if (metric !== undefined && !Object.values(config.plans).some((plan) => plan.quotas[metric] !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['routes', index, 'quota'],
        message: `no plan defines the quota "${metric}"`,
      });
    }
    if (route.key_query_param !== undefined && route.auth !== 'api_key' && route.auth !== 'any') {
      ctx.addIssue({ code: 'custom', path: ['routes', index, 'key_query_param'], message: `an API key in the query needs auth: api_key or any, not ${route.auth}` });
    }
    if (route.release !== undefined) {
      if (metric === undefined) {
        ctx.addIssue({ code: 'custom', path: ['routes', index, 'release'], message: 'release needs the route\'s quota: the metric whose lifetime count it gives back' });
      } else if (!Object.values(config.plans).some((plan) => plan.quotas[metric]?.lifetime !== undefined)) {
        ctx.addIssue({ code: 'custom', path: ['routes', index, 'release'], message: `no plan gives the quota "${metric}" a lifetime window to release` });
      }
    }
  });
  const anonymousRoute = config.routes.find((route) => route.auth === 'none');
  if (anonymousRoute !== undefined && !plans.includes(config.auth.anonymous_plan)) {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'anonymous_plan'],
      message: `plan "${config.auth.anonymous_plan}" is not defined, and route "${anonymousRoute.name}" uses auth: none`,
    });
  }
  const seenHashes = new Set<string>();
  const seenIds = new Set<string>();
  config.auth.api_keys.keys.forEach((key, index) => {
    const path = ['auth', 'api_keys', 'keys', index];
    if (!plans.includes(key.plan)) {
      ctx.addIssue({ code: 'custom', path: [...path, 'plan'], message: `unknown plan "${key.plan}"` });
    }
    if (seenHashes.has(key.hash)) {
      ctx.addIssue({ code: 'custom', path: [...path, 'hash'], message: 'duplicate key hash' });
    }
    seenHashes.add(key.hash);
    const id = key.id ?? key.hash.slice(0, 12);
    if (seenIds.has(id)) {
      ctx.addIssue({ code: 'custom', path: [...path, 'id'], message: `duplicate key id "${id}"` });
    }
    seenIds.add(id);
  });
  checkJwtReferences(config, ctx);
}

function isCidrOrAddress(value: string): boolean {
  const [address, bits, ...rest] = value.split('/');
  if (address === undefined || rest.length > 0) return false;
  const version = isIP(address);
  if (version === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (version === 4 ? 32 : 128);
}
