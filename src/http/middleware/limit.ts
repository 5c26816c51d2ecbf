import type { MiddlewareHandler } from 'hono';
import type { Clock } from '../../core/clock.js';
import type { Denial } from '../../core/decision.js';
import { GatewayError } from '../../core/errors.js';
import { applyLimitOverrides } from '../../core/limit-overrides.js';
import { type Plan, policiesFor } from '../../core/plan.js';
import { type HeaderPair, type ResetFormat, rateLimitHeaders } from '../../core/ratelimit-headers.js';
import type { GuardedLimiter } from '../../limiter/guarded-limiter.js';
import { type ProxyEnv, requestHeader } from '../context.js';

export interface LimitOptions {
  readonly limiter: GuardedLimiter;
  readonly plans: ReadonlyMap<string, Plan>;
  readonly resetFormat: ResetFormat;
  readonly clock: Clock;
}

/** Response header on requests forwarded unchecked because the store failed (`on_store_error: open`). */
export const UNENFORCED_HEADER: HeaderPair = ['X-Quotagate-Limit', 'unenforced'];

/** Longest accepted Idempotency-Key, in characters. */
const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/**
 * Charges the route's cost against every window of the caller's plan, with
 * the subject's database overrides applied (and
 * the route's metered quota, if it names one) in one limiter call, together
 * with the plan's meters (hour, day and month usage for the ledger).
 *
 * - admitted: sets `rateLimitHeaders` and `receipt`, and continues;
 * - denied (by the store or the local deny cache): 429 `rate_limited`, or the
 *   plan's `quota_status` with `quota_exceeded`, with `Retry-After` (the latest
 *   reset among the violated policies) and the rate-limit headers; nothing
 *   was charged;
 * - store failed: `on_store_error: open` forwards with `X-Quotagate-Limit:
 *   unenforced`; `closed` answers 503 `store_unavailable` with `Retry-After`.
 *
 * `Idempotency-Key` (or `X-Idempotency-Key`): an admitted request repeated
 * with the same key within 24 h is not charged again.
 */
export function limit(options: LimitOptions): MiddlewareHandler<ProxyEnv> {
  return async function limitMiddleware(c, next) {
    const route = c.get('route');
    const identity = c.get('identity');
    const configured = options.plans.get(identity.plan);
    if (configured === undefined) throw new Error(`identity carries plan "${identity.plan}", which is not configured`);
    const plan = identity.overrides === undefined ? configured : applyLimitOverrides(configured, identity.overrides);
    const idempotencyKey = requestHeader(c, 'idempotency-key') ?? requestHeader(c, 'x-idempotency-key');
    if (
      idempotencyKey !== undefined &&
      (idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH || !VISIBLE_ASCII.test(idempotencyKey))
    ) {
      throw new GatewayError(
        'idempotency_key_invalid',
        `The Idempotency-Key must be 1–${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters.`,
      );
    }
    const policies = policiesFor(plan, route.config.quota);
    const outcome = await options.limiter.decide(
      {
        subject: identity.subject,
        policies,
        meters: plan.meters,
        cost: route.config.cost,
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      },
      route.config.on_store_error,
    );
    switch (outcome.kind) {
      case 'fail-open':
        c.set('decision', 'fail-open');
        c.set('rateLimitHeaders', [UNENFORCED_HEADER]);
        return next();
      case 'fail-closed':
        c.set('decision', 'fail-closed');
        throw new GatewayError(
          'store_unavailable',
          'The limit store is unavailable and this route does not forward unchecked requests.',
          {},
          [['retry-after', String(outcome.retryAfterSeconds)]],
        );
      case 'local-deny':
        c.set('decision', 'local-deny');
        throw denial(outcome.decision, plan, headersOf(outcome.decision.policies, options, route.config.hide_headers));
      case 'decided': {
        const { decision } = outcome;
        const headers = headersOf(decision.policies, options, route.config.hide_headers);
        c.set('decision', decision.allowed ? 'allowed' : 'denied');
        if (!decision.allowed) throw denial(decision, plan, headers);
        c.set('rateLimitHeaders', headers);
        if (decision.receipt !== undefined) c.set('receipt', decision.receipt);
        return next();
      }
    }
  };
}

function headersOf(
  policies: Denial['policies'],
  options: LimitOptions,
  hidden: boolean,
): readonly HeaderPair[] {
  return hidden ? [] : rateLimitHeaders(policies, options.resetFormat, options.clock.now());
}

function denial(decision: Denial, plan: Plan, headers: readonly HeaderPair[]): GatewayError {
  // Report the violated policy the caller must wait longest for.
  const violated = decision.policies
    .filter((policy) => decision.violated.includes(policy.name))
    .reduce((longest, policy) => (policy.resetSeconds >= longest.resetSeconds ? policy : longest));
  const quota = decision.reason === 'quota';
  return new GatewayError(
    quota ? 'quota_exceeded' : 'rate_limited',
    `The ${decision.violated.join(' and ')} ${quota ? 'quota' : 'limit'} of plan "${plan.name}" is reached; retry after ${decision.retryAfterSeconds} s.`,
    {
      'violated-policies': decision.violated,
      limit: violated.limit,
      remaining: violated.remaining,
      reset: decision.retryAfterSeconds,
      plan: plan.name,
      ...(plan.upgradeUrl === undefined ? {} : { upgrade_url: plan.upgradeUrl }),
    },
    [...headers, ['retry-after', String(decision.retryAfterSeconds)]],
    quota ? plan.quotaStatus : undefined,
  );
}
