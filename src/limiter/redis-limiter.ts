import { randomBytes, randomUUID } from 'node:crypto';
import { periodOf } from '../core/calendar.js';
import type { CreditGrantState } from '../core/credits.js';
import type { ChargeReceipt, Decision, PolicyState } from '../core/decision.js';
import type { IdempotencyClaim, IdempotencyTicket, IdempotentDecision, StoredResponse } from '../core/idempotency.js';
import { IDEMPOTENCY_DEFAULTS } from '../config/schema.js';
import type { Policy } from '../core/policy.js';
import { runUndoChargeScript, type UndoChargeInput } from '../redis/charge-undo.js';
import { closeRedisClient, isClusterClient, type RedisClient } from '../redis/client.js';
import { clusterSlotOf } from '../redis/cluster-slots.js';
import { isRedisCommandTimeout, retireRedisConnection } from '../redis/connection-retirement.js';
import { subjectHashTag } from '../redis/keys.js';
import { TurnCoalescedWrites } from '../redis/turn-coalesced-writes.js';
import { highestVersion, type DirtyUsage, type DirtyUsageSource, type UsageHistory } from '../core/usage-ledger.js';
import {
  ConsumeCallParts,
  type ConsumeScriptOptions,
  COUNTER_EXPIRY_GRACE_MS,
  chargeMinuteOf,
  NEEDS_HYDRATION,
  readCreditBalance,
  registerScripts,
  runAddCreditsScript,
  runPeekScript,
  runAdjustScript,
  runResetScript,
  runTrackedConsumeScript,
} from '../redis/scripts.js';
import { runIdempotentConsumeScript, runSettleIdempotencyScript } from '../redis/idempotency-scripts.js';
import { clearUsageMarker, readUsageIndex, readUsageMarker, runHydrateScript, scanUsageMarkers } from '../redis/usage-markers.js';
import { currentPeriodEntries, grantsToRestore, hydrationSinceMs, SingleFlight } from './hydration.js';
import { type ConsumeRequest, type IdempotencyTimes, type Limiter, type PeekRequest } from './limiter.js';
import { type LostChargeOutcome, LostCharges } from './lost-charges.js';
import { StoreCallGate } from './store-call-gate.js';

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
  /**
   * Longest a sent command may go unanswered, in ms (`command_timeout_ms`),
   * counted from when it is sent; a timeout retires the connection. Default:
   * none of the limiter's own, the client's command timeout decides (and
   * retires the connection just the same).
   */
  readonly commandTimeoutMs?: number;
  /** Longest commands wait for a connection that replaces a retired one, in ms (`connect_timeout_ms`). Default 1,000. */
  readonly connectTimeoutMs?: number;
  /** Commands sent and unanswered at once; more wait in the limiter's queue (at most commandTimeoutMs). Default 128. */
  readonly maxInFlight?: number;
  /** Told how each lost charge was settled (the `quotagate_lost_charges_total` metric). */
  readonly onLostCharge?: (outcome: LostChargeOutcome) => void;
  /**
   * Detect quota events (see Limiter) inside consume.lua and append them to
   * the event stream of the subject's slot (src/redis/keys.ts
   * eventStreamKey), trimmed to about `streamMaxLength` entries
   * (`events.stream_max_length`). Absent: no events.
   */
  readonly events?: { readonly streamMaxLength: number };
}

/** A consume call whose reply was lost. */
type LostConsume = UndoChargeInput;

/** A consume request with the request id its call is sent with. */
type IdentifiedConsume = ConsumeRequest & {
  readonly requestId: string;
  /** The minute (chargeMinuteOf, this instance's clock) whose charge records the call writes to. */
  readonly chargeMinute: number;
  /** With an Idempotency-Key: the key and the attempt id its in-flight mark was written under. */
  readonly idempotency?: { readonly key: string; readonly attempt: string };
};

/**
 * What undoing `request`'s call needs: its counters (policies, then meters,
 * as consume.lua got them), its Idempotency-Key's in-flight mark, and the
 * metric of the credits covering its policies (the charge record names what it spent).
 */
function lostConsumeOf(request: IdentifiedConsume): LostConsume {
  const credits = request.policies.find((policy) => policy.credits !== undefined)?.credits;
  return {
    ...(credits === undefined ? {} : { credits: { metric: credits.metric, spendCounterId: credits.counterId } }),
    subject: request.subject,
    requestId: request.requestId,
    chargeMinute: request.chargeMinute,
    counterIds: [...request.policies, ...(request.meters ?? [])].map((counter) => counter.counterId),
    ...(request.idempotency === undefined ? {} : { idempotency: request.idempotency }),
  };
}

const DEFAULT_MAX_IN_FLIGHT = 512;
const DEFAULT_CONNECT_TIMEOUT_MS = 1_000;
/** Without a commandTimeoutMs: the limiter's own deadline, far behind the client's. */
const UNBOUNDED_COMMAND_TIMEOUT_MS = 60_000;
/** Lost charges kept for undoing at most (about 100 bytes each). */
const MAX_LOST_CHARGES = 100_000;

/** consume() tries this often when Redis keeps losing the hydration marker (a FLUSHALL loop). */
const MAX_HYDRATION_ATTEMPTS = 3;

/**
 * A limiter whose counters live in Redis, shared by every gateway instance.
 * Each consume and each refund or adjustment is exactly one Redis command
 * (an EVALSHA of lua/consume.lua or lua/refund.lua), atomic on the server, also with an
 * Idempotency-Key (whose completion is one more, lua/settle-idempotency.lua,
 * after the response), with the time
 * taken from Redis TIME so instances with skewed clocks agree on periods.
 *
 * Denials resolve; connection errors and timeouts reject, for the caller's
 * failure policy (`on_store_error`) to answer.
 *
 * Every command goes through a StoreCallGate: at most `maxInFlight` are sent
 * at once, each timed from when it is sent, and a timeout retires the
 * connection (its replies could otherwise be matched to the wrong commands
 * for good). A consume whose reply was lost may still have charged: it is
 * undone by its request id (lua/undo-charge.lua) as soon as Redis answers
 * again, and always before the ledger flusher reads that subject's usage.
 * So neither a refused request nor a fail-open one forwarded without the
 * store's answer is ever billed.
 */
export class RedisLimiter implements Limiter, DirtyUsageSource {
  private readonly client: RedisClient;
  private readonly keyPrefix: string;
  private readonly ownsClient: boolean;
  private readonly nowForTesting: (() => number) | undefined;
  private readonly ledger: UsageHistory | undefined;
  private readonly events: { readonly streamMaxLength: number } | undefined;
  /** On a Cluster, usage indexes are per slot. */
  private readonly clustered: boolean;
  private readonly hydrations = new SingleFlight();
  private readonly idempotency: IdempotencyTimes;
  private readonly gate: StoreCallGate;
  private readonly lostCharges: LostCharges<LostConsume>;
  private readonly writes: TurnCoalescedWrites;
  /** The script options of every call, when they do not depend on the subject or the test clock (one Redis, real time). */
  private readonly fixedScriptOptions: ConsumeScriptOptions | undefined;
  private readonly callParts = new ConsumeCallParts();
  /** Request ids are this instance's random token and a sequence number. */
  private readonly requestIdPrefix = randomBytes(9).toString('base64url');
  private requestSequence = 0;

  constructor(options: RedisLimiterOptions) {
    this.client = options.client;
    this.keyPrefix = options.keyPrefix;
    this.ownsClient = options.ownsClient ?? false;
    this.nowForTesting = options.nowForTesting;
    this.ledger = options.ledger;
    this.events = options.events;
    this.clustered = isClusterClient(this.client);
    this.idempotency = options.idempotency ?? {
      inFlightTtlMs: IDEMPOTENCY_DEFAULTS.in_flight_ttl_ms,
      ttlMs: IDEMPOTENCY_DEFAULTS.ttl_ms,
    };
    const timeoutMs = options.commandTimeoutMs ?? UNBOUNDED_COMMAND_TIMEOUT_MS;
    this.gate = new StoreCallGate({
      timeoutMs,
      maxInFlight: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
      maxQueueWaitMs: timeoutMs,
      reconnectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      retireConnection: () => retireRedisConnection(this.client),
      isTimeout: isRedisCommandTimeout,
    });
    this.lostCharges = new LostCharges<LostConsume>({
      undo: (charge) => this.undoCharge(charge),
      maxPending: MAX_LOST_CHARGES,
      ...(options.onLostCharge === undefined ? {} : { onOutcome: options.onLostCharge }),
    });
    this.writes = new TurnCoalescedWrites(this.client);
    this.fixedScriptOptions = this.clustered || this.nowForTesting !== undefined ? undefined : this.scriptOptionsNow(undefined);
    this.client.on('ready', this.onClientReady);
    this.client.on('error', this.onClientError);
    registerScripts(this.client);
  }

  private readonly onClientReady = (): void => this.gate.connectionReady();
  private readonly onClientError = (): void => this.gate.connectionFailed();

  async consume(request: ConsumeRequest): Promise<Decision> {
    // Nothing to count: no need to ask Redis.
    if (request.policies.length === 0 && (request.meters?.length ?? 0) === 0) return { allowed: true, policies: [] };
    const options = this.scriptOptions(request.subject);
    const input = { ...request, ...this.nextCallId() };
    for (let attempt = 1; ; attempt++) {
      const answer = await this.send(() => runTrackedConsumeScript(this.client, input, options), input);
      if (answer !== NEEDS_HYDRATION) return answer;
      if (attempt >= MAX_HYDRATION_ATTEMPTS) throw new Error(`subject still not hydrated after ${attempt} attempts`);
      await this.hydrations.run(request.subject, () => this.hydrate(request.subject));
    }
  }

  async consumeIdempotent(request: ConsumeRequest, claim: IdempotencyClaim): Promise<IdempotentDecision> {
    const options = this.scriptOptions(request.subject);
    const attempt = randomUUID();
    const input = { ...request, ...this.nextCallId(), idempotency: { key: claim.key, attempt } };
    for (let tries = 1; ; tries++) {
      const answer = await this.send(() => runIdempotentConsumeScript(this.client, input, { ...claim, attempt }, options), input);
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
    return this.send(() => runSettleIdempotencyScript(this.client, this.keyPrefix, ticket, response, this.idempotency.ttlMs));
  }

  releaseIdempotent(ticket: IdempotencyTicket): Promise<void> {
    return this.send(() => runSettleIdempotencyScript(this.client, this.keyPrefix, ticket, undefined, this.idempotency.ttlMs));
  }

  async refund(receipt: ChargeReceipt): Promise<void> {
    await this.adjust(receipt, -receipt.cost);
  }

  async adjust(receipt: ChargeReceipt, delta: number): Promise<void> {
    const usage = this.ledger === undefined ? undefined : { slot: this.slotOf(receipt.subject) };
    await this.send(() => runAdjustScript(this.client, this.keyPrefix, receipt, delta, usage, this.nowForTesting?.()));
  }

  peek({ subject, policies }: PeekRequest): Promise<PolicyState[]> {
    return this.send(() => runPeekScript(this.client, this.keyPrefix, subject, policies, this.nowForTesting?.()));
  }

  /**
   * One script call (lua/reset-counters.lua): with a ledger, the reset also
   * goes into the usage marker, and resolves to the version it took.
   */
  reset(subject: string, policies: readonly Policy[]): Promise<number | undefined> {
    const trackUsage = this.ledger !== undefined;
    const nowMs = this.nowForTesting?.() ?? Date.now();
    return this.send(() => runResetScript(this.client, this.keyPrefix, subject, policies, { trackUsage, nowMs, slot: this.slotOf(subject) }));
  }

  async addCredits(subject: string, grants: readonly CreditGrantState[]): Promise<void> {
    await this.send(() => runAddCreditsScript(this.client, this.keyPrefix, subject, grants));
  }

  creditBalance(subject: string, metric: string): Promise<number> {
    const nowMs = this.nowForTesting?.() ?? Date.now();
    return this.send(() => readCreditBalance(this.client, this.keyPrefix, subject, metric, nowMs));
  }

  /**
   * Every subject the usage index lists, charged by any instance (a dead one
   * too) and not flushed yet; with `includeLeftovers`, also markers the
   * index does not list (written before it existed), found by SCAN. This
   * instance's lost charges are undone first: the flush that follows must
   * not copy a count that includes one.
   */
  async dirtySubjects(includeLeftovers: boolean): Promise<string[]> {
    await this.lostCharges.drain();
    const listed = await readUsageIndex(this.client, this.keyPrefix);
    if (!includeLeftovers) return listed;
    return [...new Set([...listed, ...(await scanUsageMarkers(this.client, this.keyPrefix))])];
  }

  /**
   * The subject's usage marker. None while a lost charge of the subject is
   * still to be undone here (its counts may include that charge: better
   * not to bill it even for a flush interval); the index keeps listing the subject,
   * so the next flush offers it again.
   */
  async readDirty(subject: string): Promise<DirtyUsage | undefined> {
    if (this.lostCharges.hasPendingFor(subject)) return undefined;
    const dirty = await this.send(() => readUsageMarker(this.client, this.keyPrefix, subject));
    // Flushed by another instance, or expired: the index must not keep listing it.
    if (dirty === undefined) await this.send(() => clearUsageMarker(this.client, this.keyPrefix, subject, '', this.slotOf(subject)));
    return dirty;
  }

  clearDirty(dirty: DirtyUsage): Promise<boolean> {
    return this.send(() => clearUsageMarker(this.client, this.keyPrefix, dirty.subject, String(dirty.version), this.slotOf(dirty.subject)));
  }

  /** The Cluster slot of the subject's keys; undefined on one Redis (one usage index). */
  private slotOf(subject: string): number | undefined {
    return this.clustered ? clusterSlotOf(subjectHashTag(subject)) : undefined;
  }

  /** consume.lua's options for one call about `subject`. */
  private scriptOptions(subject: string): ConsumeScriptOptions {
    return this.fixedScriptOptions ?? this.scriptOptionsNow(subject);
  }

  private scriptOptionsNow(subject: string | undefined): ConsumeScriptOptions {
    return {
      keyPrefix: this.keyPrefix,
      inFlightTtlMs: this.idempotency.inFlightTtlMs,
      trackUsage: this.ledger !== undefined,
      callParts: this.callParts,
      ...(this.events === undefined ? {} : { events: this.events }),
      ...(this.nowForTesting === undefined ? {} : { nowOverrideMs: this.nowForTesting() }),
      ...(this.clustered && subject !== undefined ? { slot: this.slotOf(subject) } : {}),
    };
  }

  /** A new request id, naming one consume call's charge record, and the minute whose records it goes to. */
  private nextCallId(): { readonly requestId: string; readonly chargeMinute: number } {
    return {
      requestId: `${this.requestIdPrefix}.${(this.requestSequence++).toString(36)}`,
      chargeMinute: chargeMinuteOf(Date.now()),
    };
  }

  /** Lost charges still to be undone. */
  get lostChargesPending(): number {
    return this.lostCharges.size;
  }

  /**
   * Sends one command through the gate. If it was sent on a ready connection
   * and then failed, its reply was lost: a `consume` (given) may have charged
   * and is kept for undoing. Once Redis answers, the lost charges are undone.
   */
  private async send<T>(command: () => Promise<T>, consume?: IdentifiedConsume): Promise<T> {
    let sent = false;
    let answer: T;
    try {
      answer = await this.gate.run(() => {
        sent = this.client.status === 'ready';
        this.writes.beforeSend();
        return command();
      });
    } catch (error) {
      if (sent && consume !== undefined) this.lostCharges.add(lostConsumeOf(consume));
      throw error;
    }
    if (this.lostCharges.size > 0) void this.lostCharges.drain();
    return answer;
  }

  /** One lost consume undone by its request id (with a ledger, its usage marker is lowered too). */
  private undoCharge(charge: LostConsume): Promise<number> {
    const slot = this.slotOf(charge.subject);
    return this.gate.run(() =>
      runUndoChargeScript(this.client, this.keyPrefix, slot === undefined ? charge : { ...charge, slot }, this.ledger !== undefined),
    );
  }

  /**
   * Restores the subject's current-period counters, and seeds its version,
   * from the ledger (one query, one script), and before them its credit grants in force with
   * what the ledger counted spent of each (one more query and script, for a
   * ledger that keeps credits): the hydration marker, set last, lets
   * consume.lua decide only once both are back.
   */
  private async hydrate(subject: string): Promise<void> {
    const nowMs = this.nowForTesting?.() ?? Date.now();
    const ledger = this.ledger!;
    const [rows, grants] = await Promise.all([ledger.readUsageSince(subject, hydrationSinceMs(nowMs)), ledger.readCreditGrants?.(subject) ?? []]);
    const restored = grantsToRestore(grants, rows, nowMs);
    if (restored.length > 0) await this.send(() => runAddCreditsScript(this.client, this.keyPrefix, subject, restored));
    const entries = currentPeriodEntries(rows, nowMs).map((entry) => ({
      ...entry,
      ttlMs: entry.endMs - nowMs + COUNTER_EXPIRY_GRACE_MS,
    }));
    const monthEndMs = periodOf('month', nowMs).endMs;
    const markerTtlMs = monthEndMs - nowMs + COUNTER_EXPIRY_GRACE_MS;
    await this.send(() => runHydrateScript(this.client, this.keyPrefix, subject, entries, markerTtlMs, highestVersion(rows)));
  }

  async close(): Promise<void> {
    this.client.off('ready', this.onClientReady);
    this.client.off('error', this.onClientError);
    if (this.ownsClient) await closeRedisClient(this.client);
  }
}
