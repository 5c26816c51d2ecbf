import type { MiddlewareHandler } from 'hono';
import type { Clock } from '../../core/clock.js';
import type { Decision } from '../../core/decision.js';
import { GatewayError } from '../../core/errors.js';
import type { Plan } from '../../core/plan.js';
import { type HeaderPair, type ResetFormat, rateLimitHeaders } from '../../core/ratelimit-headers.js';
import type { Limiter } from '../../limiter/limiter.js';
import type { ProxyEnv } from '../context.js';

export interface LimitOptions {
  readonly limiter: Limiter;
  readonly plans: ReadonlyMap<string, Plan>;
  readonly resetFormat: ResetFormat;
  readonly clock: Clock;
}

/**
 * Charges the route's cost against every window of the caller's plan in one
 * limiter call. Admitted: sets `rateLimitHeaders` and continues. Denied:
 * answers 429 `rate_limited` with `Retry-After` (the latest reset among the
 * violated windows) and the same headers; nothing was charged.
 */
export function limit(options: LimitOptions): MiddlewareHandler<ProxyEnv> {
  return async function limitMiddleware(c, next) {
    const { route, identity } = c.var;
    const plan = options.plans.get(identity.plan);
    if (plan === undefined) throw new Error(`identity carries plan "${identity.plan}", which is not configured`);
    const decision = await options.limiter.consume({
      subject: identity.subject,
      windows: plan.windows,
      cost: route.config.cost,
    });
    const headers = route.config.hide_headers
      ? []
      : rateLimitHeaders(decision.windows, options.resetFormat, options.clock.now());
    if (!decision.allowed) throw denial(decision, plan, headers);
    c.set('rateLimitHeaders', headers);
    return next();
  };
}

function denial(decision: Extract<Decision, { allowed: false }>, plan: Plan, headers: readonly HeaderPair[]) {
  // Report the violated window the caller must wait longest for.
  const violated = decision.windows
    .filter((window) => decision.violated.includes(window.name))
    .reduce((longest, window) => (window.resetSeconds >= longest.resetSeconds ? window : longest));
  return new GatewayError(
    'rate_limited',
    `The ${decision.violated.join(' and ')} limit of plan "${plan.name}" is reached; retry after ${decision.retryAfterSeconds} s.`,
    {
      'violated-policies': decision.violated,
      limit: violated.limit,
      remaining: violated.remaining,
      reset: decision.retryAfterSeconds,
      plan: plan.name,
      ...(plan.upgradeUrl === undefined ? {} : { upgrade_url: plan.upgradeUrl }),
    },
    [...headers, ['retry-after', String(decision.retryAfterSeconds)]],
  );
}
