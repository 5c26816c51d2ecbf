import type { Clock } from '../../core/clock.js';
import { CountingIds } from '../../core/counting-id.js';
import type { DenialTally } from '../../core/denial-tally.js';
import type { BlockedSubjects } from '../../core/subject-blocks.js';
import type { Denial } from '../../core/decision.js';
import { GatewayError } from '../../core/errors.js';
import { applyLimitOverrides, type LimitOverrides } from '../../core/limit-overrides.js';
import { type Plan, policiesFor } from '../../core/plan.js';
import { type HeaderPair, type HeaderSets, PolicyHeaderValues, type ResetFormat, rateLimitHeaders } from '../../core/ratelimit-headers.js';
import type { IdempotencyTicket } from '../../core/idempotency.js';
import type { Policy } from '../../core/policy.js';
import type { GuardedLimiter, LimitOutcome } from '../../limiter/guarded-limiter.js';
import type { BodyPaceLimits } from '../../proxy/body-pace.js';
import { ResponseCapture } from '../../proxy/response-capture.js';
import type { Exchange } from '../exchange.js';
import { idempotencyKeyOf, keyInUse, keyReused, readIdempotentRequest, replayStoredResponse } from '../idempotent-request.js';

export interface LimitOptions {
  readonly limiter: GuardedLimiter;
  readonly plans: ReadonlyMap<string, Plan>;
  readonly resetFormat: ResetFormat;
  /** Which rate-limit header families responses carry. */
  readonly headerSets: HeaderSets;
  readonly clock: Clock;
  /** `proxy.max_body_bytes`: a route's `max_body_bytes` overrides it. */
  readonly maxBodyBytes: number;
  /** How fast the body of a request with an Idempotency-Key must arrive while it is read (`proxy.body_*`). */
  readonly requestBodyPace: BodyPaceLimits;
  /** `idempotency.max_body_bytes` and `idempotency.max_response_bytes`. */
  readonly idempotency: { readonly maxBodyBytes: number; readonly maxResponseBytes: number };
  /** Counts each denial per subject and minute (the denials view, denial spikes); absent: not counted. */
  readonly denials?: DenialTally | undefined;
  /** Subjects blocked by an abuse rule: refused with 403 `subject_blocked` before any store call. */
  readonly blocked?: BlockedSubjects | undefined;
}

/** Response header on requests forwarded unchecked because the store failed (`on_store_error: open`). */
const UNENFORCED_HEADER: HeaderPair = ['X-Quotagate-Limit', 'unenforced'];
const UNENFORCED_HEADERS: readonly HeaderPair[] = Object.freeze([UNENFORCED_HEADER]);

/**
 * Charges the route's cost against every window of the caller's plan, with
 * the subject's database overrides applied (and
 * the route's metered quota, if it names one) in one limiter call, together
 * with the plan's meters (hour, day and month usage for the ledger).
 *
 * - admitted: sets `rateLimitHeaders` and `receipt`; the pipeline forwards;
 * - denied (by the store or the local deny cache): 429 `rate_limited`, or the
 *   plan's `quota_status` with `quota_exceeded`, with `Retry-After` (the latest
 *   reset among the violated policies) and the rate-limit headers; nothing
 *   was charged;
 * - store failed: `on_store_error: open` forwards with `X-Quotagate-Limit:
 *   unenforced`; `closed` answers 503 `store_unavailable` with `Retry-After`.
 *
 * `Idempotency-Key` (or `X-Idempotency-Key`) on a method of the route's
 * `idempotency_methods`: the body is read and the request fingerprinted
 * before the one store call, which also looks up the key's record. A repeat
 * of a completed request is answered with its stored response (never
 * forwarded, never charged); one of a request in flight gets 409
 * `idempotency_key_in_use`; the key on another request gets 422
 * `idempotency_key_reused`. Once an admitted request's response is known,
 * it is kept for replay, or (a 5xx, an upstream failure, a body over
 * `idempotency.max_response_bytes`) the key is released. A replay is
 * answered here (`exchange.answered`): the pipeline forwards nothing.
 */
export function limit(options: LimitOptions): (exchange: Exchange) => Promise<void> | void {
  const plansWithOverrides = new PlansWithOverrides();
  const countingIds = new CountingIds();
  const { blocked } = options;
  // Returns a promise only when the decision needs I/O (Redis, a hydration, an Idempotency-Key's body).
  return function limitStep(exchange) {
    const route = exchange.route!;
    const identity = exchange.identity!;
    // A Map lookup only while some subject is blocked.
    if (blocked !== undefined && blocked.size !== 0) refuseIfBlocked(blocked, identity.subject, options.clock.now());
    const configured = options.plans.get(identity.plan);
    if (configured === undefined) throw new Error(`identity carries plan "${identity.plan}", which is not configured`);
    const plan = identity.overrides === undefined ? configured : plansWithOverrides.get(configured, identity.overrides);
    const policies = policiesFor(plan, route.chargedMetric);
    const countingId = countingIds.of(plan, identity);
    if ((route.config.idempotency_methods as readonly string[]).includes(exchange.req.method ?? 'GET')) {
      const idempotencyKey = idempotencyKeyOf(exchange);
      if (idempotencyKey !== undefined) return limitIdempotent(exchange, options, plan, policies, idempotencyKey, countingId);
    }
    const outcome = options.limiter.decide(
      { subject: countingId, policies, meters: plan.meters, cost: route.cost, plan: plan.name },
      route.config.on_store_error,
    );
    if (outcome instanceof Promise) return outcome.then((decided) => answer(exchange, decided, plan, policies, options));
    answer(exchange, outcome, plan, policies, options);
  };
}

/**
 * A plan with a subject's overrides applied, built once per overrides object
 * and plan, not per request. The key caches keep one Identity (and so one
 * overrides object) per cached key record or token, so a hot subject hits
 * here; a changed subject gets a new record, a new object, and a new entry,
 * and the old one is collected with its record (WeakMap). The policy lists
 * keep their identity too, which the header and Redis caches key on.
 */
class PlansWithOverrides {
  readonly #byOverrides = new WeakMap<LimitOverrides, Map<Plan, Plan>>();

  get(plan: Plan, overrides: LimitOverrides): Plan {
    let plans = this.#byOverrides.get(overrides);
    if (plans === undefined) this.#byOverrides.set(overrides, (plans = new Map()));
    let applied = plans.get(plan);
    if (applied === undefined) plans.set(plan, (applied = applyLimitOverrides(plan, overrides)));
    return applied;
  }
}

/** Throws 403 `subject_blocked` with Retry-After (seconds to the block's end) when `subject` is blocked now. */
function refuseIfBlocked(blocked: BlockedSubjects, subject: string, nowMs: number): void {
  const untilMs = blocked.blockedUntil(subject, nowMs);
  if (untilMs === undefined) return;
  const seconds = Math.max(1, Math.ceil((untilMs - nowMs) / 1000));
  throw new GatewayError(
    'subject_blocked',
    `Too many denied requests: this caller is blocked for ${seconds} s.`,
    { blocked_until: new Date(untilMs).toISOString() },
    [['retry-after', String(seconds)]],
  );
}

/** Records an admitted (or unchecked) request on the exchange, or throws the refusal. */
function answer(exchange: Exchange, outcome: LimitOutcome, plan: Plan, charged: readonly Policy[], options: LimitOptions): void {
  const route = exchange.route!;
  switch (outcome.kind) {
    case 'fail-open':
      exchange.decision = 'fail-open';
      exchange.rateLimitHeaders = UNENFORCED_HEADERS;
      return;
    case 'fail-closed':
      exchange.decision = 'fail-closed';
      throw new GatewayError(
        'store_unavailable',
        'The limit store is unavailable and this route does not forward unchecked requests.',
        {},
        [['retry-after', String(outcome.retryAfterSeconds)]],
      );
    case 'local-deny': {
      const headers = headersOf(charged, outcome.decision, options, route.config.hide_headers);
      if (plan.shadow || route.shadow) return forwardShadowDenial(exchange, headers);
      exchange.decision = 'local-deny';
      options.denials?.record(exchange.identity!.subject, plan.name, plan.abuse, options.clock.now());
      throw denial(outcome.decision, plan, headers);
    }
    case 'decided': {
      const { decision } = outcome;
      const headers = headersOf(charged, decision, options, route.config.hide_headers);
      if (!decision.allowed && (plan.shadow || route.shadow)) return forwardShadowDenial(exchange, headers);
      exchange.decision = decision.allowed ? 'allowed' : 'denied';
      if (!decision.allowed) {
        options.denials?.record(exchange.identity!.subject, plan.name, plan.abuse, options.clock.now());
        throw denial(decision, plan, headers);
      }
      exchange.rateLimitHeaders = plan.allowsOverage ? withOverage(headers, decision.policies) : headers;
      exchange.receipt = decision.receipt;
      return;
    }
  }
}

/** The limit step of a request with an Idempotency-Key (see `limit`). */
async function limitIdempotent(
  exchange: Exchange,
  options: LimitOptions,
  plan: Plan,
  policies: readonly Policy[],
  key: string,
  countingId: string,
): Promise<void> {
  const route = exchange.route!;
  const maxBodyBytes = Math.min(route.config.max_body_bytes ?? options.maxBodyBytes, options.idempotency.maxBodyBytes);
  const { claim, body } = await readIdempotentRequest(exchange, key, maxBodyBytes, options.requestBodyPace);
  const outcome = await options.limiter.decideIdempotent(
    { subject: countingId, policies, meters: plan.meters, cost: route.cost, plan: plan.name },
    claim,
    route.config.on_store_error,
  );
  if (outcome.kind !== 'idempotent') {
    exchange.idempotentForward = { body, capture: undefined };
    answer(exchange, outcome, plan, policies, options);
    return;
  }
  const { decision } = outcome;
  switch (decision.kind) {
    case 'denied':
      answer(exchange, { kind: 'decided', decision: decision.denial }, plan, policies, options);
      return;
    case 'replay':
      exchange.decision = 'replayed';
      replayStoredResponse(exchange, decision.response);
      exchange.answered = true;
      return;
    case 'in-flight':
      exchange.decision = 'denied';
      throw keyInUse();
    case 'reused':
      exchange.decision = 'denied';
      throw keyReused();
    case 'admitted': {
      // Settled once: when a 5xx head arrives (before the client can retry), or once the request is answered.
      let settled = false;
      const settleOnce = (): void => {
        if (settled) return;
        settled = true;
        settle(exchange, options.limiter, decision.ticket, capture);
      };
      const capture = new ResponseCapture(options.idempotency.maxResponseBytes, settleOnce);
      exchange.idempotentForward = { body, capture };
      // Once answered (forwarded, or refused after this), the response is kept or the key released.
      exchange.onAnswered = settleOnce;
      answer(exchange, { kind: 'decided', decision: decision.admission }, plan, policies, options);
      return;
    }
  }
}

/**
 * Keeps the admitted request's response for replay, or releases its key when
 * there is none to keep: the gateway answered an error (502, 504, …), the
 * upstream answered 5xx or broke off, or the body outgrew the cap. Runs
 * after the client's response has finished and is not awaited: it is off the
 * client's path, and the limiter never rejects it.
 */
function settle(exchange: Exchange, limiter: GuardedLimiter, ticket: IdempotencyTicket, capture: ResponseCapture): void {
  const kept = exchange.error === undefined && capture.status < 500 ? capture.response() : undefined;
  void limiter.settleIdempotent(ticket, kept);
}

/** One PolicyHeaderValues per list of policies charged (a plan's, for one route), collected with the list. */
const policyHeaderValues = new WeakMap<readonly Policy[], PolicyHeaderValues>();

function headersOf(
  charged: readonly Policy[],
  decision: Pick<Denial, 'policies' | 'credits'>,
  options: LimitOptions,
  hidden: boolean,
): readonly HeaderPair[] {
  if (hidden) return [];
  let values = policyHeaderValues.get(charged);
  if (values === undefined) policyHeaderValues.set(charged, (values = new PolicyHeaderValues()));
  return rateLimitHeaders(decision.policies, options.resetFormat, options.clock.now(), options.headerSets, values, decision.credits);
}

/** Marks a response the plan's or route's `mode: shadow` forwarded although the limit would have denied it. */
const SHADOW_HEADER: HeaderPair = ['X-Quotagate-Shadow', 'would-deny'];

/** `mode: shadow`: a would-be denial goes on to the upstream, uncharged, with its rate-limit headers and the shadow mark. */
function forwardShadowDenial(exchange: Exchange, headers: readonly HeaderPair[]): void {
  exchange.decision = 'shadow-denied';
  exchange.rateLimitHeaders = [...headers, SHADOW_HEADER];
}

/** Response header of a request admitted past a quota's limit (`overage`): the overage units of the period so far. */
const OVERAGE_HEADER = 'X-Quotagate-Overage';

/** `headers` plus X-Quotagate-Overage when a policy went past its limit; `headers` itself otherwise. */
function withOverage(headers: readonly HeaderPair[], policies: Denial['policies']): readonly HeaderPair[] {
  let overage = 0;
  for (const policy of policies) if (policy.overage !== undefined && policy.overage > overage) overage = policy.overage;
  return overage === 0 ? headers : [...headers, [OVERAGE_HEADER, String(overage)]];
}

function denial(decision: Denial, plan: Plan, headers: readonly HeaderPair[]): GatewayError {
  // A violated lifetime quota never resets (retryAfterSeconds 0): no Retry-After and no reset; releasing frees it.
  const resets = decision.retryAfterSeconds > 0;
  // Report the violated policy the caller must wait longest for (a lifetime one when it is among them).
  const violated = decision.policies
    .filter((policy) => decision.violated.includes(policy.name))
    .reduce((longest, policy) => (policy.resetSeconds === 0 || (longest.resetSeconds !== 0 && policy.resetSeconds >= longest.resetSeconds) ? policy : longest));
  const quota = decision.reason === 'quota';
  const when = resets ? `retry after ${decision.retryAfterSeconds} s` : 'it does not reset: release some first';
  return new GatewayError(
    quota ? 'quota_exceeded' : 'rate_limited',
    `The ${decision.violated.join(' and ')} ${quota ? 'quota' : 'limit'} of plan "${plan.name}" is reached; ${when}.`,
    {
      'violated-policies': decision.violated,
      limit: violated.limit,
      remaining: violated.remaining,
      ...(resets ? { reset: decision.retryAfterSeconds } : {}),
      plan: plan.name,
      ...(plan.upgradeUrl === undefined ? {} : { upgrade_url: plan.upgradeUrl }),
    },
    resets ? [...headers, ['retry-after', String(decision.retryAfterSeconds)]] : headers,
    quota ? plan.quotaStatus : undefined,
  );
}
