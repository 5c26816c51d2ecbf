import { z } from 'zod';
import { isOwnPath } from './own-path.js';
import { authenticateCaller, type CallerAuthentication, type CredentialMode } from '../../auth/caller-authentication.js';
import { countingIdOf } from '../../core/counting-id.js';
import type { Clock } from '../../core/clock.js';
import type { PolicyState } from '../../core/decision.js';
import { denialOf } from '../../core/denial.js';
import { GatewayError } from '../../core/errors.js';
import { applyLimitOverrides } from '../../core/limit-overrides.js';
import { type Plan, policiesFor } from '../../core/plan.js';
import type { Policy } from '../../core/policy.js';
import { isPathRefusal, normalizeRequestPath } from '../../core/request-path.js';
import { callUsageStore, type UsageStore } from '../../core/usage-store.js';
import { type BodyPaceLimits } from '../../proxy/body-pace.js';
import { readWholeBody } from '../../proxy/body-limit.js';
import type { Exchange } from '../exchange.js';
import { credentialsOf, type IdentifyOptions } from '../middleware/identify.js';
import { writeJson } from '../node-response.js';
import type { CompiledRoute, RouteTable } from '../route-table.js';
import { policyUsageView } from './admin-api/views.js';

/** The path of the pre-check on the proxy listener, answered before the route table. */
const PRE_CHECK_PATH = '/_quotagate/check';

/** A check's body is a method and path, or a route name: a few hundred bytes. */
const MAX_CHECK_BODY_BYTES = 8_192;

/** Whether the request is `POST` of {@link PRE_CHECK_PATH}. */
export function isPreCheckRequest(method: string | undefined, rawUrl: string | undefined): boolean {
  return method === 'POST' && isOwnPath(rawUrl, PRE_CHECK_PATH);
}

const checkBody = z.union([
  z.strictObject({ method: z.string().regex(/^[A-Z]{1,16}$/, { error: 'expected an HTTP method in capitals' }), path: z.string().min(1).max(4_096).startsWith('/') }),
  z.strictObject({ route: z.string().min(1).max(64) }),
]);

export interface PreCheckOptions extends CallerAuthentication {
  readonly clientAddress: IdentifyOptions['clientAddress'];
  readonly plans: ReadonlyMap<string, Plan>;
  readonly routes: RouteTable;
  readonly usage: UsageStore | undefined;
  readonly clock: Clock;
  /** How fast the body must arrive (`proxy.body_*`). */
  readonly requestBodyPace: BodyPaceLimits;
}

/** The route a check names: by name, or the one a request with that method and path would match. */
function routeOf(body: z.output<typeof checkBody>, options: PreCheckOptions): CompiledRoute {
  if ('route' in body) {
    const named = options.routes.named(body.route);
    if (named === undefined) throw new GatewayError('route_not_found', `No route is named "${body.route}".`);
    return named;
  }
  const queryStart = body.path.indexOf('?');
  const path = normalizeRequestPath(queryStart === -1 ? body.path : body.path.slice(0, queryStart));
  if (isPathRefusal(path)) throw new GatewayError('bad_request', `The path ${path.refused}.`);
  const route = options.routes.match(body.method, path);
  if (route === 'ambiguous-case') throw new GatewayError('bad_request', 'The path matches another route when case is ignored.');
  if (route === undefined) throw new GatewayError('route_not_found', `No route matches ${body.method} ${path}.`);
  return route;
}

/** Whether `state` (of `policy`) has room for `cost` more units now: its remaining units, plus what overage allows. */
function hasRoom(policy: Policy, state: PolicyState, cost: number): boolean {
  const overageLeft = policy.overage === undefined ? 0 : policy.overage.max - (state.overage ?? 0);
  return state.remaining + overageLeft >= cost;
}

/**
 * `POST /_quotagate/check` with `{ "method": "POST", "path": "/v1/repos" }`
 * or `{ "route": "create-repo" }`: whether the caller would be admitted on
 * that route now, at what cost, and, if not, which policies would deny, with
 * the problem code and status a real request would get. Charges nothing and
 * forwards nothing: the answer is the store's state when read (a real
 * request may still be denied if others spend the room first). Authenticated
 * like `GET /_quotagate/usage`; the route's own `auth` and scopes are not
 * applied (the check is about the caller's plan).
 */
export function preCheck(options: PreCheckOptions): (exchange: Exchange) => Promise<void> {
  const mode: CredentialMode = options.authenticators.any !== undefined ? 'any' : 'api_key';
  return async function preCheckStep(exchange) {
    const { identity } = await authenticateCaller(credentialsOf(exchange, options.clientAddress), mode, options, PRE_CHECK_PATH);
    exchange.identity = identity;
    const raw = await readWholeBody(exchange.req, MAX_CHECK_BODY_BYTES, options.requestBodyPace);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new GatewayError('bad_request', 'The check body must be JSON: {"method", "path"} or {"route"}.');
    }
    const body = checkBody.safeParse(parsed);
    if (!body.success) throw new GatewayError('bad_request', 'The check body must be {"method": "GET", "path": "/…"} or {"route": "<name>"}.');
    const route = routeOf(body.data, options);
    const configured = options.plans.get(identity.plan);
    if (configured === undefined) throw new Error(`identity carries plan "${identity.plan}", which is not configured`);
    const plan = identity.overrides === undefined ? configured : applyLimitOverrides(configured, identity.overrides);
    const policies = policiesFor(plan, route.chargedMetric);
    const countingId = countingIdOf(plan, identity);
    const states = await callUsageStore(options.usage, (usage) => usage.peek(countingId, policies));
    // A cost settled from the response is checked at its reserve, as admission does.
    const { cost } = route;
    const violated = policies.map((policy, i) => !hasRoom(policy, states[i]!, cost));
    const now = options.clock.now();
    const views = states.map((state) => policyUsageView(state, now));
    const headers: Array<readonly [string, string]> = [
      ['cache-control', 'no-store'],
      ['x-request-id', exchange.requestId],
    ];
    if (!violated.includes(true)) {
      writeJson(exchange.res, 200, { allowed: true, route: route.config.name, plan: plan.name, cost, policies: views }, headers);
      return;
    }
    const denial = denialOf(states, violated);
    const quota = denial.reason === 'quota';
    writeJson(
      exchange.res,
      200,
      {
        allowed: false,
        route: route.config.name,
        plan: plan.name,
        cost,
        code: quota ? 'quota_exceeded' : 'rate_limited',
        status: quota ? plan.quotaStatus : 429,
        'violated-policies': denial.violated,
        retry_after: denial.retryAfterSeconds === 0 ? null : denial.retryAfterSeconds,
        ...(plan.upgradeUrl === undefined ? {} : { upgrade_url: plan.upgradeUrl }),
        policies: views,
      },
      headers,
    );
  };
}
