import type { EventsConfig } from '../config/schema.js';
import { webhookName } from '../config/schema.js';
import { GatewayError } from '../core/errors.js';
import type { Page } from '../db/database.js';
import { getQuotaEvent, InvalidEventCursorError, type ListEventsOptions, listQuotaEvents, type RecordedEvent, requeueDeliveries } from '../db/quota-events.js';
import { type AdminContext, audited, validationError } from './admin-context.js';

/**
 * Quota events as the webhook deliverer recorded them (docs/events.md):
 * listing them with their deliveries, and redelivering one (audited).
 */

/** 404 `event_not_found`. */
function eventNotFound(id: string): GatewayError {
  return new GatewayError('event_not_found', `There is no recorded event "${id}".`);
}

/** The audit target of an event. */
function eventTarget(id: string): string {
  return `event:${id}`;
}

/** One page of recorded events, newest first; 400 `validation_failed` at `cursor` for one this API did not hand out. */
export async function listEventsPage(ctx: Pick<AdminContext, 'db'>, options: ListEventsOptions): Promise<Page<RecordedEvent>> {
  try {
    return await listQuotaEvents(ctx.db, options);
  } catch (error) {
    if (error instanceof InvalidEventCursorError) throw validationError('cursor', 'not a cursor this API handed out');
    throw error;
  }
}

/**
 * Puts event `id`'s delivery to each configured endpoint subscribed to its
 * type back to pending, due now, with its attempts counted afresh
 * (delivered ones too: a receiver dedupes by `webhook-id`), adding the ones
 * it lacks; any instance's deliverer sends them. Audited as
 * `event.redeliver`. 404 `event_not_found`.
 */
export async function redeliverEventAudited(ctx: AdminContext, webhooks: EventsConfig['webhooks'], id: string): Promise<RecordedEvent> {
  return audited(ctx, 'event.redeliver', async (tx) => {
    const recorded = await getQuotaEvent(tx, id);
    if (recorded === undefined) throw eventNotFound(id);
    const subscribed = webhooks.flatMap((webhook, index) => ((webhook.types as readonly string[]).includes(recorded.event.type) ? [webhookName(webhook, index)] : []));
    const deliveries = await requeueDeliveries(tx, id, subscribed);
    return {
      result: { ...recorded, deliveries },
      target: eventTarget(id),
      subjectId: recorded.subjectId,
      details: { type: recorded.event.type, endpoints: deliveries.map((delivery) => delivery.endpoint) },
    };
  });
}
