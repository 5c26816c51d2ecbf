import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';

/**
 * One fixture per rejection rule, each holding exactly one problem, each with
 * the exact line(s) a user sees. The file label is the fixture's basename.
 */

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));

function problemsOf(file: string, env: Record<string, string> = {}): readonly string[] {
  try {
    parseConfigText(readFileSync(FIXTURES + file, 'utf8'), file, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error(`${file} was accepted`);
}

const NAME_RULE = 'expected a name of lowercase letters, digits, "-" and "_" (at most 64)';

/** `env`: the environment the fixture is loaded with (the admin token rule reads the variable token_env names). */
const cases: readonly { rule: string; file: string; problem: string; env?: Record<string, string> }[] = [
  // Structure and types
  { rule: 'an unknown top-level key', file: 'unknown-key-top.yaml', problem: 'logs: unknown key' },
  { rule: 'an unknown nested key', file: 'unknown-key-nested.yaml', problem: 'plans.free.limit: unknown key' },
  { rule: 'a value of the wrong type', file: 'wrong-type.yaml', problem: 'routes[0].hide_headers: expected a boolean, got a string ("yes")' },
  { rule: 'a scalar where a section belongs', file: 'wrong-type-section.yaml', problem: 'listeners: expected a mapping, got a number (8080)' },
  { rule: 'a section left empty', file: 'empty-section.yaml', problem: 'listeners: expected a mapping, got nothing' },
  { rule: 'a document that is not a mapping', file: 'not-a-mapping.yaml', problem: '(root): expected a mapping, got a list' },
  { rule: 'an empty file', file: 'empty.yaml', problem: '(root): expected a mapping, got nothing' },
  { rule: 'a missing required field', file: 'missing-required.yaml', problem: 'routes[0].upstream: required' },
  { rule: 'a missing required section', file: 'missing-section.yaml', problem: 'plans: required' },
  // Bounds
  { rule: 'a port above 65535', file: 'bad-port.yaml', problem: 'listeners.proxy.port: must be at most 65535' },
  { rule: 'a timeout above 600000 ms', file: 'bad-timeout.yaml', problem: 'upstreams.demo.headers_timeout_ms: must be at most 600000' },
  { rule: 'a zero timeout', file: 'zero-timeout.yaml', problem: 'shutdown.drain_timeout_ms: must be at least 1' },
  {
    rule: 'a headers timeout longer than the whole-request timeout',
    file: 'proxy-headers-timeout-over-request.yaml',
    problem: 'proxy.headers_timeout_ms: 20000 exceeds request_timeout_ms (15000)',
  },
  { rule: 'a ledger flush interval below 100 ms', file: 'bad-usage-flush-interval.yaml', problem: 'usage.flush_interval_ms: must be at least 100' },
  { rule: 'a zero connection pool', file: 'bad-connections.yaml', problem: 'upstreams.demo.connections: must be at least 1' },
  { rule: 'a zero route cost', file: 'bad-cost.yaml', problem: 'routes[0].cost: must be at least 1' },
  { rule: 'a route cost neither an integer nor a mapping', file: 'cost-wrong-type.yaml', problem: 'routes[0].cost: expected a positive integer or a mapping of reserve and from_response, got a string ("cheap")' },
  { rule: 'a zero reserve', file: 'settled-cost-zero-reserve.yaml', problem: 'routes[0].cost.reserve: must be at least 1' },
  { rule: 'a settled cost with no from_response', file: 'settled-cost-no-source.yaml', problem: 'routes[0].cost.from_response: required' },
  {
    rule: 'a settled cost read from both a header and a trailer',
    file: 'settled-cost-both-fields.yaml',
    problem: 'routes[0].cost.from_response: expected exactly one of header or trailer',
  },
  { rule: 'a settled cost read from no field', file: 'settled-cost-no-field.yaml', problem: 'routes[0].cost.from_response: expected exactly one of header or trailer' },
  {
    rule: 'a settled cost field that is not a field name',
    file: 'settled-cost-bad-field.yaml',
    problem: "routes[0].cost.from_response.header: expected an HTTP field name (1–128 letters, digits or !#$%&'*+-.^_`|~)",
  },
  { rule: 'a negative body size', file: 'bad-max-body.yaml', problem: 'proxy.max_body_bytes: must be at least 0' },
  // Enums
  { rule: 'an unknown auth mode', file: 'bad-enum.yaml', problem: 'routes[0].auth: expected one of "api_key", "jwt", "any", "none"' },
  {
    rule: 'an unknown HTTP method',
    file: 'bad-method.yaml',
    problem: 'routes[0].methods[1]: expected one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"',
  },
  { rule: 'an empty method list', file: 'empty-methods.yaml', problem: 'routes[0].methods: must have at least 1 entry' },
  { rule: 'an unknown store failure policy', file: 'bad-store-error-policy.yaml', problem: 'routes[0].on_store_error: expected one of "open", "closed"' },
  { rule: 'a redis store with no redis settings', file: 'bad-store.yaml', problem: 'store.redis: required when store.type is "redis"' },
  { rule: 'redis settings under the memory store', file: 'redis-with-memory.yaml', problem: 'store.redis: given, but store.type is "memory"' },
  {
    rule: 'two ways to reach Redis at once',
    file: 'redis-two-modes.yaml',
    problem: 'store.redis: set exactly one of url, sentinel, cluster (got url, cluster)',
  },
  { rule: 'a redis URL of another scheme', file: 'bad-redis-url.yaml', problem: 'store.redis.url: expected a redis:// or rediss:// URL' },
  { rule: 'a postgres URL of another scheme', file: 'bad-postgres-url.yaml', problem: 'postgres.url: expected a postgres:// or postgresql:// URL' },
  {
    rule: 'a postgres replica without a primary',
    file: 'postgres-replica-without-url.yaml',
    problem: 'postgres.replica_url: needs postgres.url (the embedded engine has no replica)',
  },
  { rule: 'a postgres pool of zero connections', file: 'bad-postgres-max-connections.yaml', problem: 'postgres.max_connections: must be at least 1' },
  { rule: 'a route quota no plan defines', file: 'unknown-route-quota.yaml', problem: 'routes[0].quota: no plan defines the quota "search"' },
  { rule: 'a quota status other than 429 or 402', file: 'bad-quota-status.yaml', problem: 'plans.free.quota_status: expected 429 or 402' },
  { rule: 'an unknown refund condition', file: 'bad-refund-on.yaml', problem: 'routes[0].refund_on[0]: expected one of "error", "timeout", "5xx"' },
  {
    rule: 'an unknown log level',
    file: 'bad-log-level.yaml',
    problem: 'logging.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
  },
  {
    rule: 'an access-log switch that is not a boolean',
    file: 'bad-access-log.yaml',
    problem: 'logging.access_log.include_subject: expected a boolean, got a string ("yes")',
  },
  { rule: 'an unknown reset format', file: 'bad-reset-format.yaml', problem: 'headers.reset_format: expected one of "delta-seconds", "epoch-seconds"' },
  // Plans and limits
  { rule: 'a fractional limit', file: 'fractional-limit.yaml', problem: 'plans.free.limits.hour: expected an integer' },
  { rule: 'a zero limit', file: 'zero-limit.yaml', problem: 'plans.free.limits.day: must be at least 1' },
  { rule: 'a negative limit', file: 'negative-limit.yaml', problem: 'plans.free.limits.minute: must be at least 1' },
  { rule: 'a limit above 10^12 (only the schema bound, not the safe-integer one)', file: 'huge-limit.yaml', problem: 'plans.free.limits.month: must be at most 1000000000000' },
  { rule: 'a shorter window allowing more than a longer one', file: 'limit-order.yaml', problem: 'plans.free.limits.minute: 100 exceeds the hour limit of 60' },
  {
    rule: "a subject's share of idempotency records over the total",
    file: 'idempotency-share-over-total.yaml',
    problem: 'idempotency.memory.subject_max_bytes: 2000000 exceeds memory.max_bytes (1000000)',
  },
  {
    rule: 'an unknown method among idempotency_methods',
    file: 'bad-idempotency-methods.yaml',
    problem: 'routes[0].idempotency_methods[1]: expected one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"',
  },
  { rule: 'a plan name that breaks the name pattern', file: 'bad-plan-name.yaml', problem: `plans.Pro: invalid name: ${NAME_RULE}` },
  { rule: 'an upgrade URL that is not a URL', file: 'bad-upgrade-url.yaml', problem: 'plans.free.upgrade_url: expected a URL' },
  { rule: 'a max_keys below 1', file: 'bad-max-keys.yaml', problem: 'plans.free.max_keys: must be at least 1' },
  { rule: 'a threshold above 100 %', file: 'thresholds-above-100.yaml', problem: 'plans.pro.thresholds[1]: must be at most 100' },
  { rule: 'a fractional threshold', file: 'thresholds-fractional.yaml', problem: 'plans.pro.thresholds[0]: expected an integer' },
  { rule: 'a threshold below 1 % in a per-window list', file: 'thresholds-window-below-1.yaml', problem: 'plans.pro.thresholds["search.month"][0]: must be at least 1' },
  {
    rule: 'thresholds out of order',
    file: 'thresholds-not-ascending.yaml',
    problem: 'plans.pro.thresholds[1]: 80 comes after 95; list thresholds ascending, each once',
  },
  { rule: 'a threshold listed twice', file: 'thresholds-duplicate.yaml', problem: 'plans.pro.thresholds[1]: 80 is listed twice; list thresholds ascending, each once' },
  {
    rule: 'thresholds neither a list nor a mapping',
    file: 'thresholds-wrong-type.yaml',
    problem: 'plans.pro.thresholds: expected a list of percentages or a mapping of window name to such a list, got a number (80)',
  },
  {
    rule: 'thresholds for a window the plan does not watch',
    file: 'thresholds-unknown-window.yaml',
    problem:
      'plans.pro.thresholds["search.day"]: "search.day" is neither default nor a quota window or the month window of this plan (defined: month, search.month)',
  },
  { rule: 'an event stream capped below 1000', file: 'bad-event-stream-max-length.yaml', problem: 'events.stream_max_length: must be at least 1000' },
  { rule: 'an abuse rule of 0 denials a minute', file: 'bad-abuse-threshold.yaml', problem: 'plans.free.abuse.denials_per_minute: must be at least 1' },
  { rule: 'an abuse action neither notify nor block', file: 'bad-abuse-action.yaml', problem: 'plans.free.abuse.action: expected one of "notify", "block"' },
  {
    rule: 'a plan counting by key with credits',
    file: 'limit-by-key-with-credits.yaml',
    problem: 'plans.paid.limit_by: credits are per subject: a plan with credits counts by subject',
  },
  {
    rule: 'a short admin token with the admin listener beyond loopback',
    file: 'admin-token-short.yaml',
    env: { ADMIN_TOKEN: 'x'.repeat(31) },
    problem:
      'admin.token_env: ADMIN_TOKEN holds 31 characters, and the admin listener is bound to 0.0.0.0, beyond loopback, which needs at least 32; set a random one (e.g. openssl rand -hex 32)',
  },
  {
    rule: "an example's placeholder admin token with the admin listener beyond loopback",
    file: 'admin-token-placeholder.yaml',
    env: { ADMIN_TOKEN: 'change-me-to-a-long-random-token' },
    problem:
      "admin.token_env: ADMIN_TOKEN holds a placeholder token from quotagate's examples, and the admin listener is bound to 0.0.0.0, beyond loopback; set a random one (e.g. openssl rand -hex 32)",
  },
  { rule: 'an admin token_env that is not a variable name', file: 'bad-admin-token-env.yaml', problem: 'admin.token_env: expected an environment variable name' },
  // Events and webhooks
  {
    rule: 'a webhook whose secret variable is unset',
    file: 'webhook-secret-unset.yaml',
    problem: "events.webhooks[0].secret_env: QG_WEBHOOK_SECRET is unset or empty; it must hold the endpoint's secret (whsec_<base64>)",
  },
  {
    rule: 'a webhook secret that is not a Standard Webhooks secret',
    file: 'webhook-secret-malformed.yaml',
    env: { QG_WEBHOOK_SECRET: 'hunter2-hunter2-hunter2-hunter2' },
    problem: 'events.webhooks[0].secret_env: QG_WEBHOOK_SECRET: expected a Standard Webhooks secret: "whsec_" followed by base64',
  },
  { rule: 'a webhook URL that is not http(s)', file: 'webhook-bad-url.yaml', problem: 'events.webhooks[0].url: expected an http:// or https:// URL' },
  { rule: 'an unknown event type', file: 'webhook-bad-type.yaml', problem: 'events.webhooks[0].types[0]: expected one of "quota.threshold", "quota.exhausted", "credits.low", "credits.exhausted", "subject.denial_spike"' },
  { rule: 'two webhooks of one name', file: 'webhook-duplicate-name.yaml', problem: 'events.webhooks[1].name: duplicate webhook name "billing"' },
  { rule: 'a backoff cap below its base', file: 'event-backoff-max-below-base.yaml', problem: 'events.delivery.backoff_max_ms: 1000 is below backoff_base_ms (5000)' },
  { rule: 'zero delivery attempts', file: 'event-max-attempts-zero.yaml', problem: 'events.delivery.max_attempts: must be at least 1' },
  // Routes
  { rule: 'an empty routes list', file: 'empty-routes.yaml', problem: 'routes: must have at least 1 entry' },
  { rule: 'a route name that breaks the name pattern', file: 'bad-route-name.yaml', problem: `routes[0].name: ${NAME_RULE}` },
  { rule: 'a path prefix without a leading slash', file: 'bad-path-prefix.yaml', problem: 'routes[0].path_prefix: expected a path starting with "/"' },
  { rule: 'a route naming an unknown upstream', file: 'unknown-upstream.yaml', problem: 'routes[0].upstream: unknown upstream "billing" (defined: demo)' },
  { rule: 'a duplicate route name', file: 'duplicate-route-name.yaml', problem: 'routes[1].name: duplicate route name "api"' },
  {
    rule: 'auth: none without the anonymous plan',
    file: 'anonymous-plan-missing.yaml',
    problem: 'auth.anonymous_plan: plan "anonymous" is not defined, and route "public" uses auth: none',
  },
  {
    rule: 'a path prefix the path rule rewrites',
    file: 'route-prefix-not-normalized.yaml',
    problem: 'routes[0].path_prefix: requests are matched in normalized form; write "/api"',
  },
  {
    rule: 'a path prefix the path rule refuses',
    file: 'route-prefix-refused.yaml',
    problem:
      'routes[0].path_prefix: never matches: the gateway refuses a request path that holds an encoded "/" or "\\" (%2F, %5C), which some servers decode before routing',
  },
  // Upstreams and proxy
  { rule: 'an upstream URL with a path', file: 'upstream-url-path.yaml', problem: 'upstreams.demo.url: expected an origin (scheme, host, port) with no path, query or fragment' },
  { rule: 'a non-http upstream URL', file: 'upstream-url-scheme.yaml', problem: 'upstreams.demo.url: expected an http:// or https:// URL' },
  // Regression: the origin refinement called `new URL` on this and threw a TypeError.
  { rule: 'an upstream URL that is not a URL', file: 'upstream-url-invalid.yaml', problem: 'upstreams.demo.url: expected an http:// or https:// URL' },
  { rule: 'a bad trusted_proxies entry', file: 'bad-trusted-proxy.yaml', problem: 'proxy.trusted_proxies[1]: expected an IP address or CIDR block' },
  // API keys
  { rule: 'a key on an unknown plan', file: 'key-unknown-plan.yaml', problem: 'auth.api_keys.keys[0].plan: unknown plan "gold"' },
  { rule: 'a duplicate key hash', file: 'duplicate-key-hash.yaml', problem: 'auth.api_keys.keys[1].hash: duplicate key hash' },
  { rule: 'a duplicate key id', file: 'duplicate-key-id.yaml', problem: 'auth.api_keys.keys[1].id: duplicate key id "acme-1"' },
  { rule: 'a malformed key hash', file: 'bad-key-hash.yaml', problem: 'auth.api_keys.keys[0].hash: expected a lowercase hex SHA-256 (64 characters)' },
  { rule: 'a malformed key id', file: 'bad-key-id.yaml', problem: 'auth.api_keys.keys[0].id: expected 1–64 letters, digits, ".", "-" or "_"' },
  { rule: 'an empty key subject', file: 'empty-key-subject.yaml', problem: 'auth.api_keys.keys[0].subject: must not be empty' },
  { rule: 'a bad key prefix', file: 'bad-key-prefix.yaml', problem: 'auth.api_keys.prefix: expected 2–16 lowercase letters or digits, starting with a letter' },
  { rule: 'a key cache TTL of zero', file: 'bad-key-cache-ttl.yaml', problem: 'auth.api_keys.cache.ttl_ms: must be at least 1' },
  // JWT
  { rule: 'a token route with no issuer', file: 'jwt-route-without-issuers.yaml', problem: 'routes[0].auth: route "api" uses auth: jwt, and auth.jwt.issuers is empty' },
  { rule: 'route scopes on auth: none', file: 'scopes-without-credential.yaml', problem: 'routes[0].scopes: scopes need a credential (auth: api_key, jwt or any), not auth: none' },
  {
    rule: 'a scope with a space',
    file: 'jwt-bad-scope.yaml',
    problem: 'routes[0].scopes[0]: expected a scope: 1–128 printable characters, no space, quote or backslash',
  },
  { rule: 'an issuer with no key source', file: 'jwt-no-key-source.yaml', problem: 'auth.jwt.issuers[0]: set exactly one of jwks_url, keys' },
  { rule: 'an issuer with both key sources', file: 'jwt-two-key-sources.yaml', problem: 'auth.jwt.issuers[0]: set exactly one of jwks_url, keys' },
  { rule: 'an issuer without an algorithm allowlist', file: 'jwt-missing-algorithms.yaml', problem: 'auth.jwt.issuers[0].algorithms: required' },
  { rule: 'an empty algorithm allowlist', file: 'jwt-empty-algorithms.yaml', problem: 'auth.jwt.issuers[0].algorithms: must have at least 1 entry' },
  {
    rule: 'alg none in the allowlist',
    file: 'jwt-alg-none.yaml',
    problem: 'auth.jwt.issuers[0].algorithms[0]: "none" is never accepted: tokens must be signed',
  },
  {
    rule: 'a symmetric algorithm in the allowlist',
    file: 'jwt-alg-hs256.yaml',
    problem: 'auth.jwt.issuers[0].algorithms[1]: "HS256" is symmetric (a shared secret), which is not supported; use RS, PS, ES or EdDSA',
  },
  { rule: 'an empty audience list', file: 'jwt-empty-audience.yaml', problem: 'auth.jwt.issuers[0].audience: must have at least 1 entry' },
  {
    rule: 'a JWKS URL over plain HTTP to another host',
    file: 'jwt-http-jwks-url.yaml',
    problem: 'auth.jwt.issuers[0].jwks_url: expected an https:// URL (http:// only for localhost)',
  },
  { rule: 'a duplicate issuer', file: 'jwt-duplicate-issuer.yaml', problem: 'auth.jwt.issuers[1].issuer: duplicate issuer "https://idp.example.com/"' },
  {
    rule: 'a default plan that is not defined',
    file: 'jwt-default-plan-missing.yaml',
    problem: 'auth.jwt.default_plan: plan "basic" is not defined (tokens without a configured plan get it)',
  },
  {
    rule: 'an unlimited default plan',
    file: 'jwt-default-plan-unlimited.yaml',
    problem: 'auth.jwt.default_plan: plan "internal" has no limits; the default plan must limit something',
  },
  { rule: 'a static key with both pem and jwk', file: 'jwt-key-pem-and-jwk.yaml', problem: 'auth.jwt.issuers[0].keys[0]: set exactly one of pem, jwk' },
  { rule: 'a private PEM key', file: 'jwt-key-private-pem.yaml', problem: 'auth.jwt.issuers[0].keys[0].pem: expected a public key, not a private key' },
  { rule: 'a PEM that is not a key', file: 'jwt-key-bad-pem.yaml', problem: 'auth.jwt.issuers[0].keys[0].pem: expected a PEM public key or certificate' },
  {
    rule: 'a private JWK',
    file: 'jwt-key-private-jwk.yaml',
    problem: 'auth.jwt.issuers[0].keys[0].jwk: expected a public JWK, not a private one (remove "d")',
  },
  {
    rule: 'a symmetric JWK',
    file: 'jwt-key-symmetric-jwk.yaml',
    problem: 'auth.jwt.issuers[0].keys[0].jwk: expected a public JWK with kty "RSA", "EC" or "OKP"',
  },
  { rule: 'a JWK that is not a valid key', file: 'jwt-key-invalid-jwk.yaml', problem: 'auth.jwt.issuers[0].keys[0].jwk: expected a valid EC public JWK' },
  {
    rule: 'a static key that fits none of the algorithms',
    file: 'jwt-key-wrong-type.yaml',
    problem: 'auth.jwt.issuers[0].keys[0]: an EC P-256 key fits none of the algorithms RS256, EdDSA',
  },
  { rule: 'a duplicate static kid', file: 'jwt-duplicate-kid.yaml', problem: 'auth.jwt.issuers[0].keys[1].kid: duplicate kid "k1"' },
  {
    rule: 'a JWKS max staleness not above its refresh age',
    file: 'jwt-max-stale-below-refresh.yaml',
    problem: 'auth.jwt.issuers[0].jwks_max_stale_ms: must be greater than jwks_refresh_ms (600000), or the keys would expire before they are refreshed',
  },
  { rule: 'a clock tolerance above 5 minutes', file: 'jwt-clock-tolerance.yaml', problem: 'auth.jwt.issuers[0].clock_tolerance_ms: must be at most 300000' },
  { rule: 'a token size limit below 256 bytes', file: 'jwt-max-token-bytes.yaml', problem: 'auth.jwt.max_token_bytes: must be at least 256' },
  { rule: 'a typ that is not a media type', file: 'jwt-bad-typ.yaml', problem: 'auth.jwt.issuers[0].typ: expected a media type such as "at+jwt"' },
  { rule: 'a zero maximum token age', file: 'jwt-bad-max-token-age.yaml', problem: 'auth.jwt.issuers[0].max_token_age_s: must be at least 1' },
  // YAML and interpolation
  { rule: 'a YAML syntax error, with line and column', file: 'yaml-syntax.yaml', problem: 'line 11, column 1: invalid YAML: Missing closing "quote' },
  { rule: 'a key repeated in one mapping', file: 'yaml-duplicate-key.yaml', problem: 'line 10, column 1: invalid YAML: Map keys must be unique' },
  { rule: 'an unset environment variable', file: 'unset-env.yaml', problem: 'upstreams.demo.url: environment variable "UPSTREAM_URL" is not set' },
  {
    rule: 'a malformed ${…} reference',
    file: 'bad-env-reference.yaml',
    problem: 'upstreams.demo.url: invalid reference "${1HOST}": expected ${NAME} or ${NAME:-default}',
  },
  {
    rule: 'credits covering a window the plan has no quota for',
    file: 'credits-unknown-window.yaml',
    problem: 'plans.paid.credits.covers[0]: "search.day" is not a quota window of this plan (defined: search.month)',
  },
  {
    rule: 'credits covering the window that allows overage',
    file: 'credits-with-overage.yaml',
    problem: 'plans.paid.credits.covers[0]: "search.month" allows overage; a window is either soft (overage) or covered by credits, not both',
  },
  { rule: 'an unterminated ${', file: 'unterminated-env.yaml', problem: 'upstreams.demo.url: unterminated "${" (write "$${" for a literal "${")' },
  { rule: 'a substituted value of the wrong type', file: 'env-not-a-number.yaml', problem: 'listeners.proxy.port: expected a number, got a string ("80a")' },
];

describe('config rejections: one fixture per rule, exact message', () => {
  it.each(cases)('rejects $rule ($file)', ({ file, problem, env }) => {
    expect(problemsOf(file, env)).toEqual([`${file}: ${problem}`]);
  });

  it('has a case for every rejection fixture', () => {
    const fixtures = readdirSorted().filter((file) => file !== 'valid-minimal.yaml');
    expect(cases.map((c) => c.file).sort()).toEqual(fixtures);
  });
});

function readdirSorted(): string[] {
  return readdirSync(FIXTURES).filter((file) => file.endsWith('.yaml')).sort();
}
