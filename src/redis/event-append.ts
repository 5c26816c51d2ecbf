import { encodeStreamFields, type QuotaEvent } from '../core/quota-events.js';
import { clusterSlotOf } from './cluster-slots.js';
import { isClusterClient, type RedisClient } from './client.js';
import { eventStreamKey, subjectHashTag } from './keys.js';

/**
 * Appends events produced outside a limiter script (denial spikes) to the
 * event stream their subject's events go to (eventStreamKey: the store's
 * one, or on a Cluster the subject slot's), one XADD each, in the
 * contract's format (encodeStreamFields); the subject of an event is its
 * `data.subject`. Nothing is trimmed here: the deliverer owns the stream's length.
 */
export async function appendEventsToStream(client: RedisClient, keyPrefix: string, events: readonly QuotaEvent[]): Promise<void> {
  const clustered = isClusterClient(client);
  await Promise.all(
    events.map((event) => {
      const subject = String(event.data.subject ?? '');
      const key = eventStreamKey(keyPrefix, clustered ? clusterSlotOf(subjectHashTag(subject)) : undefined);
      return client.xadd(key, '*', ...encodeStreamFields(event));
    }),
  );
}
