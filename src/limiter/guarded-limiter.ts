import type { Clock } from '../core/clock.js';
import type { CreditGrantState } from '../core/credits.js';
import type { ChargeReceipt, Decision, Denial, PolicyState } from '../core/decision.js';
import type { IdempotencyClaim, IdempotencyTicket, IdempotentDecision, StoredResponse } from '../core/idempotency.js';
import type { Policy } from '../core/policy.js';
import type { CounterCell, HistogramCell } from '../metrics/hot-metrics.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import type { CircuitBreaker, CircuitState } from './circuit-breaker.js';
import type { ConsumeRequest, Limiter, PeekRequest } from './limiter.js';
import type { LocalDenyCache } from './local-deny-cache.js';
import { NotAStoreFault } from './store-call-gate.js';

/** What a route does when the store cannot decide: forward unchecked, or refuse with 503. */
export type StoreFailurePolicy = 'open' | 'closed';

/**
 * How a request's limit was settled, and why:
 * - `decided`: the store answered (admitted or denied);
 * - `local-deny`: denied from the local deny cache, with no store call;
 * - `fail-open`: the store failed and the route forwards unchecked;
 * - `fail-closed`: the store failed and the route refuses (503).
 */
export type LimitOutcome =
  | { readonly kind: 'decided'; readonly decision: Decision }
  | { readonly kind: 'local-deny'; readonly decision: Denial }
  | { readonly kind: 'fail-open' }
  | { readonly kind: 'fail-closed'; readonly retryAfterSeconds: number };

/** How a request with an Idempotency-Key was settled: as LimitOutcome, with the store's `idempotent` answer for `decided`. */
export type IdempotentLimitOutcome =
  | { readonly kind: 'idempotent'; readonly decision: IdempotentDecision }
  | Exclude<LimitOutcome, { readonly kind: 'decided' }>;

export interface GuardedLimiterOptions {
  readonly limiter: Limiter;
  /** `memory` or `redis`: the `store` label of the store metrics. */
  readonly storeName: string;
  readonly breaker: CircuitBreaker;
  readonly denyCache: LocalDenyCache;
  readonly metrics: GatewayMetrics;
  readonly clock: Clock;
  /** Sorts a store error into a metric kind (`timeout`, `connection`, …); `error` when unknown. */
  readonly classifyError?: (error: unknown) => string;
  /** Seconds a refused caller is told to wait while the store is down. */
  readonly storeRetryAfterSeconds: number;
}

/**
 * A Limiter with the operational guards around it: the local deny cache in
 * front (no store call for a subject known to be exhausted), a circuit
 * breaker (no calls to a store that keeps failing; one probe after
 * `open_ms`), and the route's failure policy when the store cannot answer.
 * It never throws for a store fault: the request gets a LimitOutcome.
 */
export class GuardedLimiter {
  /**
   * The metric cells every admitted request updates, resolved on first use
   * and kept (hot path); not before, so no series shows until it counts.
   */
  #admittedDecisions: CounterCell | undefined;
  #storeDuration: HistogramCell | undefined;
  // Cells of the per-request local deny cache lookups (a deny flood is answered here), resolved on first use.
  #denyCacheMisses: CounterCell | undefined;
  #denyCacheHits: CounterCell | undefined;
  #localDenials: CounterCell | undefined;
  /** Adjustments sent and not yet answered; close() waits for them. */
  readonly #adjusting = new Set<Promise<boolean>>();

  constructor(private readonly options: GuardedLimiterOptions) {}

  /** The breaker's view of the store, for /readyz. */
  get storeState(): CircuitState {
    return this.options.breaker.state;
  }

  /** The outcome itself when the store answered without I/O (the memory store), else a promise of it. */
  decide(request: ConsumeRequest, onStoreError: StoreFailurePolicy): LimitOutcome | Promise<LimitOutcome> {
    const settled = this.settledWithoutStore(request, onStoreError);
    if (settled !== undefined) return settled;
    const startMs = performance.now();
    let consumed: Decision | Promise<Decision>;
    try {
      consumed = this.options.limiter.consume(request);
    } catch (error) {
      this.recordFailure(error);
      return this.failure(onStoreError);
    }
    if (!(consumed instanceof Promise)) return this.decided(request, consumed, startMs);
    return consumed.then(
      (decision) => this.decided(request, decision, startMs),
      (error: unknown) => {
        this.recordFailure(error);
        return this.failure(onStoreError);
      },
    );
  }

  private decided(request: ConsumeRequest, decision: Decision, startMs: number): LimitOutcome {
    const { denyCache, metrics } = this.options;
    this.recordSuccess(startMs);
    if (decision.allowed) {
      (this.#admittedDecisions ??= metrics.decisions.labels('allowed', 'allowed')).inc();
    } else {
      metrics.decisions.inc({ outcome: 'denied', reason: decision.reason });
      denyCache.remember(request.subject, request.policies, decision);
    }
    return { kind: 'decided', decision };
  }

  /**
   * decide() for a request carrying an Idempotency-Key. The local deny cache
   * applies first, as to any request: a subject known to be exhausted is
   * denied without a store call, whatever its key (a replay of a completed
   * response is answered again once the window resets; see
   * docs/http-interface.md, "Idempotency").
   */
  async decideIdempotent(
    request: ConsumeRequest,
    claim: IdempotencyClaim,
    onStoreError: StoreFailurePolicy,
  ): Promise<IdempotentLimitOutcome> {
    const { denyCache, metrics } = this.options;
    const settled = this.settledWithoutStore(request, onStoreError);
    if (settled !== undefined) return settled;
    const startMs = performance.now();
    let decision: IdempotentDecision;
    try {
      decision = await this.options.limiter.consumeIdempotent(request, claim);
    } catch (error) {
      this.recordFailure(error);
      return this.failure(onStoreError);
    }
    this.recordSuccess(startMs);
    switch (decision.kind) {
      case 'admitted':
        metrics.decisions.inc({ outcome: 'allowed', reason: 'allowed' });
        break;
      case 'denied':
        metrics.decisions.inc({ outcome: 'denied', reason: decision.denial.reason });
        denyCache.remember(request.subject, request.policies, decision.denial);
        break;
      case 'replay':
        metrics.decisions.inc({ outcome: 'idempotency', reason: 'idempotency-replayed' });
        break;
      case 'in-flight':
        metrics.decisions.inc({ outcome: 'idempotency', reason: 'idempotency-in-flight' });
        break;
      case 'reused':
        metrics.decisions.inc({ outcome: 'idempotency', reason: 'idempotency-reused' });
        break;
    }
    return { kind: 'idempotent', decision };
  }

  /**
   * Settles an admitted Idempotency-Key: keeps `response` for replay, or
   * (`undefined`) releases the key. A store failure is counted, never thrown:
   * the client has its answer; the key then stays in flight until
   * `idempotency.in_flight_ttl_ms`.
   */
  async settleIdempotent(ticket: IdempotencyTicket, response: StoredResponse | undefined): Promise<void> {
    if (!this.options.breaker.allowCall()) return;
    const startMs = performance.now();
    try {
      if (response === undefined) await this.options.limiter.releaseIdempotent(ticket);
      else await this.options.limiter.completeIdempotent(ticket, response);
    } catch (error) {
      this.recordFailure(error);
      return;
    }
    this.recordSuccess(startMs);
  }

  /**
   * Gives a charge back; resolves to whether it was. A store failure is
   * counted, never thrown (the response is already decided).
   */
  async refund(receipt: ChargeReceipt): Promise<boolean> {
    const { breaker, metrics } = this.options;
    if (!breaker.allowCall()) {
      metrics.refunds.inc({ result: 'failed' });
      return false;
    }
    const startMs = performance.now();
    try {
      await this.options.limiter.refund(receipt);
    } catch (error) {
      this.recordFailure(error);
      metrics.refunds.inc({ result: 'failed' });
      return false;
    }
    this.recordSuccess(startMs);
    metrics.refunds.inc({ result: 'ok' });
    return true;
  }

  /**
   * Adds `delta` units (signed, non-zero) to a charge: a cost settled from
   * the upstream's response. Resolves to whether the store took it; a store
   * failure is counted and never thrown (the response is already sent: the
   * charge then stays at what was reserved). close() waits for the
   * adjustments still under way.
   */
  adjust(receipt: ChargeReceipt, delta: number): Promise<boolean> {
    const adjusting = this.adjustNow(receipt, delta);
    this.#adjusting.add(adjusting);
    void adjusting.then(() => this.#adjusting.delete(adjusting));
    return adjusting;
  }

  private async adjustNow(receipt: ChargeReceipt, delta: number): Promise<boolean> {
    const { breaker, metrics } = this.options;
    if (!breaker.allowCall()) {
      metrics.adjustments.inc({ result: 'failed' });
      return false;
    }
    const startMs = performance.now();
    try {
      await this.options.limiter.adjust(receipt, delta);
    } catch (error) {
      this.recordFailure(error);
      metrics.adjustments.inc({ result: 'failed' });
      return false;
    }
    this.recordSuccess(startMs);
    metrics.adjustments.inc({ result: 'ok' });
    return true;
  }

  /**
   * The subject's current state, charging nothing (admin and self-service
   * usage). Unlike decide(), a store fault rejects: there is no decision to
   * fall back on, and the caller answers 503.
   */
  peek(request: PeekRequest): Promise<PolicyState[]> {
    return this.options.limiter.peek(request);
  }

  /**
   * Deletes the subject's counters of `policies` and forgets its local deny
   * entry here (other instances learn of a reset through the caller's
   * invalidation). Resolves to the version the reset took (Limiter.reset).
   * A store fault rejects.
   */
  async reset(subject: string, policies: readonly Policy[]): Promise<number | undefined> {
    const version = await this.options.limiter.reset(subject, policies);
    this.forget(subject);
    return version;
  }

  /** Adds credit grants to the subject's balances (a store fault rejects). */
  addCredits(subject: string, grants: readonly CreditGrantState[]): Promise<void> {
    return this.options.limiter.addCredits(subject, grants);
  }

  /** The subject's credit balance of `metric` (a store fault rejects). */
  creditBalance(subject: string, metric: string): Promise<number> {
    return this.options.limiter.creditBalance(subject, metric);
  }

  /** Forgets what the local deny cache holds for `subject` (admin reset, credit grant). */
  forget(subject: string): void {
    this.options.denyCache.forget(subject);
  }

  /** Forgets the local denials of the subject's keys (`limit_by: key` counting ids): after a change to the subject. */
  forgetKeysOf(subject: string): void {
    this.options.denyCache.forgetKeysOf(subject);
  }

  async close(): Promise<void> {
    await Promise.all(this.#adjusting);
    await this.options.limiter.close();
  }

  /**
   * The answer that needs no store call, if there is one: a local denial for
   * a subject known to be exhausted, or the failure policy while the circuit
   * is open.
   */
  private settledWithoutStore(request: ConsumeRequest, onStoreError: StoreFailurePolicy): Exclude<LimitOutcome, { readonly kind: 'decided' }> | undefined {
    const { breaker, denyCache, metrics, storeName } = this.options;
    const known = denyCache.check(request.subject, request.policies);
    if (known === undefined) {
      if (denyCache.enabled) (this.#denyCacheMisses ??= metrics.localDenyLookups.labels('miss')).inc();
    } else {
      (this.#denyCacheHits ??= metrics.localDenyLookups.labels('hit')).inc();
      (this.#localDenials ??= metrics.decisions.labels('denied', 'local-deny')).inc();
      return { kind: 'local-deny', decision: known };
    }
    if (!breaker.allowCall()) {
      metrics.storeErrors.inc({ store: storeName, kind: 'circuit_open' });
      return this.failure(onStoreError);
    }
    return undefined;
  }

  private recordSuccess(startMs: number): void {
    this.#storeDuration ??= this.options.metrics.storeDuration.labels(this.options.storeName);
    this.#storeDuration.observe((performance.now() - startMs) / 1000);
    this.options.breaker.recordSuccess();
  }

  /**
   * Counts a failed store call and tells the breaker, unless the failure was
   * of the gateway's own making (NotAStoreFault: a call that waited too long
   * in the gateway's queue during a burst, or one lost with a connection
   * retired after another call's timeout, which was counted): that says
   * nothing about the store, and must not open the circuit for every subject.
   */
  private recordFailure(error: unknown): void {
    const { breaker, metrics, storeName, classifyError } = this.options;
    if (error instanceof NotAStoreFault) {
      metrics.storeErrors.inc({ store: storeName, kind: error.kind });
      breaker.abandonProbe();
      return;
    }
    metrics.storeErrors.inc({ store: storeName, kind: classifyError?.(error) ?? 'error' });
    breaker.recordFailure();
  }

  private failure(onStoreError: StoreFailurePolicy): Extract<LimitOutcome, { readonly kind: 'fail-open' | 'fail-closed' }> {
    const { metrics, storeRetryAfterSeconds } = this.options;
    if (onStoreError === 'open') {
      metrics.decisions.inc({ outcome: 'unenforced', reason: 'fail-open' });
      return { kind: 'fail-open' };
    }
    metrics.decisions.inc({ outcome: 'refused', reason: 'fail-closed' });
    return { kind: 'fail-closed', retryAfterSeconds: storeRetryAfterSeconds };
  }
}
