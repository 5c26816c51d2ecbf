/**
 * Quota events: what the limiter detects inside its atomic decision
 * (threshold crossings, the first denial of a period, credits running low or
 * out) or beside it (denial spikes), written to a durable outbox in the same
 * step, and delivered later — never on the request path — as signed
 * webhooks (src/usage/).
 *
 * Producers: lua/consume.lua (Redis: XADD to the subject slot's event
 * stream, see src/redis/keys.ts eventStreamKey) and the memory limiter (a
 * MemoryEventOutbox). Consumer: the webhook deliverer, through EventOutbox.
 */

/** Every event type a webhook endpoint may subscribe to (`events.webhooks[].types`). */
export const QUOTA_EVENT_TYPES = [
  'quota.threshold',
  'quota.exhausted',
  'credits.low',
  'credits.exhausted',
  'subject.denial_spike',
] as const;

export type QuotaEventType = (typeof QUOTA_EVENT_TYPES)[number];

/** A JSON value carried in an event's data. */
export type EventValue = string | number | boolean | null;

/**
 * One event, as delivered (the Standard Webhooks payload is
 * `{"type", "timestamp", "data"}`; `id` is the `webhook-id`).
 */
export interface QuotaEvent {
  /**
   * Stable and unique per occurrence: a producer derives it from what makes
   * the occurrence unique (subject, policy, period start, threshold), so a
   * redelivery or a duplicate write carries the same id. At most 100
   * characters of [A-Za-z0-9_.:-] (no subject text in it: a hash of it).
   */
  readonly id: string;
  readonly type: QuotaEventType;
  /** When the producer detected it, epoch milliseconds (the store's clock). */
  readonly timestampMs: number;
  /**
   * The payload's `data`. For `quota.threshold`: subject, plan, policy
   * (the RateLimit-Policy item name), threshold (percent), used, limit,
   * period_start and period_end (ISO 8601 UTC; period_end null for a
   * lifetime quota).
   */
  readonly data: Readonly<Record<string, EventValue>>;
}

/** An event waiting in the outbox, as a deliverer claimed it. */
export interface OutboxEntry {
  /** The outbox's own id of the entry (a Redis stream entry id), for acknowledge(). */
  readonly entryId: string;
  readonly event: QuotaEvent;
  /** How many times the entry was claimed, this claim included (1 the first time). */
  readonly claims: number;
}

/**
 * The durable queue between producers and the deliverer.
 *
 * Contract: an appended event is claimed by one consumer at a time; an entry
 * claimed but not acknowledged within `reclaimAfterMs` (its consumer
 * crashed) is handed to the next consumer that claims, with `claims`
 * counting up; an acknowledged entry is never claimed again. Entries are
 * claimed in the order they were appended, per stream.
 */
export interface EventOutbox {
  /** Appends events produced outside a limiter script (denial spikes). */
  append(events: readonly QuotaEvent[]): Promise<void>;
  /** Up to `count` entries for `consumer`: reclaimed ones first, then new ones. */
  claim(consumer: string, count: number, reclaimAfterMs: number): Promise<OutboxEntry[]>;
  /** Marks entries done (delivered, or given up on and dead-lettered elsewhere). */
  acknowledge(entryIds: readonly string[]): Promise<void>;
  /** Entries appended and not yet acknowledged: the queue depth. */
  depth(): Promise<number>;
  close(): Promise<void>;
}

/**
 * The fields of an event's Redis stream entry (XADD … id <id> type <type>
 * ts <ms> data <json>), written by lua/consume.lua and read back by
 * decodeStreamEntry.
 */
export function encodeStreamFields(event: QuotaEvent): string[] {
  return ['id', event.id, 'type', event.type, 'ts', String(event.timestampMs), 'data', JSON.stringify(event.data)];
}

/** The event of a stream entry's flat field list, or undefined when it is not one (a foreign or damaged entry). */
export function decodeStreamEntry(fields: readonly string[]): QuotaEvent | undefined {
  const byName = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) byName.set(fields[i]!, fields[i + 1]!);
  const id = byName.get('id');
  const type = byName.get('type');
  const ts = Number(byName.get('ts'));
  const raw = byName.get('data');
  if (id === undefined || type === undefined || raw === undefined || !Number.isFinite(ts)) return undefined;
  if (!(QUOTA_EVENT_TYPES as readonly string[]).includes(type)) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  return { id, type: type as QuotaEventType, timestampMs: ts, data: data as Record<string, EventValue> };
}
