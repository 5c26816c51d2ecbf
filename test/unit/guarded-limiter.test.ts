import { describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import type { ChargeReceipt, Decision, PolicyState } from '../../src/core/decision.js';
import type { IdempotencyClaim, IdempotencyTicket, IdempotentDecision, StoredResponse } from '../../src/core/idempotency.js';
import { type Policy, windowPolicy } from '../../src/core/policy.js';
import { CircuitBreaker } from '../../src/limiter/circuit-breaker.js';
import { GuardedLimiter } from '../../src/limiter/guarded-limiter.js';
import type { ConsumeRequest, Limiter, PeekRequest } from '../../src/limiter/limiter.js';
import { LocalDenyCache } from '../../src/limiter/local-deny-cache.js';
import type { CreditGrantState } from '../../src/core/credits.js';
import { MemoryLimiter } from '../../src/limiter/memory-limiter.js';
import { StoreConnectionRetiredError, StoreQueueTimeoutError } from '../../src/limiter/store-call-gate.js';
import { createMetrics } from '../../src/metrics/metrics.js';

/** A memory limiter whose store "goes down" on demand, counting the calls that reached it. */
class SwitchableStore implements Limiter {
  down = false;
  calls = 0;
  constructor(private readonly inner: Limiter) {}
  consume(request: ConsumeRequest): Decision | Promise<Decision> {
    this.calls++;
    return this.down ? Promise.reject(new Error('store down')) : this.inner.consume(request);
  }
  consumeIdempotent(request: ConsumeRequest, claim: IdempotencyClaim): Promise<IdempotentDecision> {
    this.calls++;
    return this.down ? Promise.reject(new Error('store down')) : this.inner.consumeIdempotent(request, claim);
  }
  completeIdempotent(ticket: IdempotencyTicket, response: StoredResponse): Promise<void> {
    this.calls++;
    return this.down ? Promise.reject(new Error('store down')) : this.inner.completeIdempotent(ticket, response);
  }
  releaseIdempotent(ticket: IdempotencyTicket): Promise<void> {
    this.calls++;
    return this.down ? Promise.reject(new Error('store down')) : this.inner.releaseIdempotent(ticket);
  }
  refund(receipt: ChargeReceipt): Promise<void> {
    this.calls++;
    return this.down ? Promise.reject(new Error('store down')) : this.inner.refund(receipt);
  }
  adjust(receipt: ChargeReceipt, delta: number): Promise<void> {
    this.calls++;
    return this.down ? Promise.reject(new Error('store down')) : this.inner.adjust(receipt, delta);
  }
  peek(request: PeekRequest): Promise<PolicyState[]> {
    this.calls++;
    return this.down ? Promise.reject(new Error('store down')) : this.inner.peek(request);
  }
  reset(subject: string, policies: readonly Policy[]): Promise<number | undefined> {
    this.calls++;
    return this.down ? Promise.reject(new Error('store down')) : this.inner.reset(subject, policies);
  }
  addCredits(subject: string, grants: readonly CreditGrantState[]): Promise<void> {
    this.calls++;
    return this.down ? Promise.reject(new Error('store down')) : this.inner.addCredits(subject, grants);
  }
  creditBalance(subject: string, metric: string): Promise<number> {
    this.calls++;
    return this.down ? Promise.reject(new Error('store down')) : this.inner.creditBalance(subject, metric);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function setup() {
  const clock = new ManualClock(Date.UTC(2026, 5, 15, 10, 30));
  const store = new SwitchableStore(new MemoryLimiter({ clock, sweepIntervalMs: 0 }));
  const metrics = createMetrics({ collectProcessMetrics: false });
  const guard = new GuardedLimiter({
    limiter: store,
    storeName: 'test',
    breaker: new CircuitBreaker({ failureThreshold: 2, openMs: 1000, clock }),
    denyCache: new LocalDenyCache(100, clock),
    metrics,
    clock,
    classifyError: () => 'connection',
    storeRetryAfterSeconds: 1,
  });
  return { clock, store, metrics, guard };
}

const request = (subject = 's'): ConsumeRequest => ({ subject, policies: [windowPolicy('hour', 2)], cost: 1 });

async function metricValue(metrics: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string>) {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

describe('GuardedLimiter', () => {
  it('applies the route policy when the store fails: open forwards, closed refuses', async () => {
    const { store, guard, metrics } = setup();
    store.down = true;
    expect(await guard.decide(request(), 'open')).toEqual({ kind: 'fail-open' });
    expect(await guard.decide(request(), 'closed')).toEqual({ kind: 'fail-closed', retryAfterSeconds: 1 });
    // Disjoint outcomes: neither a fail-open forward nor a fail-closed refusal counts as allowed or denied.
    expect(await metricValue(metrics, 'quotagate_decisions_total', { outcome: 'unenforced', reason: 'fail-open' })).toBe(1);
    expect(await metricValue(metrics, 'quotagate_decisions_total', { outcome: 'refused', reason: 'fail-closed' })).toBe(1);
    expect(await metricValue(metrics, 'quotagate_decisions_total', { outcome: 'allowed' })).toBe(0);
    expect(await metricValue(metrics, 'quotagate_decisions_total', { outcome: 'denied' })).toBe(0);
    expect(await metricValue(metrics, 'quotagate_store_errors_total', { kind: 'connection' })).toBe(2);
  });

  it('stops calling a failing store once the circuit opens, probes it after open_ms, and recovers', async () => {
    const { clock, store, guard, metrics } = setup();
    store.down = true;
    await guard.decide(request(), 'closed');
    await guard.decide(request(), 'closed');
    expect(guard.storeState).toBe('open');
    const callsWhenOpened = store.calls;
    for (let i = 0; i < 10; i++) expect((await guard.decide(request(), 'closed')).kind).toBe('fail-closed');
    expect(store.calls).toBe(callsWhenOpened);
    expect(await metricValue(metrics, 'quotagate_store_errors_total', { kind: 'circuit_open' })).toBe(10);

    store.down = false;
    clock.advance(1000);
    const probe = await guard.decide(request(), 'closed');
    expect(probe.kind).toBe('decided');
    expect(guard.storeState).toBe('closed');
    expect(store.calls).toBe(callsWhenOpened + 1);
  });

  it('answers an exhausted subject from the local deny cache without calling the store', async () => {
    const { store, guard, metrics } = setup();
    await guard.decide(request(), 'closed');
    await guard.decide(request(), 'closed');
    const denied = await guard.decide(request(), 'closed');
    expect(denied).toMatchObject({ kind: 'decided', decision: { allowed: false } });
    const callsBefore = store.calls;
    const local = await guard.decide(request(), 'closed');
    expect(local).toMatchObject({ kind: 'local-deny', decision: { allowed: false, violated: ['hour'] } });
    expect(store.calls).toBe(callsBefore);
    expect(await metricValue(metrics, 'quotagate_decisions_total', { reason: 'local-deny' })).toBe(1);
    guard.forget('s');
    await guard.decide(request(), 'closed');
    expect(store.calls).toBe(callsBefore + 1);
  });

  it('answers an exhausted subject from the local deny cache also when its requests carry fresh Idempotency-Keys', async () => {
    const { store, guard } = setup();
    for (let i = 0; i < 3; i++) await guard.decide(request(), 'closed');
    const callsBefore = store.calls;
    for (let i = 0; i < 20; i++) {
      const outcome = await guard.decideIdempotent(request(), { key: `fresh-${i}`, fingerprint: 'f' }, 'closed');
      expect(outcome).toMatchObject({ kind: 'local-deny', decision: { allowed: false, violated: ['hour'] } });
    }
    expect(store.calls).toBe(callsBefore);
  });

  it('settles an Idempotency-Key through the breaker and never throws when the store is down', async () => {
    const { store, guard, metrics } = setup();
    const admitted = await guard.decideIdempotent(request('t'), { key: 'k', fingerprint: 'f' }, 'closed');
    if (admitted.kind !== 'idempotent' || admitted.decision.kind !== 'admitted') throw new Error('expected an admission');
    store.down = true;
    await guard.settleIdempotent(admitted.decision.ticket, undefined);
    expect(await metricValue(metrics, 'quotagate_store_errors_total', { kind: 'connection' })).toBe(1);
    store.down = false;
    // Still in flight: the failed release changed nothing.
    expect(await guard.decideIdempotent(request('t'), { key: 'k', fingerprint: 'f' }, 'closed')).toEqual({
      kind: 'idempotent',
      decision: { kind: 'in-flight' },
    });
    await guard.settleIdempotent(admitted.decision.ticket, undefined);
    const retried = await guard.decideIdempotent(request('t'), { key: 'k', fingerprint: 'f' }, 'closed');
    expect(retried).toMatchObject({ kind: 'idempotent', decision: { kind: 'admitted' } });
    expect(await metricValue(metrics, 'quotagate_decisions_total', { outcome: 'idempotency', reason: 'idempotency-in-flight' })).toBe(1);
  });

  it('counts answers from an Idempotency-Key record under their own outcome, neither allowed nor denied', async () => {
    const { guard, metrics } = setup();
    const admitted = await guard.decideIdempotent(request('r'), { key: 'k', fingerprint: 'f' }, 'closed');
    if (admitted.kind !== 'idempotent' || admitted.decision.kind !== 'admitted') throw new Error('expected an admission');
    await guard.settleIdempotent(admitted.decision.ticket, { status: 200, headers: [], body: Buffer.from('ok') });
    expect((await guard.decideIdempotent(request('r'), { key: 'k', fingerprint: 'f' }, 'closed')).kind).toBe('idempotent');
    await guard.decideIdempotent(request('r'), { key: 'k', fingerprint: 'other' }, 'closed');
    const decisions = await metrics.decisions.get();
    expect(Object.fromEntries(decisions.values.map((v) => [`${v.labels.outcome}/${v.labels.reason}`, v.value]))).toEqual({
      'allowed/allowed': 1,
      'idempotency/idempotency-replayed': 1,
      'idempotency/idempotency-reused': 1,
    });
  });

  it('counts local deny cache checks as hits and misses, and none when the cache is off', async () => {
    const { guard, metrics } = setup();
    for (let i = 0; i < 4; i++) await guard.decide(request(), 'closed');
    expect(await metricValue(metrics, 'quotagate_local_deny_cache_lookups_total', { result: 'miss' })).toBe(3);
    expect(await metricValue(metrics, 'quotagate_local_deny_cache_lookups_total', { result: 'hit' })).toBe(1);

    const clock = new ManualClock(Date.UTC(2026, 5, 15, 10, 30));
    const off = createMetrics({ collectProcessMetrics: false });
    const noCache = new GuardedLimiter({
      limiter: new MemoryLimiter({ clock, sweepIntervalMs: 0 }),
      storeName: 'test',
      breaker: new CircuitBreaker({ failureThreshold: 2, openMs: 1000, clock }),
      denyCache: new LocalDenyCache(0, clock),
      metrics: off,
      clock,
      storeRetryAfterSeconds: 1,
    });
    for (let i = 0; i < 4; i++) await noCache.decide(request(), 'closed');
    expect((await off.registry.getSingleMetric('quotagate_local_deny_cache_lookups_total')!.get()).values).toEqual([]);
  });

  it('reset clears the counters and the local deny entry, so the next request reaches the store and passes', async () => {
    const { store, guard } = setup();
    await guard.decide(request(), 'closed');
    await guard.decide(request(), 'closed');
    expect((await guard.decide(request(), 'closed')).kind).toBe('decided');
    expect((await guard.decide(request(), 'closed')).kind).toBe('local-deny');
    await guard.reset('s', request().policies);
    const callsBefore = store.calls;
    const after = await guard.decide(request(), 'closed');
    expect(after).toMatchObject({ kind: 'decided', decision: { allowed: true } });
    expect(store.calls).toBe(callsBefore + 1);
    expect(await guard.peek({ subject: 's', policies: request().policies })).toMatchObject([{ name: 'hour', remaining: 1 }]);
  });

  it('counts a failed refund instead of throwing', async () => {
    const { store, guard, metrics } = setup();
    const outcome = await guard.decide(request(), 'closed');
    if (outcome.kind !== 'decided' || !outcome.decision.allowed || outcome.decision.receipt === undefined) {
      throw new Error('expected an admission');
    }
    store.down = true;
    await expect(guard.refund(outcome.decision.receipt)).resolves.toBe(false);
    expect(await metricValue(metrics, 'quotagate_refunds_total', { result: 'failed' })).toBe(1);
    store.down = false;
    await expect(guard.refund(outcome.decision.receipt)).resolves.toBe(true);
    expect(await metricValue(metrics, 'quotagate_refunds_total', { result: 'ok' })).toBe(1);
  });

  it('counts a failed adjustment instead of throwing, and a good one once the store is back', async () => {
    const { store, guard, metrics } = setup();
    const outcome = await guard.decide(request(), 'closed');
    if (outcome.kind !== 'decided' || !outcome.decision.allowed || outcome.decision.receipt === undefined) {
      throw new Error('expected an admission');
    }
    store.down = true;
    await expect(guard.adjust(outcome.decision.receipt, 1)).resolves.toBe(false);
    expect(await metricValue(metrics, 'quotagate_charge_adjustments_total', { result: 'failed' })).toBe(1);
    store.down = false;
    await expect(guard.adjust(outcome.decision.receipt, 1)).resolves.toBe(true);
    expect(await metricValue(metrics, 'quotagate_charge_adjustments_total', { result: 'ok' })).toBe(1);
    // The charge of 1 plus the adjustment of 1 fill the hour's 2.
    expect(await guard.peek({ subject: 's', policies: request().policies })).toMatchObject([{ name: 'hour', remaining: 0 }]);
  });

  it('waits for adjustments under way before closing the store', async () => {
    const { store, guard } = setup();
    const outcome = await guard.decide(request(), 'closed');
    if (outcome.kind !== 'decided' || !outcome.decision.allowed || outcome.decision.receipt === undefined) {
      throw new Error('expected an admission');
    }
    const order: string[] = [];
    let finish: () => void = () => {};
    store.adjust = () => new Promise<void>((resolve) => (finish = () => { order.push('adjusted'); resolve(); }));
    const close = store.close.bind(store);
    store.close = () => { order.push('closed'); return close(); };
    const adjusting = guard.adjust(outcome.decision.receipt, 1);
    const closing = guard.close();
    await Promise.resolve();
    expect(order).toEqual([]);
    finish();
    await closing;
    await expect(adjusting).resolves.toBe(true);
    expect(order).toEqual(['adjusted', 'closed']);
  });

  it('does not open the circuit for failures of its own making (a queue timeout, a retired connection)', async () => {
    const { store, guard, metrics } = setup();
    const original = store.consume.bind(store);
    let failure: Error | undefined = new StoreQueueTimeoutError(150);
    store.consume = (request) => (failure === undefined ? original(request) : Promise.reject(failure));
    for (let i = 0; i < 5; i++) expect((await guard.decide(request(), 'closed')).kind).toBe('fail-closed');
    failure = new StoreConnectionRetiredError(new Error('Connection is closed.'));
    for (let i = 0; i < 5; i++) expect((await guard.decide(request(), 'closed')).kind).toBe('fail-closed');
    expect(guard.storeState).toBe('closed');
    expect(await metricValue(metrics, 'quotagate_store_errors_total', { kind: 'queue_timeout' })).toBe(5);
    expect(await metricValue(metrics, 'quotagate_store_errors_total', { kind: 'connection_retired' })).toBe(5);
    expect(await metricValue(metrics, 'quotagate_store_errors_total', { kind: 'circuit_open' })).toBe(0);
    failure = undefined;
    expect((await guard.decide(request(), 'closed')).kind).toBe('decided');
  });

  it('lets the next call probe when a probe ends without a store fault', async () => {
    const { clock, store, guard } = setup();
    store.down = true;
    await guard.decide(request(), 'closed');
    await guard.decide(request(), 'closed');
    expect(guard.storeState).toBe('open');
    clock.advance(1_000);
    store.down = false;
    const original = store.consume.bind(store);
    store.consume = () => Promise.reject(new StoreQueueTimeoutError(150));
    expect((await guard.decide(request(), 'closed')).kind).toBe('fail-closed');
    expect(guard.storeState).toBe('open');
    store.consume = original;
    expect((await guard.decide(request(), 'closed')).kind).toBe('decided');
    expect(guard.storeState).toBe('closed');
  });
});
