import type { EventValue, QuotaEvent, QuotaEventType } from '../core/quota-events.js';
import { type Page, pageLimit, type Queryable, type Transaction } from './database.js';

/**
 * Quota events as recorded by the webhook deliverer, and their delivery to
 * each endpoint (migrations/003_quota_events.sql). Every time below that
 * decides whether a delivery is due is the database's own clock (`now()`),
 * so instances with skewed clocks agree on it.
 *
 * One deliverer per delivery: claimDueDeliveries takes due rows with
 * `FOR UPDATE SKIP LOCKED` (concurrent claims never take one row twice)
 * and pushes their `next_attempt_at` past the attempt (a lease: if the
 * deliverer dies, the row is due again when it runs out); settleDelivery
 * writes an outcome only while the row's `attempts` is still the claimed
 * attempt's number.
 */

export type DeliveryStatus = 'pending' | 'delivered' | 'dead_lettered';

/** An event's status for listings: `recorded` when no endpoint was subscribed to it. */
export type EventStatus = DeliveryStatus | 'recorded';

export const EVENT_STATUSES = ['pending', 'delivered', 'dead_lettered', 'recorded'] as const satisfies readonly EventStatus[];

/** An event to record, and the endpoints (names) it is to be delivered to. */
export interface EventToRecord {
  readonly event: QuotaEvent;
  readonly endpoints: readonly string[];
}

/** One delivery's state. */
export interface Delivery {
  readonly eventId: string;
  readonly endpoint: string;
  readonly status: DeliveryStatus;
  /** Attempts started so far. */
  readonly attempts: number;
  readonly nextAttemptAt: Date;
  /** The HTTP status of the latest answered attempt. */
  readonly lastStatus: number | null;
  /** Why the latest attempt failed (`timeout`, `http_503`, `ECONNREFUSED`); never a URL or secret. */
  readonly lastError: string | null;
  readonly deliveredAt: Date | null;
}

/** A recorded event with its deliveries. */
export interface RecordedEvent {
  readonly event: QuotaEvent;
  readonly subjectId: string | null;
  readonly recordedAt: Date;
  readonly deliveries: readonly Delivery[];
}

/** A delivery claimed for one attempt. */
export interface ClaimedDelivery {
  readonly event: QuotaEvent;
  readonly endpoint: string;
  /** This attempt's number, 1 for the first. */
  readonly attempt: number;
}

/** What became of an attempt. */
export type AttemptOutcome =
  | { readonly kind: 'delivered'; readonly status: number }
  | { readonly kind: 'retry'; readonly retryInMs: number; readonly status: number | null; readonly error: string }
  | { readonly kind: 'dead_lettered'; readonly status: number | null; readonly error: string };

/** How many deliveries wait, by state, for the queue gauges and the queue bound. */
export interface DeliveryCounts {
  /** Pending and due now. */
  readonly due: number;
  /** Pending, due or not (waiting for a backoff, or in flight). */
  readonly pending: number;
  readonly deadLettered: number;
}

const INSERT_EVENT = `
INSERT INTO quota_events (id, type, subject_id, occurred_at, data) VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT (id) DO NOTHING`;
const INSERT_DELIVERIES = `
INSERT INTO webhook_deliveries (event_id, endpoint)
SELECT $1::text, endpoint FROM unnest($2::text[]) AS e (endpoint)
ON CONFLICT (event_id, endpoint) DO NOTHING`;

/**
 * Records each event once, with a pending delivery per endpoint: a repeat
 * of an id (an outbox entry taken twice) changes no row it finds; it only
 * adds a delivery for an endpoint the event has none for.
 */
export async function recordQuotaEvents(tx: Transaction, events: readonly EventToRecord[]): Promise<void> {
  for (const { event, endpoints } of events) {
    const subject = event.data.subject;
    await tx.query(INSERT_EVENT, [event.id, event.type, typeof subject === 'string' ? subject : null, new Date(event.timestampMs), event.data]);
    if (endpoints.length > 0) await tx.query(INSERT_DELIVERIES, [event.id, endpoints]);
  }
}

interface ClaimRow {
  event_id: string;
  endpoint: string;
  attempts: number;
  type: string;
  occurred_at: Date;
  data: Record<string, EventValue>;
}

const CLAIM_DUE = `
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = now() + $3::int * interval '1 millisecond', updated_at = now()
FROM (
  SELECT event_id, endpoint FROM webhook_deliveries
  WHERE endpoint = $1 AND status = 'pending' AND next_attempt_at <= now()
  ORDER BY next_attempt_at, event_id
  LIMIT $2
  FOR UPDATE SKIP LOCKED
) due, quota_events e
WHERE d.event_id = due.event_id AND d.endpoint = due.endpoint AND e.id = d.event_id
RETURNING d.event_id, d.endpoint, d.attempts, e.type, e.occurred_at, e.data`;

/**
 * Up to `limit` due deliveries to `endpoint`, oldest first, each claimed for
 * one attempt: its `attempts` counted up and its next attempt pushed
 * `leaseMs` away (longer than an attempt may take), so no other claim takes
 * it meanwhile, and a deliverer that dies leaves it due again after that.
 */
export async function claimDueDeliveries(q: Queryable, endpoint: string, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const rows = await q.query<ClaimRow>(CLAIM_DUE, [endpoint, limit, Math.ceil(leaseMs)]);
  return rows
    .map((row) => ({
      endpoint: row.endpoint,
      attempt: row.attempts,
      event: { id: row.event_id, type: row.type as QuotaEventType, timestampMs: row.occurred_at.getTime(), data: row.data },
    }))
    .sort((a, b) => a.event.timestampMs - b.event.timestampMs || (a.event.id < b.event.id ? -1 : 1));
}

const SETTLE = `
UPDATE webhook_deliveries
SET status = $4,
    next_attempt_at = CASE WHEN $4 = 'pending' THEN now() + $5::int * interval '1 millisecond' ELSE next_attempt_at END,
    last_status = COALESCE($6::int, last_status),
    last_error = $7,
    delivered_at = CASE WHEN $4 = 'delivered' THEN now() ELSE delivered_at END,
    updated_at = now()
WHERE event_id = $1 AND endpoint = $2 AND attempts = $3 AND status = 'pending'
RETURNING event_id`;

/**
 * Writes attempt `attempt`'s outcome; false (nothing written) when the row
 * moved on meanwhile (redelivered, or taken by another deliverer after this
 * one's lease ran out).
 */
export async function settleDelivery(q: Queryable, claimed: Pick<ClaimedDelivery, 'endpoint' | 'attempt'> & { eventId: string }, outcome: AttemptOutcome): Promise<boolean> {
  const status: DeliveryStatus = outcome.kind === 'retry' ? 'pending' : outcome.kind;
  const rows = await q.query(SETTLE, [
    claimed.eventId,
    claimed.endpoint,
    claimed.attempt,
    status,
    outcome.kind === 'retry' ? Math.ceil(outcome.retryInMs) : 0,
    outcome.status,
    outcome.kind === 'delivered' ? null : outcome.error.slice(0, 200),
  ]);
  return rows.length === 1;
}

const COUNTS = `
SELECT
  (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now() AND endpoint = ANY($1::text[])) AS due,
  (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND endpoint = ANY($1::text[])) AS pending,
  (SELECT count(*) FROM webhook_deliveries WHERE status = 'dead_lettered' AND endpoint = ANY($1::text[])) AS dead`;

/**
 * How many deliveries to `endpoints` are due, pending and dead-lettered
 * (three index scans). Only the named endpoints count: the rows of an
 * endpoint taken out of the config stay as they were, and must neither fill
 * the queue's bound nor hold up its gauges.
 */
export async function countDeliveries(q: Queryable, endpoints: readonly string[]): Promise<DeliveryCounts> {
  const [row] = await q.query<{ due: number; pending: number; dead: number }>(COUNTS, [endpoints]);
  return { due: row!.due, pending: row!.pending, deadLettered: row!.dead };
}

const REQUEUE = `
UPDATE webhook_deliveries
SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL, delivered_at = NULL, updated_at = now()
WHERE event_id = $1 AND endpoint = ANY($2::text[])`;

/**
 * Puts the event's deliveries to `endpoints` (the configured endpoints
 * subscribed to its type) back to pending, due now, with a fresh count of
 * attempts, adding those it lacks (an endpoint subscribed since it was
 * recorded); deliveries to other endpoints stay as they are. An attempt
 * still in flight then settles nothing (its number is gone). Resolves to
 * all the event's deliveries.
 */
export async function requeueDeliveries(tx: Transaction, eventId: string, endpoints: readonly string[]): Promise<Delivery[]> {
  if (endpoints.length > 0) await tx.query(INSERT_DELIVERIES, [eventId, endpoints]);
  await tx.query(REQUEUE, [eventId, endpoints]);
  return deliveriesOf(tx, [eventId]);
}

interface EventRow {
  id: string;
  type: string;
  subject_id: string | null;
  occurred_at: Date;
  recorded_at: Date;
  data: Record<string, EventValue>;
}

interface DeliveryRow {
  event_id: string;
  endpoint: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  last_status: number | null;
  last_error: string | null;
  delivered_at: Date | null;
}

const SELECT_DELIVERIES = `
SELECT event_id, endpoint, status, attempts, next_attempt_at, last_status, last_error, delivered_at
FROM webhook_deliveries WHERE event_id = ANY($1::text[]) ORDER BY event_id, endpoint`;

async function deliveriesOf(q: Queryable, eventIds: readonly string[]): Promise<Delivery[]> {
  if (eventIds.length === 0) return [];
  const rows = await q.query<DeliveryRow>(SELECT_DELIVERIES, [eventIds]);
  return rows.map((row) => ({
    eventId: row.event_id,
    endpoint: row.endpoint,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastStatus: row.last_status,
    lastError: row.last_error,
    deliveredAt: row.delivered_at,
  }));
}

const EVENT_COLUMNS = 'id, type, subject_id, occurred_at, recorded_at, data';

/** The event `id` with its deliveries, or undefined. */
export async function getQuotaEvent(q: Queryable, id: string): Promise<RecordedEvent | undefined> {
  const rows = await q.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM quota_events WHERE id = $1`, [id]);
  if (rows.length === 0) return undefined;
  return toRecorded(rows[0]!, await deliveriesOf(q, [id]));
}

export interface ListEventsOptions {
  readonly subjectId?: string | undefined;
  readonly type?: QuotaEventType | undefined;
  readonly status?: EventStatus | undefined;
  /** Events that occurred at or after this instant. */
  readonly since?: Date | undefined;
  /** `nextCursor` of the previous page. */
  readonly cursor?: string | undefined;
  /** Events per page, 1–1000. */
  readonly limit: number;
}

/** A cursor that listQuotaEvents did not hand out. */
export class InvalidEventCursorError extends Error {
  override readonly name = 'InvalidEventCursorError';
}

// Each filter applies when its parameter is not null; an event's status is
// pending while any delivery is, then dead_lettered while any is, then
// delivered; recorded without deliveries. Newest first; the cursor ($5, $6)
// is the (occurred_at, id) of the previous page's last event.
const SELECT_PAGE = `
SELECT ${EVENT_COLUMNS} FROM quota_events e
WHERE ($1::text IS NULL OR e.subject_id = $1)
  AND ($2::text IS NULL OR e.type = $2)
  AND ($3::timestamptz IS NULL OR e.occurred_at >= $3)
  AND ($4::text IS NULL OR $4 = CASE
        WHEN EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending') THEN 'pending'
        WHEN EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'dead_lettered') THEN 'dead_lettered'
        WHEN EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id) THEN 'delivered'
        ELSE 'recorded' END)
  AND ($5::timestamptz IS NULL OR (e.occurred_at, e.id) < ($5, $6::text))
ORDER BY e.occurred_at DESC, e.id DESC
LIMIT $7`;

/** Events matching every given filter, newest first, one page at a time; InvalidEventCursorError for a foreign cursor. */
export async function listQuotaEvents(q: Queryable, options: ListEventsOptions): Promise<Page<RecordedEvent>> {
  const limit = pageLimit(options.limit);
  const after = options.cursor === undefined ? undefined : parseEventCursor(options.cursor);
  const rows = await q.query<EventRow>(SELECT_PAGE, [
    options.subjectId ?? null,
    options.type ?? null,
    options.since ?? null,
    options.status ?? null,
    after?.at ?? null,
    after?.id ?? null,
    limit + 1,
  ]);
  const pageRows = rows.slice(0, limit);
  const deliveries = await deliveriesOf(q, pageRows.map((row) => row.id));
  const items = pageRows.map((row) => toRecorded(row, deliveries.filter((delivery) => delivery.eventId === row.id)));
  const last = pageRows.at(-1);
  return { items, nextCursor: rows.length > limit && last !== undefined ? eventCursor(last.occurred_at, last.id) : undefined };
}

/** An event's status: pending while any delivery is, then dead_lettered while any is, then delivered; recorded without deliveries. */
export function eventStatusOf(deliveries: readonly Pick<Delivery, 'status'>[]): EventStatus {
  if (deliveries.length === 0) return 'recorded';
  if (deliveries.some((delivery) => delivery.status === 'pending')) return 'pending';
  if (deliveries.some((delivery) => delivery.status === 'dead_lettered')) return 'dead_lettered';
  return 'delivered';
}

function eventCursor(at: Date, id: string): string {
  return `${at.getTime()}.${Buffer.from(id).toString('base64url')}`;
}

const CURSOR_PATTERN = /^(\d{1,15})\.([A-Za-z0-9_-]{1,140})$/;

/** Whether `cursor` has the form of one listQuotaEvents hands out. */
export function isEventCursor(cursor: string): boolean {
  return CURSOR_PATTERN.test(cursor);
}

function parseEventCursor(cursor: string): { at: Date; id: string } {
  const match = CURSOR_PATTERN.exec(cursor);
  if (match === null) throw new InvalidEventCursorError(`invalid event cursor "${cursor.slice(0, 40)}"`);
  return { at: new Date(Number(match[1])), id: Buffer.from(match[2]!, 'base64url').toString('utf8') };
}

function toRecorded(row: EventRow, deliveries: readonly Delivery[]): RecordedEvent {
  return {
    event: { id: row.id, type: row.type as QuotaEventType, timestampMs: row.occurred_at.getTime(), data: row.data },
    subjectId: row.subject_id,
    recordedAt: row.recorded_at,
    deliveries,
  };
}
