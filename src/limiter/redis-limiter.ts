import { periodOf } from '../core/calendar.js';
import type { ChargeReceipt, Decision, PolicyState } from '../core/decision.js';
import type { Policy } from '../core/policy.js';
import { closeRedisClient, type RedisClient } from '../redis/client.js';
import type { DirtyUsage, DirtyUsageSource, UsageHistory } from '../core/usage-ledger.js';
import {
  COUNTER_EXPIRY_GRACE_MS,
  deleteCounters,
  NEEDS_HYDRATION,
  registerScripts,
  runPeekScript,
  runRefundScript,
  runTrackedConsumeScript,
} from '../redis/scripts.js';
import { clearUsageMarker, readUsageMarker, runHydrateScript, scanUsageMarkers } from '../redis/usage-markers.js';
import { currentPeriodEntries, hydrationSinceMs, SingleFlight } from './hydration.js';
import { type ConsumeRequest, IDEMPOTENCY_TTL_MS, type Limiter, type PeekRequest } from './limiter.js';

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
   * subject dirty for the ledger flusher (in the same script call), and a
   * subject whose counters Redis lost is restored from the ledger before it
   * is decided (once per subject per Redis lifetime and month).
   */
  readonly ledger?: UsageHistory;
}

/** consume() tries this often when Redis keeps losing the hydration marker (a FLUSHALL loop). */
const MAX_HYDRATION_ATTEMPTS = 3;

/**
 * A limiter whose counters live in Redis, shared by every gateway instance.
 * Each consume and each refund is exactly one Redis command (an EVALSHA of
 * lua/consume.lua or lua/refund.lua), atomic on the server, with the time
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
  /** Subjects this instance charged since the flusher last asked. */
  private chargedSubjects = new Set<string>();
  private readonly hydrations = new SingleFlight();

  constructor(options: RedisLimiterOptions) {
    this.client = options.client;
    this.keyPrefix = options.keyPrefix;
    this.ownsClient = options.ownsClient ?? false;
    this.nowForTesting = options.nowForTesting;
    this.ledger = options.ledger;
    registerScripts(this.client);
  }

  async consume(request: ConsumeRequest): Promise<Decision> {
    // Nothing to count and nothing to replay: no need to ask Redis.
    if (request.policies.length === 0 && request.idempotencyKey === undefined) {
      return { allowed: true, policies: [], replayed: false };
    }
    const options = {
      keyPrefix: this.keyPrefix,
      idempotencyTtlMs: IDEMPOTENCY_TTL_MS,
      trackUsage: this.ledger !== undefined,
      ...(this.nowForTesting === undefined ? {} : { nowOverrideMs: this.nowForTesting() }),
    };
    for (let attempt = 1; ; attempt++) {
      const answer = await runTrackedConsumeScript(this.client, request, options);
      if (answer !== NEEDS_HYDRATION) {
        if (answer.allowed && answer.receipt !== undefined && this.ledger !== undefined) this.chargedSubjects.add(request.subject);
        return answer;
      }
      if (attempt >= MAX_HYDRATION_ATTEMPTS) throw new Error(`subject still not hydrated after ${attempt} attempts`);
      await this.hydrations.run(request.subject, () => this.hydrate(request.subject));
    }
  }

  async refund(receipt: ChargeReceipt): Promise<void> {
    await runRefundScript(this.client, this.keyPrefix, receipt);
  }

  peek({ subject, policies }: PeekRequest): Promise<PolicyState[]> {
    return runPeekScript(this.client, this.keyPrefix, subject, policies, this.nowForTesting?.());
  }

  reset(subject: string, policies: readonly Policy[]): Promise<void> {
    return deleteCounters(this.client, this.keyPrefix, subject, policies);
  }

  dirtySubjects(includeLeftovers: boolean): Promise<string[]> {
    const charged = this.chargedSubjects;
    this.chargedSubjects = new Set();
    if (!includeLeftovers) return Promise.resolve([...charged]);
    return scanUsageMarkers(this.client, this.keyPrefix).then((found) => [...new Set([...charged, ...found])]);
  }

  readDirty(subject: string): Promise<DirtyUsage | undefined> {
    return readUsageMarker(this.client, this.keyPrefix, subject);
  }

  clearDirty(dirty: DirtyUsage): Promise<boolean> {
    return clearUsageMarker(this.client, this.keyPrefix, dirty);
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
