import { authenticateCaller, type CallerAuthentication, type CredentialMode } from '../../auth/caller-authentication.js';
import { isOwnPath } from './own-path.js';
import type { Clock } from '../../core/clock.js';
import { countingIdOf } from '../../core/counting-id.js';
import { creditBalancesOf } from '../../core/credits.js';
import { allPolicies, type Plan } from '../../core/plan.js';
import { applyLimitOverrides } from '../../core/limit-overrides.js';
import { callUsageStore, type UsageStore } from '../../core/usage-store.js';
import type { Exchange } from '../exchange.js';
import { credentialsOf, type IdentifyOptions } from '../middleware/identify.js';
import { writeJson } from '../node-response.js';
import { policyUsageView } from './admin-api/views.js';

/** The path the gateway answers itself on the proxy listener, before the route table. */
const SELF_USAGE_PATH = '/_quotagate/usage';

export interface SelfUsageOptions extends CallerAuthentication {
  /** Resolves the client address for the unknown-key throttle, as identify() does. */
  readonly clientAddress: IdentifyOptions['clientAddress'];
  readonly plans: ReadonlyMap<string, Plan>;
  readonly usage: UsageStore | undefined;
  readonly clock: Clock;
}

/** Whether the request is `GET` (or `HEAD`) of {@link SELF_USAGE_PATH}, with or without a query. */
export function isSelfUsageRequest(method: string | undefined, rawUrl: string | undefined): boolean {
  return (method === 'GET' || method === 'HEAD') && isOwnPath(rawUrl, SELF_USAGE_PATH);
}

/**
 * `GET /_quotagate/usage`: the caller's own plan and every window and quota
 * of it with used / limit / remaining / reset / percent, read from the store
 * without charging. Authenticated like a route with `auth: any` (or
 * `api_key` when no token issuer is configured). Refusals are thrown as
 * GatewayErrors, answered by the pipeline.
 */
export function selfUsage(options: SelfUsageOptions): (exchange: Exchange) => Promise<void> {
  const mode: CredentialMode = options.authenticators.any !== undefined ? 'any' : 'api_key';
  return async function selfUsageStep(exchange) {
    const { identity } = await authenticateCaller(credentialsOf(exchange, options.clientAddress), mode, options, SELF_USAGE_PATH);
    exchange.identity = identity;
    const configured = options.plans.get(identity.plan);
    if (configured === undefined) throw new Error(`identity carries plan "${identity.plan}", which is not configured`);
    const plan = identity.overrides === undefined ? configured : applyLimitOverrides(configured, identity.overrides);
    const policies = allPolicies(plan);
    // Under `limit_by: key`, a key's caller sees that key's counters.
    const countingId = countingIdOf(plan, identity);
    const [states, credits] = await callUsageStore(options.usage, (usage) =>
      Promise.all([usage.peek(countingId, policies), creditBalancesOf(usage, identity.subject, policies)]),
    );
    const now = options.clock.now();
    const body = {
      plan: plan.name,
      ...(countingId === identity.subject ? {} : { key_id: identity.keyId }),
      policies: states.map((state) => policyUsageView(state, now)),
      ...(credits.length === 0 ? {} : { credits }),
    };
    writeJson(exchange.res, 200, body, [
      ['cache-control', 'no-store'],
      ['x-request-id', exchange.requestId],
    ]);
  };
}
