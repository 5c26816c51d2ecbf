import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The webhook queue as a scrape reads it (WebhookDeliverer.queueDepth). */
export interface WebhookQueueDepth {
  /** Outbox entries not yet taken into the database. */
  readonly outbox: number;
  /** Deliveries pending and due now: the backlog. */
  readonly due: number;
  /** Deliveries pending, due or waiting for their backoff (or in flight). */
  readonly pending: number;
  readonly deadLettered: number;
}

/** What the deliverer reports each attempt as (quotagate_webhook_deliveries_total's `outcome`). */
export type WebhookAttemptOutcome = 'delivered' | 'failed_attempt' | 'dead_lettered';

const OUTCOMES: readonly WebhookAttemptOutcome[] = ['delivered', 'failed_attempt', 'dead_lettered'];

/** Attempts take up to timeout_ms (≤ 60 s): buckets from 5 ms to a minute. */
const DELIVERY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The webhook metrics, registered when `events.webhooks` names an endpoint:
 * attempts by endpoint (its name, never its URL) and outcome, their
 * duration, and the queue's gauges, read from the outbox and the database
 * when Prometheus scrapes (a failed read leaves the last values). Every
 * endpoint × outcome series starts at 0, so rate() and increase() see the
 * first attempt. Returns what the deliverer calls after each attempt.
 */
export function registerWebhookMetrics(
  registry: Registry,
  endpoints: readonly string[],
  readQueue: () => Promise<WebhookQueueDepth>,
): { onAttempt(endpoint: string, outcome: WebhookAttemptOutcome, seconds: number): void } {
  const deliveries = new Counter({
    name: 'quotagate_webhook_deliveries_total',
    help: 'Webhook delivery attempts by endpoint and outcome: delivered (2xx), failed_attempt (retried later), dead_lettered (the last attempt failed).',
    labelNames: ['endpoint', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'quotagate_webhook_delivery_duration_seconds',
    help: 'Duration of one webhook delivery attempt, until the answer or the failure, in seconds.',
    labelNames: ['endpoint'],
    buckets: DELIVERY_BUCKETS_SECONDS,
    registers: [registry],
  });
  for (const endpoint of endpoints) for (const outcome of OUTCOMES) deliveries.inc({ endpoint, outcome }, 0);

  // The gauges of one scrape are collected together: they share the read in flight.
  let inFlight: Promise<WebhookQueueDepth | undefined> | undefined;
  const read = (): Promise<WebhookQueueDepth | undefined> => {
    inFlight ??= readQueue()
      .catch(() => undefined)
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
  const queueGauge = (name: string, help: string, pick: (depth: WebhookQueueDepth) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const depth = await read();
        if (depth !== undefined) this.set(pick(depth));
      },
    });
  queueGauge('quotagate_event_outbox_depth', 'Quota events in the outbox not yet taken by a deliverer (all instances).', (d) => d.outbox);
  queueGauge('quotagate_webhook_deliveries_due', 'Webhook deliveries pending and due now: the backlog (all instances).', (d) => d.due);
  queueGauge('quotagate_webhook_deliveries_pending', 'Webhook deliveries pending: due, waiting for a retry, or in flight (all instances).', (d) => d.pending);
  queueGauge('quotagate_webhook_dead_letters', 'Webhook deliveries dead-lettered and not redelivered (all instances).', (d) => d.deadLettered);

  return {
    onAttempt(endpoint, outcome, seconds) {
      deliveries.inc({ endpoint, outcome });
      if (seconds > 0) duration.observe({ endpoint }, seconds);
    },
  };
}
