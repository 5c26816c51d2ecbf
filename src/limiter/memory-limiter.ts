import { LRUCache } from 'lru-cache';
import { periodOf, secondsUntil } from '../core/calendar.js';
import type { Clock } from '../core/clock.js';
import type { Admission, ChargeReceipt, Decision, PolicyState } from '../core/decision.js';
import { type ConsumeRequest, IDEMPOTENCY_TTL_MS, type Limiter, type PeekRequest } from './limiter.js';
import type { Policy } from '../core/policy.js';
import { policyStateAt } from '../core/policy-state.js';
import { denialOf } from '../core/denial.js';

/** Usage of one counter in one period. */
interface Counter {
  periodStartMs: number;
  used: number;
}

/** A subject's counters by counterId, and when the last of their periods ends. */
interface SubjectCounters {
  readonly byCounter: Map<string, Counter>;
  /** Epoch ms at which every counter here belongs to a past period. */
  expiresAtMs: number;
}

export interface MemoryLimiterOptions {
  readonly clock: Clock;
  /** How often stale subjects are dropped, in ms; 0 disables the timer (tests call sweep()). */
  readonly sweepIntervalMs?: number;
  /** Most idempotency records kept; the least recently used go first. */
  readonly maxIdempotencyRecords?: number;
}

/**
 * A single-instance limiter holding counters in process memory. It gives the
 * same answers as the Redis limiter (one contract suite pins both), but its
 * counts die with the process and are not shared between instances.
 *
 * Memory is bounded by the subjects active in their current periods: every
 * subject sits in an expiry bucket keyed by the end of its longest period
 * (calendar alignment makes these few), and sweep() drops whole buckets once
 * their time has passed, touching only what expired. Idempotency records are
 * bounded by `maxIdempotencyRecords` (default 100,000); past that the oldest
 * are forgotten early, and a retry that old would be charged again.
 */
export class MemoryLimiter implements Limiter {
  private readonly subjects = new Map<string, SubjectCounters>();
  private readonly expiryBuckets = new Map<number, Set<string>>();
  private readonly idempotency: LRUCache<string, Admission>;
  private readonly clock: Clock;
  private readonly sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: MemoryLimiterOptions) {
    this.clock = options.clock;
    this.idempotency = new LRUCache({
      max: options.maxIdempotencyRecords ?? 100_000,
      ttl: IDEMPOTENCY_TTL_MS,
      perf: { now: () => this.clock.now() },
      ttlAutopurge: false,
    });
    const intervalMs = options.sweepIntervalMs ?? 10_000;
    if (intervalMs > 0) {
      this.sweepTimer = setInterval(() => this.sweep(), intervalMs);
      this.sweepTimer.unref();
    }
  }

  consume(request: ConsumeRequest): Promise<Decision> {
    return Promise.resolve(this.consumeNow(request));
  }

  refund(receipt: ChargeReceipt): Promise<void> {
    const entry = this.subjects.get(receipt.subject);
    for (const charge of receipt.charges) {
      const counter = entry?.byCounter.get(charge.counterId);
      // A counter that moved on to a new period keeps its new count.
      if (counter !== undefined && counter.periodStartMs === charge.periodStartMs) {
        counter.used = Math.max(0, counter.used - receipt.cost);
      }
    }
    return Promise.resolve();
  }

  peek({ subject, policies }: PeekRequest): Promise<PolicyState[]> {
    const nowMs = this.clock.now();
    const entry = this.subjects.get(subject);
    return Promise.resolve(
      policies.map((policy) => {
        const counter = entry?.byCounter.get(policy.counterId);
        const current = counter !== undefined && counter.periodStartMs === periodOf(policy.window, nowMs).startMs;
        return policyStateAt(policy, current ? counter.used : 0, nowMs);
      }),
    );
  }

  reset(subject: string, policies: readonly Policy[]): Promise<void> {
    const entry = this.subjects.get(subject);
    for (const policy of policies) entry?.byCounter.delete(policy.counterId);
    return Promise.resolve();
  }

  /** Number of subjects holding counters; for tests and sizing. */
  get subjectCount(): number {
    return this.subjects.size;
  }

  /** Drops every subject whose counters all belong to past periods. */
  sweep(): void {
    const nowMs = this.clock.now();
    for (const [expiresAtMs, bucket] of this.expiryBuckets) {
      if (expiresAtMs > nowMs) continue;
      for (const subject of bucket) this.subjects.delete(subject);
      this.expiryBuckets.delete(expiresAtMs);
    }
  }

  close(): Promise<void> {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.subjects.clear();
    this.expiryBuckets.clear();
    this.idempotency.clear();
    return Promise.resolve();
  }

  private consumeNow({ subject, policies, cost, idempotencyKey }: ConsumeRequest): Decision {
    const replayKey = idempotencyKey === undefined ? undefined : `${subject}\u0000${idempotencyKey}`;
    if (replayKey !== undefined) {
      const earlier = this.idempotency.get(replayKey);
      if (earlier !== undefined) return { allowed: true, policies: earlier.policies, replayed: true };
    }
    const nowMs = this.clock.now();
    const entry = this.subjects.get(subject);
    const periods = policies.map((policy) => periodOf(policy.window, nowMs));
    const used = policies.map((policy, i) => {
      const counter = entry?.byCounter.get(policy.counterId);
      return counter !== undefined && counter.periodStartMs === periods[i]!.startMs ? counter.used : 0;
    });
    const violated = policies.map((policy, i) => used[i]! + cost > policy.limit);
    const allowed = !violated.includes(true);

    const states: PolicyState[] = policies.map((policy, i) => {
      const period = periods[i]!;
      return {
        name: policy.name,
        kind: policy.kind,
        window: policy.window,
        limit: policy.limit,
        remaining: Math.max(0, policy.limit - used[i]! - (allowed ? cost : 0)),
        resetSeconds: secondsUntil(period.endMs, nowMs),
        periodSeconds: Math.round((period.endMs - period.startMs) / 1000),
      };
    });
    if (!allowed) return denialOf(states, violated);
    if (policies.length === 0) return { allowed: true, policies: states, replayed: false };

    this.charge(subject, entry, policies.map((p) => p.counterId), periods, used, cost);
    const admission: Admission = {
      allowed: true,
      policies: states,
      replayed: false,
      receipt: {
        subject,
        cost,
        charges: policies.map((policy, i) => ({ counterId: policy.counterId, periodStartMs: periods[i]!.startMs })),
      },
    };
    if (replayKey !== undefined) this.idempotency.set(replayKey, admission);
    return admission;
  }

  private charge(
    subject: string,
    existing: SubjectCounters | undefined,
    counterIds: readonly string[],
    periods: ReadonlyArray<{ startMs: number; endMs: number }>,
    used: readonly number[],
    cost: number,
  ): void {
    const entry = existing ?? { byCounter: new Map<string, Counter>(), expiresAtMs: 0 };
    if (existing === undefined) this.subjects.set(subject, entry);
    let expiresAtMs = entry.expiresAtMs;
    counterIds.forEach((counterId, i) => {
      const period = periods[i]!;
      entry.byCounter.set(counterId, { periodStartMs: period.startMs, used: used[i]! + cost });
      expiresAtMs = Math.max(expiresAtMs, period.endMs);
    });
    if (expiresAtMs !== entry.expiresAtMs) {
      this.expiryBuckets.get(entry.expiresAtMs)?.delete(subject);
      entry.expiresAtMs = expiresAtMs;
      let bucket = this.expiryBuckets.get(expiresAtMs);
      if (bucket === undefined) {
        bucket = new Set();
        this.expiryBuckets.set(expiresAtMs, bucket);
      }
      bucket.add(subject);
    }
  }
}
