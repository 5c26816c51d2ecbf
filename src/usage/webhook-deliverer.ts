import type { EventsConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { EventOutbox } from '../core/quota-events.js';
import type { Database } from '../db/database.js';
import { type AttemptOutcome, type ClaimedDelivery, claimDueDeliveries, countDeliveries, type DeliveryCounts, recordQuotaEvents, settleDelivery } from '../db/quota-events.js';
import { backoffDelayMs } from './webhook-backoff.js';
import { type WebhookEndpoint, WebhookSender } from './webhook-sender.js';

/** What an attempt's outcome counts as in `quotagate_webhook_deliveries_total`. */
export type AttemptMetricOutcome = 'delivered' | 'failed_attempt' | 'dead_lettered';

export interface WebhookDelivererOptions {
  readonly outbox: EventOutbox;
  readonly db: Database;
  readonly endpoints: readonly WebhookEndpoint[];
  readonly delivery: EventsConfig['delivery'];
  /** This instance's consumer name in the outbox (unique per process). */
  readonly consumer: string;
  readonly clock: Clock;
  /** [0, 1): the backoff's jitter (Math.random by default). */
  readonly random?: () => number;
  /** Told of each finished attempt: its endpoint, what it counts as, and how long it took (s). */
  readonly onAttempt?: (endpoint: string, outcome: AttemptMetricOutcome, seconds: number) => void;
  /**
   * Told when a step starts failing (outbox or database unreachable), once
   * until it succeeds again (then onRecovered); the loop goes on and retries.
   */
  readonly onError?: (what: DelivererStep, error: unknown) => void;
  readonly onRecovered?: (what: DelivererStep) => void;
}

/** The deliverer's two steps, as its errors name them. */
export type DelivererStep = 'intake' | 'delivery';

/** Events taken from the outbox per claim. */
const INTAKE_BATCH = 100;
/** Claims per intake step at most, so one step ends even under a flood. */
const INTAKE_ROUNDS = 10;
/** How much longer than an attempt's timeout a claimed delivery stays leased, ms: room to write its outcome. */
const LEASE_MARGIN_MS = 5_000;

/**
 * Delivers quota events as signed webhooks, off the request path, at least
 * once. Every `poll_interval_ms` it
 *
 * 1. takes events from the outbox (up to the room `max_pending` leaves),
 *    records each with a pending delivery per subscribed endpoint in the
 *    database, in one transaction, and only then acknowledges them in the
 *    outbox (a crash between the two leaves them to be taken over, and
 *    recording them again changes nothing);
 * 2. per endpoint, claims as many due deliveries as it has free slots
 *    (`concurrency`) and attempts each: a 2xx settles it delivered; a
 *    failure schedules the next attempt after exponential backoff with full
 *    jitter, or after `max_attempts` dead-letters it. While claims come
 *    back full, each attempt that ends claims the next at once, so a
 *    backlog drains at the receiver's pace rather than a batch per poll.
 *
 * Retries therefore live in the database: a deliverer that dies leaves its
 * pending deliveries to any other instance, its in-flight ones once their
 * lease runs out (timeout_ms + 5 s). One instance attempts a delivery at a
 * time (src/db/quota-events.ts). Steps never overlap.
 */
export class WebhookDeliverer {
  private readonly options: WebhookDelivererOptions;
  private readonly sender: WebhookSender;
  private readonly inFlight = new Map<string, number>();
  private readonly endpointNames: readonly string[];
  private readonly attempts = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private step: Promise<void> | undefined;
  private stopped = false;
  private readonly failing = new Set<DelivererStep>();

  constructor(options: WebhookDelivererOptions) {
    this.options = options;
    this.sender = new WebhookSender(options.endpoints, options.delivery.concurrency, options.clock);
    for (const endpoint of options.endpoints) this.inFlight.set(endpoint.name, 0);
    this.endpointNames = options.endpoints.map((endpoint) => endpoint.name);
  }

  /** Runs a step at once, then one every poll_interval_ms until stop(). */
  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    const run = () => {
      this.step = this.runStep().finally(() => {
        this.step = undefined;
        if (!this.stopped) this.timer = setTimeout(run, this.options.delivery.poll_interval_ms);
      });
    };
    this.timer = setTimeout(run, 0);
  }

  /** One intake and one dispatch. Never rejects. */
  private async runStep(): Promise<void> {
    await this.guarded('intake', () => this.intake());
    await this.guarded('delivery', () => this.dispatchDue());
  }

  /** Runs `work`, reporting the first failure of a run of failures and the recovery after it. */
  private async guarded(what: DelivererStep, work: () => Promise<void>): Promise<void> {
    try {
      await work();
      if (this.failing.delete(what)) this.options.onRecovered?.(what);
    } catch (error) {
      if (!this.failing.has(what)) this.options.onError?.(what, error);
      this.failing.add(what);
    }
  }

  /** The queue, for the gauges: outbox entries not yet recorded, and the database's deliveries by state. */
  async queueDepth(): Promise<DeliveryCounts & { readonly outbox: number }> {
    const [outbox, counts] = await Promise.all([this.options.outbox.depth(), countDeliveries(this.options.db, this.endpointNames)]);
    return { outbox, ...counts };
  }

  /** Stops taking work, waits for the step and the attempts in flight (each bounded by its timeout), closes the pools. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.step;
    // Attempts, and the claims of ending ones, until none is left (no new one starts once stopped).
    while (this.attempts.size > 0) await Promise.allSettled([...this.attempts]);
    await this.sender.close();
  }

  private async intake(): Promise<void> {
    const { outbox, db, endpoints, delivery, consumer } = this.options;
    for (let round = 0; round < INTAKE_ROUNDS && !this.stopped; round++) {
      const { pending } = await countDeliveries(db, this.endpointNames);
      const room = delivery.max_pending - pending;
      if (room <= 0) return;
      const entries = await outbox.claim(consumer, Math.min(room, INTAKE_BATCH), delivery.reclaim_after_ms);
      if (entries.length === 0) return;
      await db.transaction((tx) =>
        recordQuotaEvents(
          tx,
          entries.map(({ event }) => ({ event, endpoints: endpoints.filter((endpoint) => endpoint.types.has(event.type)).map((endpoint) => endpoint.name) })),
        ),
      );
      await outbox.acknowledge(entries.map((entry) => entry.entryId));
      if (entries.length < Math.min(room, INTAKE_BATCH)) return;
    }
  }

  private async dispatchDue(): Promise<void> {
    for (const endpoint of this.options.endpoints) await this.dispatchTo(endpoint);
  }

  /**
   * Claims as many due deliveries to `endpoint` as it has free slots and
   * starts their attempts. When the claim filled every slot there may be
   * more due: each attempt that ends then claims again at once, so a
   * backlog drains at the receivers' pace, not one batch per poll.
   */
  private async dispatchTo(endpoint: WebhookEndpoint): Promise<void> {
    const { db, delivery } = this.options;
    const free = delivery.concurrency - (this.inFlight.get(endpoint.name) ?? 0);
    if (free <= 0 || this.stopped) return;
    const claimed = await claimDueDeliveries(db, endpoint.name, free, endpoint.timeoutMs + LEASE_MARGIN_MS);
    const mayHaveMore = claimed.length === free;
    for (const due of claimed) {
      this.inFlight.set(endpoint.name, (this.inFlight.get(endpoint.name) ?? 0) + 1);
      const attempt: Promise<void> = this.attempt(endpoint, due)
        // Only settling can fail here (the database); the lease makes the delivery due again.
        .catch((error: unknown) => this.reportDeliveryError(error))
        .finally(() => {
          this.inFlight.set(endpoint.name, (this.inFlight.get(endpoint.name) ?? 1) - 1);
          if (mayHaveMore && !this.stopped) this.track(this.dispatchTo(endpoint).catch((error: unknown) => this.reportDeliveryError(error)));
        });
      this.track(attempt);
    }
  }

  private track(work: Promise<void>): void {
    this.attempts.add(work);
    void work.finally(() => this.attempts.delete(work));
  }

  private reportDeliveryError(error: unknown): void {
    if (!this.failing.has('delivery')) this.options.onError?.('delivery', error);
  }

  private async attempt(endpoint: WebhookEndpoint, claimed: ClaimedDelivery): Promise<void> {
    const { db, delivery, random } = this.options;
    const key = { eventId: claimed.event.id, endpoint: endpoint.name, attempt: claimed.attempt };
    if (claimed.attempt > delivery.max_attempts) {
      // The last attempt's deliverer stopped before it settled: nothing is left to try.
      await settleDelivery(db, key, { kind: 'dead_lettered', status: null, error: 'attempts_exhausted' });
      this.options.onAttempt?.(endpoint.name, 'dead_lettered', 0);
      return;
    }
    const result = await this.sender.send(endpoint, claimed.event);
    let outcome: AttemptOutcome;
    if (result.ok) outcome = { kind: 'delivered', status: result.status ?? 200 };
    else if (claimed.attempt >= delivery.max_attempts) outcome = { kind: 'dead_lettered', status: result.status, error: result.error };
    else {
      const retryInMs = backoffDelayMs(claimed.attempt, delivery.backoff_base_ms, delivery.backoff_max_ms, random);
      outcome = { kind: 'retry', retryInMs, status: result.status, error: result.error };
    }
    await settleDelivery(db, key, outcome);
    this.options.onAttempt?.(endpoint.name, outcome.kind === 'retry' ? 'failed_attempt' : outcome.kind, result.seconds);
  }
}
