import type { Hono } from 'hono';
import { listEventsPage, redeliverEventAudited } from '../../../admin/events.js';
import { eventStatusOf, type RecordedEvent } from '../../../db/quota-events.js';
import type { AdminRouteDeps } from './deps.js';
import { eventsQuery, queryOf } from './validation.js';

/** Recorded quota events with their webhook deliveries, and redelivery. */
export function eventRoutes(app: Hono, { ctx, config }: AdminRouteDeps): void {
  app.get('/admin/events', async (c) => {
    const query = queryOf(c, eventsQuery);
    const page = await listEventsPage(ctx, {
      limit: query.limit ?? 100,
      subjectId: query.subject,
      type: query.type,
      status: query.status,
      since: query.since,
      cursor: query.cursor,
    });
    return c.json({ items: page.items.map(eventView), next_cursor: page.nextCursor ?? null });
  });
  app.post('/admin/events/:id/redeliver', async (c) => {
    const recorded = await redeliverEventAudited(ctx, config.events.webhooks, c.req.param('id'));
    return c.json(eventView(recorded), 202);
  });
}

/** An event as the admin API shows it: its payload fields, status, and each endpoint's delivery (by name, never URL). */
function eventView(recorded: RecordedEvent) {
  const { event } = recorded;
  return {
    id: event.id,
    type: event.type,
    subject: recorded.subjectId,
    occurred_at: new Date(event.timestampMs).toISOString(),
    recorded_at: recorded.recordedAt.toISOString(),
    status: eventStatusOf(recorded.deliveries),
    data: event.data,
    deliveries: recorded.deliveries.map((delivery) => ({
      endpoint: delivery.endpoint,
      status: delivery.status,
      attempts: delivery.attempts,
      next_attempt_at: delivery.status === 'pending' ? delivery.nextAttemptAt.toISOString() : null,
      last_status: delivery.lastStatus,
      last_error: delivery.lastError,
      delivered_at: delivery.deliveredAt?.toISOString() ?? null,
    })),
  };
}
