import { beforeEach, describe, expect, it } from 'vitest';
import type { QuotaEvent } from '../../src/core/quota-events.js';
import type { Database } from '../../src/db/database.js';
import {
  claimDueDeliveries,
  countDeliveries,
  getQuotaEvent,
  InvalidEventCursorError,
  listQuotaEvents,
  recordQuotaEvents,
  requeueDeliveries,
  settleDelivery,
} from '../../src/db/quota-events.js';
import { T0 } from './db-fixtures.js';

/** An event of `subject` at T0 + `minutes`. */
function eventOf(id: string, subject: string, minutes: number, type: QuotaEvent['type'] = 'quota.threshold'): QuotaEvent {
  return { id, type, timestampMs: T0.getTime() + minutes * 60_000, data: { subject, policy: 'hour', threshold: 80 } };
}

/** Quota events and webhook deliveries. Part of the database contract; `use()` gives the suite's migrated, emptied database. */
export function quotaEventsContract(use: () => Database): void {
  let db: Database;
  beforeEach(() => {
    db = use();
  });

  describe('quota events and deliveries', () => {
    it('records an event once with a pending delivery per endpoint; a repeat adds only a missing endpoint', async () => {
      const event = eventOf('evt_1', 'acme', 0);
      await db.transaction((tx) => recordQuotaEvents(tx, [{ event, endpoints: ['billing'] }]));
      await db.transaction((tx) => recordQuotaEvents(tx, [{ event: { ...event, data: { subject: 'changed' } }, endpoints: ['billing', 'audit'] }]));
      const recorded = await getQuotaEvent(db, 'evt_1');
      expect(recorded?.event).toEqual(event);
      expect(recorded?.subjectId).toBe('acme');
      expect(recorded?.deliveries.map((d) => [d.endpoint, d.status, d.attempts])).toEqual([
        ['audit', 'pending', 0],
        ['billing', 'pending', 0],
      ]);
      expect(await countDeliveries(db, ['billing', 'audit'])).toEqual({ due: 2, pending: 2, deadLettered: 0 });
      // An endpoint no longer configured counts for nothing.
      expect(await countDeliveries(db, ['billing'])).toEqual({ due: 1, pending: 1, deadLettered: 0 });
      expect(await getQuotaEvent(db, 'evt_none')).toBeUndefined();
    });

    it('hands each due delivery to one of two concurrent claims, and counts the attempt', async () => {
      const events = Array.from({ length: 10 }, (_, i) => ({ event: eventOf(`evt_${i}`, 'acme', i), endpoints: ['billing'] }));
      await db.transaction((tx) => recordQuotaEvents(tx, events));
      const [a, b] = await Promise.all([claimDueDeliveries(db, 'billing', 10, 60_000), claimDueDeliveries(db, 'billing', 10, 60_000)]);
      const ids = [...a!, ...b!].map((claimed) => claimed.event.id).sort();
      expect(ids).toEqual(events.map((e) => e.event.id).sort());
      expect([...a!, ...b!].every((claimed) => claimed.attempt === 1)).toBe(true);
      expect(a!.map((claimed) => claimed.event.id)).toEqual([...a!].sort((x, y) => x.event.timestampMs - y.event.timestampMs).map((c) => c.event.id));
      // Leased: nothing is due until the lease runs out, and other endpoints are apart.
      expect(await claimDueDeliveries(db, 'billing', 10, 60_000)).toEqual([]);
      expect(await claimDueDeliveries(db, 'other', 10, 60_000)).toEqual([]);
      expect(await countDeliveries(db, ['billing'])).toEqual({ due: 0, pending: 10, deadLettered: 0 });
    });

    it('hands a delivery whose lease ran out to the next claim, and ignores the late outcome of the old attempt', async () => {
      await db.transaction((tx) => recordQuotaEvents(tx, [{ event: eventOf('evt_1', 'acme', 0), endpoints: ['billing'] }]));
      const [first] = await claimDueDeliveries(db, 'billing', 1, 0);
      const [second] = await claimDueDeliveries(db, 'billing', 1, 60_000);
      expect([first?.attempt, second?.attempt]).toEqual([1, 2]);
      expect(await settleDelivery(db, { eventId: 'evt_1', endpoint: 'billing', attempt: 1 }, { kind: 'delivered', status: 200 })).toBe(false);
      expect(await settleDelivery(db, { eventId: 'evt_1', endpoint: 'billing', attempt: 2 }, { kind: 'delivered', status: 204 })).toBe(true);
      const delivery = (await getQuotaEvent(db, 'evt_1'))!.deliveries[0]!;
      expect(delivery).toMatchObject({ status: 'delivered', attempts: 2, lastStatus: 204, lastError: null });
      expect(delivery.deliveredAt).toBeInstanceOf(Date);
      expect(await settleDelivery(db, { eventId: 'evt_1', endpoint: 'billing', attempt: 2 }, { kind: 'retry', retryInMs: 0, status: 500, error: 'http_500' })).toBe(false);
    });

    it('schedules a retry after its backoff, and dead-letters; a redelivery puts every delivery back, due now', async () => {
      await db.transaction((tx) => recordQuotaEvents(tx, [{ event: eventOf('evt_1', 'acme', 0), endpoints: ['billing'] }]));
      const [claimed] = await claimDueDeliveries(db, 'billing', 1, 60_000);
      await settleDelivery(db, { eventId: 'evt_1', endpoint: 'billing', attempt: claimed!.attempt }, { kind: 'retry', retryInMs: 3_600_000, status: 503, error: 'http_503' });
      expect(await claimDueDeliveries(db, 'billing', 1, 60_000)).toEqual([]);
      expect((await getQuotaEvent(db, 'evt_1'))!.deliveries[0]).toMatchObject({ status: 'pending', attempts: 1, lastStatus: 503, lastError: 'http_503' });
      await settleDelivery(db, { eventId: 'evt_1', endpoint: 'billing', attempt: 1 }, { kind: 'dead_lettered', status: null, error: 'timeout' });
      expect(await countDeliveries(db, ['billing'])).toEqual({ due: 0, pending: 0, deadLettered: 1 });
      // Only the endpoints named are requeued (and added when missing); another stays as it is.
      const partly = await db.transaction((tx) => requeueDeliveries(tx, 'evt_1', ['audit']));
      expect(partly.map((d) => [d.endpoint, d.status, d.attempts])).toEqual([
        ['audit', 'pending', 0],
        ['billing', 'dead_lettered', 1],
      ]);
      const requeued = await db.transaction((tx) => requeueDeliveries(tx, 'evt_1', ['audit', 'billing']));
      expect(requeued.map((d) => [d.endpoint, d.status, d.attempts, d.lastError])).toEqual([
        ['audit', 'pending', 0, null],
        ['billing', 'pending', 0, null],
      ]);
      expect((await claimDueDeliveries(db, 'billing', 5, 60_000)).map((c) => c.attempt)).toEqual([1]);
    });

    it('lists newest first, filtered by subject, type, status and time, one page at a time', async () => {
      await db.transaction((tx) =>
        recordQuotaEvents(tx, [
          { event: eventOf('evt_a', 'acme', 0), endpoints: ['billing'] },
          { event: eventOf('evt_b', 'acme', 1, 'quota.exhausted'), endpoints: [] },
          { event: eventOf('evt_c', 'other', 2), endpoints: ['billing'] },
          { event: eventOf('evt_d', 'acme', 3), endpoints: ['billing'] },
        ]),
      );
      const [claimed] = (await claimDueDeliveries(db, 'billing', 3, 60_000)).filter((c) => c.event.id === 'evt_d');
      await settleDelivery(db, { eventId: 'evt_d', endpoint: 'billing', attempt: claimed!.attempt }, { kind: 'delivered', status: 200 });
      const ids = async (options: Parameters<typeof listQuotaEvents>[1]) => (await listQuotaEvents(db, options)).items.map((item) => item.event.id);
      expect(await ids({ limit: 10 })).toEqual(['evt_d', 'evt_c', 'evt_b', 'evt_a']);
      expect(await ids({ limit: 10, subjectId: 'acme' })).toEqual(['evt_d', 'evt_b', 'evt_a']);
      expect(await ids({ limit: 10, type: 'quota.exhausted' })).toEqual(['evt_b']);
      expect(await ids({ limit: 10, status: 'delivered' })).toEqual(['evt_d']);
      expect(await ids({ limit: 10, status: 'pending' })).toEqual(['evt_c', 'evt_a']);
      expect(await ids({ limit: 10, status: 'recorded' })).toEqual(['evt_b']);
      expect(await ids({ limit: 10, since: new Date(T0.getTime() + 60_000) })).toEqual(['evt_d', 'evt_c', 'evt_b']);
      const first = await listQuotaEvents(db, { limit: 3 });
      expect(first.items.map((item) => item.event.id)).toEqual(['evt_d', 'evt_c', 'evt_b']);
      expect(first.items[0]!.deliveries.map((d) => d.status)).toEqual(['delivered']);
      const second = await listQuotaEvents(db, { limit: 3, cursor: first.nextCursor! });
      expect(second).toMatchObject({ nextCursor: undefined });
      expect(second.items.map((item) => item.event.id)).toEqual(['evt_a']);
      await expect(listQuotaEvents(db, { limit: 3, cursor: 'nope' })).rejects.toBeInstanceOf(InvalidEventCursorError);
    });
  });
}
