import type { Cluster, Redis } from 'ioredis';
import { decodeStreamEntry, type QuotaEvent } from '../../src/core/quota-events.js';
import { isClusterClient } from '../../src/redis/client.js';
import { clusterSlotOf } from '../../src/redis/cluster-slots.js';
import { eventStreamKey, subjectHashTag } from '../../src/redis/keys.js';

/**
 * The events about `subject` in the event stream consume.lua writes them
 * to (on a Cluster, the stream of the subject's slot), oldest first, read
 * whole with XRANGE; entries that are not events fail the test.
 */
export async function readEventStream(client: Redis | Cluster, keyPrefix: string, subject: string): Promise<QuotaEvent[]> {
  const slot = isClusterClient(client) ? clusterSlotOf(subjectHashTag(subject)) : undefined;
  const entries = await client.xrange(eventStreamKey(keyPrefix, slot), '-', '+');
  return entries
    .map(([entryId, fields]) => {
      const event = decodeStreamEntry(fields);
      if (event === undefined) throw new Error(`stream entry ${entryId} is not an event: ${JSON.stringify(fields)}`);
      return event;
    })
    .filter((event) => event.data['subject'] === subject);
}
