import type { ChargeReceipt, Decision, PolicyState } from '../core/decision.js';
import type { Policy } from '../core/policy.js';
import { closeRedisClient, type RedisClient } from '../redis/client.js';
import { deleteCounters, registerScripts, runConsumeScript, runPeekScript, runRefundScript } from '../redis/scripts.js';
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
}

/**
 * A limiter whose counters live in Redis, shared by every gateway instance.
 * Each consume and each refund is exactly one Redis command (an EVALSHA of
 * lua/consume.lua or lua/refund.lua), atomic on the server, with the time
 * taken from Redis TIME so instances with skewed clocks agree on periods.
 *
 * Denials resolve; connection errors and timeouts reject, for the caller's
 * failure policy (`on_store_error`) to answer.
 */
export class RedisLimiter implements Limiter {
  private readonly client: RedisClient;
  private readonly keyPrefix: string;
  private readonly ownsClient: boolean;
  private readonly nowForTesting: (() => number) | undefined;

  constructor(options: RedisLimiterOptions) {
    this.client = options.client;
    this.keyPrefix = options.keyPrefix;
    this.ownsClient = options.ownsClient ?? false;
    this.nowForTesting = options.nowForTesting;
    registerScripts(this.client);
  }

  async consume(request: ConsumeRequest): Promise<Decision> {
    // Nothing to count and nothing to replay: no need to ask Redis.
    if (request.policies.length === 0 && request.idempotencyKey === undefined) {
      return { allowed: true, policies: [], replayed: false };
    }
    return runConsumeScript(this.client, request, {
      keyPrefix: this.keyPrefix,
      idempotencyTtlMs: IDEMPOTENCY_TTL_MS,
      ...(this.nowForTesting === undefined ? {} : { nowOverrideMs: this.nowForTesting() }),
    });
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

  async close(): Promise<void> {
    if (this.ownsClient) await closeRedisClient(this.client);
  }
}
