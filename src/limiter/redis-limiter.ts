import { randomUUID } from 'node:crypto';
import { periodOf } from '../core/calendar.js';
import type { ChargeReceipt, Decision, PolicyState } from '../core/decision.js';
import type { IdempotencyClaim, IdempotencyTicket, IdempotentDecision, StoredResponse } from '../core/idempotency.js';
import { IDEMPOTENCY_DEFAULTS } from '../config/schema.js';
import type { Policy } from '../core/policy.js';
import { Cluster } from 'ioredis';
import { closeRedisClient, type RedisClient } from '../redis/client.js';
import { clusterSlotOf } from '../redis/cluster-slots.js';
import { subjectHashTag } from '../redis/keys.js';
import type { DirtyUsage, DirtyUsageSource, UsageHistory } from '../core/usage-ledger.js';
import {
  type ConsumeScriptOptions,
  COUNTER_EXPIRY_GRACE_MS,
  deleteCounters,
  NEEDS_HYDRATION,
  registerScripts,
  runPeekScript,
  runRefundScript,
  runTrackedConsumeScript,
} from '../redis/scripts.js';
import { runIdempotentConsumeScript, runSettleIdempotencyScript } from '../redis/idempotency-scripts.js';
import { clearUsageMarker, readUsageIndex, readUsageMarker, runHydrateScript, scanUsageMarkers } from '../redis/usage-markers.js';
import { currentPeriodEntries, hydrationSinceMs, SingleFlight } from './hydration.js';
import { type ConsumeRequest, type IdempotencyTimes, type Limiter, type PeekRequest } from './limiter.js';

export interface RedisLimiterOptions {
  readonly client: RedisClient;
  /** First part of every key (`store.redis.key_prefix`). */
  readonly keyPrefix: string;
  /** Whether close() also closes `client`; false when the client is shared. Default false. */
  readonly ownsClient?: boolean;
  /**
   * Tests only, never set in production: the epoch ms the script uses instead
   * of Redis TIME, so the contract suite's manual clock drives both limiters.
   */
  readonly nowForTesting?: () => number;
  /**
   * The usage ledger behind the counters. When set, every charge marks the
   * subject dirty for the ledger flusher, and lists it in the usage index
   * every instance's flusher reads (in the same script call), and a
   * subject whose counters Redis lost is restored from the ledger before it
   * is decided (once per subject per Redis lifetime and month).
   */
  readonly ledger?: UsageHistory;
  /** How long Idempotency-Key records live; default the config's defaults. */
  readonly idempotency?: IdempotencyTimes;
}

/** consume() tries this often when Redis keeps losing the hydration marker (a FLUSHALL loop). */
const MAX_HYDRATION_ATTEMPTS = 3;

/**
 * A limiter whose counters live in Redis, shared by every gateway instance.
 * Each consume and each refund is exactly one Redis command (an EVALSHA of
 * lua/consume.lua or lua/refund.lua), atomic on the server, also with an
 * Idempotency-Key (whose completion is one more, lua/settle-idempotency.lua,
 * after the response), with the time
 * taken from Redis TIME so instances with skewed clocks agree on periods.
 *
 * Denials resolve; connection errors and timeouts reject, for the caller's
 * failure policy (`on_store_error`) to answer.
 */
export class RedisLimiter implements Limiter, DirtyUsageSource {
  private readonly client: RedisClient;
  private readonly keyPrefix: string;
  private readonly ownsClient: boolean;
  private readonly nowForTesting: (() => number) | undefined;
  private readonly ledger: UsageHistory | undefined;
  /** On a Cluster, usage indexes are per slot. */
  private readonly clustered: boolean;
  private readonly hydrations = new SingleFlight();
  private readonly idempotency: IdempotencyTimes;

  constructor(options: RedisLimiterOptions) {
    this.client = options.client;
    this.keyPrefix = options.keyPrefix;
    this.ownsClient = options.ownsClient ?? false;
    this.nowForTesting = options.nowForTesting;
    this.ledger = options.ledger;
    this.clustered = this.client instanceof Cluster;
    this.idempotency = options.idempotency ?? {
      inFlightTtlMs: IDEMPOTENCY_DEFAULTS.in_flight_ttl_ms,
      ttlMs: IDEMPOTENCY_DEFAULTS.ttl_ms,
    };
    registerScripts(this.client);
  }

  async consume(request: ConsumeRequest): Promise<Decision> {
    // Nothing to count: no need to ask Redis.
    if (request.policies.length === 0 && (request.meters?.length ?? 0) === 0) return { allowed: true, policies: [] };
    const options = this.scriptOptions(request.subject);
    for (let attempt = 1; ; attempt++) {
      const answer = await runTrackedConsumeScript(this.client, request, options);
      if (answer !== NEEDS_HYDRATION) return answer;
      if (attempt >= MAX_HYDRATION_ATTEMPTS) throw new Error(`subject still not hydrated after ${attempt} attempts`);
      await this.hydrations.run(request.subject, () => this.hydrate(request.subject));
    }
  }

  async consumeIdempotent(request: ConsumeRequest, claim: IdempotencyClaim): Promise<IdempotentDecision> {
    const options = this.scriptOptions(request.subject);
    const attempt = randomUUID();
    for (let tries = 1; ; tries++) {
      const answer = await runIdempotentConsumeScript(this.client, request, { ...claim, attempt }, options);
      if (answer !== NEEDS_HYDRATION) {
        if (answer.kind !== 'decided') return answer;
        const { decision } = answer;
        if (!decision.allowed) return { kind: 'denied', denial: decision };
        return { kind: 'admitted', admission: decision, ticket: { subject: request.subject, key: claim.key, attempt } };
      }
      if (tries >= MAX_HYDRATION_ATTEMPTS) throw new Error(`subject still not hydrated after ${tries} attempts`);
      await this.hydrations.run(request.subject, () => this.hydrate(request.subject));
    }
  }

  completeIdempotent(ticket: IdempotencyTicket, response: StoredResponse): Promise<void> {
    return runSettleIdempotencyScript(this.client, this.keyPrefix, ticket, response, this.idempotency.ttlMs);
  }

  releaseIdempotent(ticket: IdempotencyTicket): Promise<void> {
    return runSettleIdempotencyScript(this.client, this.keyPrefix, ticket, undefined, this.idempotency.ttlMs);
  }

  async refund(receipt: ChargeReceipt): Promise<void> {
    await runRefundScript(this.client, this.keyPrefix, receipt, this.ledger !== undefined);
  }

  peek({ subject, policies }: PeekRequest): Promise<PolicyState[]> {
    return runPeekScript(this.client, this.keyPrefix, subject, policies, this.nowForTesting?.());
  }

  reset(subject: string, policies: readonly Policy[]): Promise<void> {
    return deleteCounters(this.client, this.keyPrefix, subject, policies);
  }

  /**
   * Every subject the usage index lists, charged by any instance (a dead one
   * too) and not flushed yet; with `includeLeftovers`, also markers the
   * index does not list (written before it existed), found by SCAN.
   */
  async dirtySubjects(includeLeftovers: boolean): Promise<string[]> {
    const listed = await readUsageIndex(this.client, this.keyPrefix);
    if (!includeLeftovers) return listed;
    return [...new Set([...listed, ...(await scanUsageMarkers(this.client, this.keyPrefix))])];
  }

  async readDirty(subject: string): Promise<DirtyUsage | undefined> {
    const dirty = await readUsageMarker(this.client, this.keyPrefix, subject);
    // Flushed by another instance, or expired: the index must not keep listing it.
    if (dirty === undefined) await clearUsageMarker(this.client, this.keyPrefix, subject, '', this.slotOf(subject));
    return dirty;
  }

  clearDirty(dirty: DirtyUsage): Promise<boolean> {
    return clearUsageMarker(this.client, this.keyPrefix, dirty.subject, dirty.version, this.slotOf(dirty.subject));
  }

  /** The Cluster slot of the subject's keys; undefined on one Redis (one usage index). */
  private slotOf(subject: string): number | undefined {
    return this.clustered ? clusterSlotOf(subjectHashTag(subject)) : undefined;
  }

  /** consume.lua's options for one call about `subject`. */
  private scriptOptions(subject: string): ConsumeScriptOptions {
    return {
      keyPrefix: this.keyPrefix,
      inFlightTtlMs: this.idempotency.inFlightTtlMs,
      trackUsage: this.ledger !== undefined,
      ...(this.nowForTesting === undefined ? {} : { nowOverrideMs: this.nowForTesting() }),
      ...(this.clustered ? { slot: this.slotOf(subject) } : {}),
    };
  }

  /** Restores the subject's current-period counters from the ledger (one query, one script). */
  private async hydrate(subject: string): Promise<void> {
    const nowMs = this.nowForTesting?.() ?? Date.now();
    const rows = await this.ledger!.readUsageSince(subject, hydrationSinceMs(nowMs));
    const entries = currentPeriodEntries(rows, nowMs).map((entry) => ({
      ...entry,
      ttlMs: entry.endMs - nowMs + COUNTER_EXPIRY_GRACE_MS,
    }));
    const monthEndMs = periodOf('month', nowMs).endMs;
    await runHydrateScript(this.client, this.keyPrefix, subject, entries, monthEndMs - nowMs + COUNTER_EXPIRY_GRACE_MS);
  }

  async close(): Promise<void> {
    if (this.ownsClient) await closeRedisClient(this.client);
  }
}
