import { randomUUID } from 'node:crypto';
import { PeriodCache, periodOf, periodSeconds, secondsUntil } from '../core/calendar.js';
import type { Clock } from '../core/clock.js';
import { type CreditGrantState, type CreditState, grantCounterIdOf, grantInForce, spendingOrder } from '../core/credits.js';
import type { Admission, ChargeReceipt, Decision, PolicyState } from '../core/decision.js';
import type { IdempotencyClaim, IdempotencyTicket, IdempotentDecision, StoredResponse } from '../core/idempotency.js';
import { IDEMPOTENCY_DEFAULTS } from '../config/schema.js';
import { type ConsumeRequest, type IdempotencyTimes, type Limiter, type PeekRequest } from './limiter.js';
import { IdempotencyRecords, type IdempotencyRecordsOptions } from './idempotency-records.js';
import type { Policy } from '../core/policy.js';
import { policyStateAt } from '../core/policy-state.js';
import { denialOf } from '../core/denial.js';
import { highestVersion, type DirtyUsage, type DirtyUsageSource, type UsageEntry, type UsageHistory } from '../core/usage-ledger.js';
import { currentPeriodEntries, grantsToRestore, hydrationSinceMs, SingleFlight } from './hydration.js';

/** The grants of a subject without credits. */
const NO_GRANTS: readonly HeldGrant[] = Object.freeze([]);

/** Usage of one counter in one period. */
interface Counter {
  periodStartMs: number;
  used: number;
}

/** One credit grant held: what was granted, spent and when it expires (a CreditGrantState whose `used` moves). */
type HeldGrant = Omit<CreditGrantState, 'used'> & { used: number };

/** A subject's counters by counterId, and when the last of their periods ends. */
interface SubjectCounters {
  readonly byCounter: Map<string, Counter>;
  /** Restored from the ledger (or found nothing to restore) since this entry was created. */
  hydrated: boolean;
  /**
   * With a ledger, the subject's version (DirtyUsage.version): bumped by
   * every charge, refund and reset, seeded above the ledger's highest and
   * any unflushed record's on hydration.
   */
  version: number;
  /** Epoch ms at which every counter here belongs to a past period. */
  expiresAtMs: number;
}

export interface MemoryLimiterOptions {
  readonly clock: Clock;
  /** How often stale subjects are dropped, in ms; 0 disables the timer (tests call sweep()). */
  readonly sweepIntervalMs?: number;
  /** Idempotency-Key records: their lifetimes and memory bounds; default the config's defaults. */
  readonly idempotency?: IdempotencyTimes & IdempotencyRecordsOptions;
  /**
   * The usage ledger behind the counters. When set, every charge is recorded
   * for the ledger flusher (dirtySubjects/readDirty), and a subject's first
   * charge after a start restores its current periods from the ledger.
   */
  readonly ledger?: UsageHistory;
}

/**
 * What a subject charged since the flusher last cleared it: counterId →
 * period start (epoch ms) → absolute count. Two levels, not one
 * `<start>:<counterId>` key, so a charge builds no string; a counter of a
 * period that ended may still be there beside the current one until flushed.
 */
interface DirtyRecord {
  /** The subject's version at the latest change recorded here. */
  version: number;
  readonly counts: Map<string, Map<number, number>>;
}

/** Records `count` as the absolute count of `counterId` in the period starting at `periodStartMs`. */
function setDirtyCount(record: DirtyRecord, counterId: string, periodStartMs: number, count: number): void {
  let byPeriod = record.counts.get(counterId);
  if (byPeriod === undefined) record.counts.set(counterId, (byPeriod = new Map()));
  byPeriod.set(periodStartMs, count);
}

/** The record's counts as ledger entries (a copy: later charges do not change it). */
function dirtyEntriesOf(record: DirtyRecord): UsageEntry[] {
  const entries: UsageEntry[] = [];
  for (const [counterId, byPeriod] of record.counts) {
    for (const [periodStartMs, count] of byPeriod) entries.push({ counterId, periodStartMs, count });
  }
  return entries;
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
 * bounded in bytes, per subject and in total (see IdempotencyRecords); a
 * record evicted early makes a later repeat of its key a new request.
 */
export class MemoryLimiter implements Limiter, DirtyUsageSource {
  /** The current periods of the windows decided on (kept while they hold: the steady path computes none). */
  private readonly periods = new PeriodCache();
  private readonly subjects = new Map<string, SubjectCounters>();
  private readonly expiryBuckets = new Map<number, Set<string>>();
  private readonly idempotency: IdempotencyRecords;
  private readonly idempotencyTimes: IdempotencyTimes;
  private readonly clock: Clock;
  private readonly sweepTimer: NodeJS.Timeout | undefined;
  private readonly ledger: UsageHistory | undefined;
  private readonly dirty = new Map<string, DirtyRecord>();
  private readonly hydrations = new SingleFlight();
  /**
   * Credit grants by subject, then metric, then grant id. Kept apart from
   * the counters: sweep() never drops them (grants outlive any period);
   * they are as many as the grants made to this process's subjects.
   */
  private readonly credits = new Map<string, Map<string, Map<number, HeldGrant>>>();

  constructor(options: MemoryLimiterOptions) {
    this.clock = options.clock;
    this.ledger = options.ledger;
    const idempotency = options.idempotency ?? {
      inFlightTtlMs: IDEMPOTENCY_DEFAULTS.in_flight_ttl_ms,
      ttlMs: IDEMPOTENCY_DEFAULTS.ttl_ms,
      maxBytes: IDEMPOTENCY_DEFAULTS.memory.max_bytes,
      subjectMaxBytes: IDEMPOTENCY_DEFAULTS.memory.subject_max_bytes,
    };
    this.idempotency = new IdempotencyRecords(idempotency);
    this.idempotencyTimes = idempotency;
    const intervalMs = options.sweepIntervalMs ?? 10_000;
    if (intervalMs > 0) {
      this.sweepTimer = setInterval(() => this.sweep(), intervalMs);
      this.sweepTimer.unref();
    }
  }

  /** Synchronous once the subject is hydrated (or without a ledger); a promise only while it hydrates. */
  consume(request: ConsumeRequest): Decision | Promise<Decision> {
    if (!this.needsHydration(request)) return this.consumeNow(request);
    return this.hydrateBeforeCharging(request).then(() => this.consumeNow(request));
  }

  async consumeIdempotent(request: ConsumeRequest, claim: IdempotencyClaim): Promise<IdempotentDecision> {
    const { subject } = request;
    await this.hydrateBeforeCharging(request);
    // From here on synchronous: the lookup, the charge and the mark are one step.
    const nowMs = this.clock.now();
    const record = this.idempotency.get(subject, claim.key, nowMs);
    if (record !== undefined) {
      if (record.fingerprint !== claim.fingerprint) return { kind: 'reused' };
      return record.response === undefined ? { kind: 'in-flight' } : { kind: 'replay', response: record.response };
    }
    const decision = this.consumeNow(request);
    if (!decision.allowed) return { kind: 'denied', denial: decision };
    const ticket: IdempotencyTicket = { subject, key: claim.key, attempt: randomUUID() };
    this.idempotency.set(subject, claim.key, {
      fingerprint: claim.fingerprint,
      attempt: ticket.attempt,
      response: undefined,
      expiresAtMs: nowMs + this.idempotencyTimes.inFlightTtlMs,
    });
    return { kind: 'admitted', admission: decision, ticket };
  }

  /** With a ledger, restores the subject's counters before its first charge (once). */
  private async hydrateBeforeCharging(request: ConsumeRequest): Promise<void> {
    if (this.needsHydration(request)) await this.hydrations.run(request.subject, () => this.hydrate(request.subject));
  }

  /** With a ledger, whether the subject's counters must be restored before this request charges them. */
  private needsHydration({ subject, policies, meters = [] }: ConsumeRequest): boolean {
    const charges = policies.length > 0 || meters.length > 0;
    return this.ledger !== undefined && charges && this.subjects.get(subject)?.hydrated !== true;
  }

  completeIdempotent(ticket: IdempotencyTicket, response: StoredResponse): Promise<void> {
    const nowMs = this.clock.now();
    const record = this.idempotency.inFlightOf(ticket, nowMs);
    if (record !== undefined) {
      this.idempotency.set(ticket.subject, ticket.key, { ...record, response, expiresAtMs: nowMs + this.idempotencyTimes.ttlMs });
    }
    return Promise.resolve();
  }

  releaseIdempotent(ticket: IdempotencyTicket): Promise<void> {
    if (this.idempotency.inFlightOf(ticket, this.clock.now()) !== undefined) this.idempotency.delete(ticket.subject, ticket.key);
    return Promise.resolve();
  }

  dirtySubjects(): Promise<string[]> {
    return Promise.resolve([...this.dirty.keys()]);
  }

  readDirty(subject: string): Promise<DirtyUsage | undefined> {
    const record = this.dirty.get(subject);
    if (record === undefined) return Promise.resolve(undefined);
    return Promise.resolve({ subject, entries: dirtyEntriesOf(record), version: record.version });
  }

  clearDirty(dirty: DirtyUsage): Promise<boolean> {
    const record = this.dirty.get(dirty.subject);
    const unchanged = record !== undefined && record.version === dirty.version;
    if (unchanged) this.dirty.delete(dirty.subject);
    return Promise.resolve(unchanged);
  }

  /** Raises the subject's counters to the ledger's counts of their current periods, seeds its version, and restores its credit grants. */
  private async hydrate(subject: string): Promise<void> {
    const ledger = this.ledger!;
    const [rows, grants] = await Promise.all([
      ledger.readUsageSince(subject, hydrationSinceMs(this.clock.now())),
      ledger.readCreditGrants?.(subject) ?? [],
    ]);
    // From here on synchronous, so no consume interleaves.
    const nowMs = this.clock.now();
    this.holdGrants(subject, grantsToRestore(grants, rows, nowMs));
    const entry = this.entryOf(subject);
    let expiresAtMs = Math.max(entry.expiresAtMs, periodOf('month', nowMs).endMs);
    for (const row of currentPeriodEntries(rows, nowMs)) {
      const counter = entry.byCounter.get(row.counterId);
      if (counter !== undefined && counter.periodStartMs === row.periodStartMs) counter.used = Math.max(counter.used, row.count);
      else if (counter === undefined || counter.periodStartMs < row.periodStartMs) {
        entry.byCounter.set(row.counterId, { periodStartMs: row.periodStartMs, used: row.count });
      }
      expiresAtMs = Math.max(expiresAtMs, row.endMs);
    }
    entry.version = Math.max(entry.version, highestVersion(rows), this.dirty.get(subject)?.version ?? 0);
    entry.hydrated = true;
    this.moveToBucket(subject, entry, expiresAtMs);
  }

  refund(receipt: ChargeReceipt): Promise<void> {
    return this.adjust(receipt, -receipt.cost);
  }

  /** Synchronous (the promise is already settled): as lua/refund.lua does, counter by counter. */
  adjust(receipt: ChargeReceipt, delta: number): Promise<void> {
    const entry = this.subjects.get(receipt.subject);
    if (entry === undefined) return Promise.resolve();
    const adjusted: UsageEntry[] = [];
    for (const charge of receipt.charges) {
      const counter = entry.byCounter.get(charge.counterId);
      // A counter that moved on to a new period keeps its new count.
      if (counter !== undefined && counter.periodStartMs === charge.periodStartMs && delta !== 0) {
        counter.used = Math.max(0, counter.used + delta);
        adjusted.push({ counterId: charge.counterId, periodStartMs: charge.periodStartMs, count: counter.used });
      }
    }
    // The ledger gets the adjusted counts at a new version, flushed or not (as lua/refund.lua does).
    if (adjusted.length > 0) this.recordChange(receipt.subject, entry, adjusted);
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

  /**
   * With a ledger, the reset is recorded for the flusher (0 for each
   * counter's current period, as lua/reset-counters.lua does) at a new
   * version, which it resolves to; a subject not hydrated yet is hydrated
   * first, so that version is above the ledger's.
   */
  async reset(subject: string, policies: readonly Policy[]): Promise<number | undefined> {
    if (this.ledger !== undefined && this.subjects.get(subject)?.hydrated !== true) {
      await this.hydrations.run(subject, () => this.hydrate(subject));
    }
    const entry = this.subjects.get(subject);
    const nowMs = this.clock.now();
    const zeroed: UsageEntry[] = [];
    for (const policy of policies) {
      const counter = entry?.byCounter.get(policy.counterId);
      const periodStartMs = periodOf(policy.window, nowMs).startMs;
      if (counter?.periodStartMs === periodStartMs) zeroed.push({ counterId: policy.counterId, periodStartMs, count: 0 });
      entry?.byCounter.delete(policy.counterId);
    }
    if (this.ledger === undefined || entry === undefined) return undefined;
    return this.recordChange(subject, entry, zeroed);
  }

  addCredits(subject: string, grants: readonly CreditGrantState[]): Promise<void> {
    this.holdGrants(subject, grants);
    return Promise.resolve();
  }

  creditBalance(subject: string, metric: string): Promise<number> {
    return Promise.resolve(this.balanceOf(this.grantsInForce(subject, metric, this.clock.now())));
  }

  /** Adds grants (a grant held already keeps the larger of the two spent counts: spending is never undone). */
  private holdGrants(subject: string, grants: readonly CreditGrantState[]): void {
    for (const grant of grants) {
      let byMetric = this.credits.get(subject);
      if (byMetric === undefined) this.credits.set(subject, (byMetric = new Map()));
      let byId = byMetric.get(grant.metric);
      if (byId === undefined) byMetric.set(grant.metric, (byId = new Map()));
      const held = byId.get(grant.id);
      byId.set(grant.id, { ...grant, used: Math.max(grant.used, held?.used ?? 0) });
    }
  }

  /** The subject's grants of `metric` with units left and in force at `nowMs`, in spending order. */
  private grantsInForce(subject: string, metric: string, nowMs: number): HeldGrant[] {
    const byId = this.credits.get(subject)?.get(metric);
    if (byId === undefined) return [];
    return [...byId.values()].filter((grant) => grantInForce(grant, nowMs) && grant.used < grant.amount).sort(spendingOrder);
  }

  private balanceOf(grants: readonly HeldGrant[]): number {
    return grants.reduce((sum, grant) => sum + grant.amount - grant.used, 0);
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
    this.dirty.clear();
    this.credits.clear();
    return Promise.resolve();
  }

  private consumeNow({ subject, policies, meters = [], cost }: ConsumeRequest): Decision {
    const nowMs = this.clock.now();
    const entry = this.subjects.get(subject);
    const periods = policies.map((policy) => this.periods.of(policy.window, nowMs));
    const used = policies.map((policy, i) => {
      const counter = entry?.byCounter.get(policy.counterId);
      return counter !== undefined && counter.periodStartMs === periods[i]!.startMs ? counter.used : 0;
    });
    // A policy allowing overage admits up to its max past the limit.
    const violated = policies.map((policy, i) => used[i]! + cost > policy.limit + (policy.overage?.max ?? 0));
    // Policies covered by credits that have no room are paid from the balance, if every other policy has room (as consume.lua does).
    // Plans without credits skip all of it (no allocation on the common path).
    const coverage = policies.find((policy) => policy.credits !== undefined)?.credits;
    let grants: readonly HeldGrant[] = NO_GRANTS;
    let short: readonly boolean[] | undefined;
    let paidByCredits = false;
    let credits: CreditState | undefined;
    if (coverage !== undefined) {
      grants = this.grantsInForce(subject, coverage.metric, nowMs);
      const balance = this.balanceOf(grants);
      const covered = policies.map((policy, i) => violated[i]! && policy.credits !== undefined);
      const otherwiseAllowed = violated.every((isViolated, i) => !isViolated || covered[i]);
      paidByCredits = covered.includes(true) && otherwiseAllowed && balance >= cost;
      short = covered;
      credits = { metric: coverage.metric, balance: balance - (paidByCredits ? cost : 0), charged: paidByCredits ? cost : 0 };
    }
    const allowed = paidByCredits || !violated.includes(true);

    const states: PolicyState[] = policies.map((policy, i) => {
      const period = periods[i]!;
      const charged = allowed && !(paidByCredits && short![i]);
      const rest = policy.limit - used[i]! - (charged ? cost : 0);
      const state: PolicyState = {
        name: policy.name,
        kind: policy.kind,
        window: policy.window,
        limit: policy.limit,
        remaining: Math.max(0, rest),
        resetSeconds: secondsUntil(period.endMs, nowMs),
        periodSeconds: periodSeconds(period),
      };
      return policy.overage === undefined ? state : { ...state, overage: Math.max(0, -rest) };
    });
    if (!allowed) return credits === undefined ? denialOf(states, violated) : { ...denialOf(states, violated), credits };
    if (policies.length === 0 && meters.length === 0) return { allowed: true, policies: states };

    // Meters are charged after the policies, as consume.lua does; they never limit.
    // Policies paid by credits are not charged (nor in the receipt).
    const counters: Array<{ counterId: string }> = paidByCredits ? policies.filter((_, i) => !short![i]) : [...policies];
    const chargedPeriods = paidByCredits ? periods.filter((_, i) => !short![i]) : periods;
    const chargedUsed = paidByCredits ? used.filter((_, i) => !short![i]) : used;
    for (const meter of meters) {
      const period = this.periods.of(meter.window, nowMs);
      const counter = entry?.byCounter.get(meter.counterId);
      counters.push(meter);
      chargedPeriods.push(period);
      chargedUsed.push(counter !== undefined && counter.periodStartMs === period.startMs ? counter.used : 0);
    }
    const overage = this.ledger === undefined ? undefined : this.overageEntries(policies, periods, used, cost);
    this.charge(subject, entry, counters, chargedPeriods, chargedUsed, cost, overage);
    if (paidByCredits) this.spendCredits(subject, coverage!.counterId, grants, cost, nowMs);
    const receipt: ChargeReceipt = {
      subject,
      cost,
      charges: counters.map((counter, i) => ({ counterId: counter.counterId, periodStartMs: chargedPeriods[i]!.startMs })),
    };
    const admission: Admission = credits === undefined ? { allowed: true, policies: states, receipt } : { allowed: true, policies: states, receipt, credits };
    return admission;
  }

  /**
   * Spends `cost` units from `grants` (in force, in spending order, holding
   * at least `cost` together) and counts them in the month's spend counter
   * `spendCounterId`; with a ledger, each grant's spent units (`g:<id>`,
   * period 0) and the month's spend are marked for the flusher.
   */
  private spendCredits(subject: string, spendCounterId: string, grants: readonly HeldGrant[], cost: number, nowMs: number): void {
    const changed: UsageEntry[] = [];
    let left = cost;
    for (const grant of grants) {
      if (left === 0) break;
      const take = Math.min(left, grant.amount - grant.used);
      grant.used += take;
      left -= take;
      changed.push({ counterId: grantCounterIdOf(grant.id), periodStartMs: 0, count: grant.used });
    }
    const month = this.periods.of('month', nowMs);
    const entry = this.entryOf(subject);
    const counter = entry.byCounter.get(spendCounterId);
    const spent = (counter !== undefined && counter.periodStartMs === month.startMs ? counter.used : 0) + cost;
    entry.byCounter.set(spendCounterId, { periodStartMs: month.startMs, used: spent });
    this.moveToBucket(subject, entry, Math.max(entry.expiresAtMs, month.endMs));
    changed.push({ counterId: spendCounterId, periodStartMs: month.startMs, count: spent });
    // With a ledger: each grant's spent units and the month's spend, at a new version of the subject.
    this.recordChange(subject, entry, changed);
  }

  private charge(
    subject: string,
    existing: SubjectCounters | undefined,
    counters: ReadonlyArray<{ readonly counterId: string }>,
    periods: ReadonlyArray<{ startMs: number; endMs: number }>,
    used: readonly number[],
    cost: number,
    /** More ledger entries written at the same version (the overage's). */
    alsoChanged?: readonly UsageEntry[],
  ): void {
    const entry = existing ?? this.entryOf(subject);
    let expiresAtMs = entry.expiresAtMs;
    // Only with a ledger; a charge allocates nothing for it once the subject's record holds these counters.
    const record = this.ledger === undefined ? undefined : this.changeRecordOf(subject, entry);
    for (let i = 0; i < counters.length; i++) {
      const { counterId } = counters[i]!;
      const period = periods[i]!;
      const count = used[i]! + cost;
      // In place: a counter object lives as long as its subject, and a new one per charge is garbage per request.
      const counter = entry.byCounter.get(counterId);
      if (counter === undefined) entry.byCounter.set(counterId, { periodStartMs: period.startMs, used: count });
      else {
        counter.periodStartMs = period.startMs;
        counter.used = count;
      }
      if (period.endMs > expiresAtMs) expiresAtMs = period.endMs;
      if (record !== undefined) setDirtyCount(record, counterId, period.startMs, count);
    }
    if (record !== undefined && alsoChanged !== undefined) {
      for (const usage of alsoChanged) setDirtyCount(record, usage.counterId, usage.periodStartMs, usage.count);
    }
    this.moveToBucket(subject, entry, expiresAtMs);
  }

  /**
   * The ledger entries of the overage of the policies allowing overage after
   * a charge of `cost` (as consume.lua writes them): the units past the
   * limit, under the overage counterId. Undefined when no policy allows it.
   */
  private overageEntries(
    policies: readonly Policy[],
    periods: ReadonlyArray<{ startMs: number }>,
    used: readonly number[],
    cost: number,
  ): UsageEntry[] | undefined {
    let entries: UsageEntry[] | undefined;
    policies.forEach((policy, i) => {
      if (policy.overage === undefined) return;
      const count = Math.max(0, used[i]! + cost - policy.limit);
      (entries ??= []).push({ counterId: policy.overage.counterId, periodStartMs: periods[i]!.startMs, count });
    });
    return entries;
  }

  /**
   * With a ledger, records the new absolute counts `changed` for the
   * flusher at a new version of the subject, and resolves to that version
   * (undefined without a ledger). The version is taken even when nothing
   * changed (a reset of counters not charged this period), for the
   * caller's own write at it.
   */
  private recordChange(subject: string, entry: SubjectCounters, changed: readonly UsageEntry[]): number | undefined {
    if (this.ledger === undefined) return undefined;
    if (changed.length === 0) return ++entry.version;
    const record = this.changeRecordOf(subject, entry);
    for (const usage of changed) setDirtyCount(record, usage.counterId, usage.periodStartMs, usage.count);
    return record.version;
  }

  /** The subject's record for the flusher (created when absent), at a new version of the subject: one change's. */
  private changeRecordOf(subject: string, entry: SubjectCounters): DirtyRecord {
    const version = ++entry.version;
    let record = this.dirty.get(subject);
    if (record === undefined) {
      record = { version, counts: new Map() };
      this.dirty.set(subject, record);
    }
    record.version = version;
    return record;
  }

  /** The subject's entry, created (not yet hydrated, in no bucket) when absent. */
  private entryOf(subject: string): SubjectCounters {
    let entry = this.subjects.get(subject);
    if (entry === undefined) {
      entry = { byCounter: new Map<string, Counter>(), expiresAtMs: 0, hydrated: this.ledger === undefined, version: 0 };
      this.subjects.set(subject, entry);
    }
    return entry;
  }

  /** Files the subject under the expiry bucket of `expiresAtMs`, if that is later than its current one. */
  private moveToBucket(subject: string, entry: SubjectCounters, expiresAtMs: number): void {
    if (expiresAtMs === entry.expiresAtMs) return;
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
