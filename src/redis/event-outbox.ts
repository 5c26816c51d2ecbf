import { Cluster, type Redis } from 'ioredis';
import { decodeStreamEntry, encodeStreamFields, type EventOutbox, type OutboxEntry, type QuotaEvent } from '../core/quota-events.js';
import { closeRedisClient, type RedisClient } from './client.js';
import { clusterSlotOf } from './cluster-slots.js';
import { eventStreamKey, eventStreamPattern, usageMarkerKey } from './keys.js';

/**
 * The Redis store's outbox: the event streams lua/consume.lua appends to
 * (src/redis/keys.ts eventStreamKey: one stream, or on a Cluster one per
 * slot that has had an event), read through one consumer group, so each
 * entry goes to one consumer at a time and a crashed consumer's entries
 * are taken over (XAUTOCLAIM) by the next one that claims after
 * `reclaimAfterMs`.
 *
 * Acknowledging an entry XACKs and XDELs it: a stream holds only what is not
 * yet acknowledged, so its length is the queue depth (the producer's MAXLEN
 * bounds it when nothing consumes). No call blocks: a claim reads what is
 * there and returns, so the client may be shared with other off-path work.
 */
export class RedisEventOutbox implements EventOutbox {
  private readonly client: RedisClient;
  private readonly keyPrefix: string;
  private readonly group: string;
  private readonly ownsClient: boolean;
  private readonly streamRefreshMs: number;
  private readonly appendMaxLength: number;
  private readonly nowMs: () => number;
  /** Streams whose consumer group this instance created or found. */
  private readonly grouped = new Set<string>();
  private clusterStreams: { keys: string[]; atMs: number } | undefined;
  private lastReclaimMs = Number.NEGATIVE_INFINITY;
  private nextStart = 0;

  constructor(options: {
    readonly client: RedisClient;
    readonly keyPrefix: string;
    /** The consumer group every deliverer joins; default `quotagate-webhooks`. */
    readonly group?: string;
    /** Close the client with the outbox. */
    readonly ownsClient?: boolean;
    /** On a Cluster, how long the list of slot streams found by SCAN is reused, ms (default 10 s): a slot's first stream is read within it. */
    readonly streamRefreshMs?: number;
    /** The approximate MAXLEN of append()'s XADD (default 100,000). */
    readonly appendMaxLength?: number;
    readonly nowMs?: () => number;
  }) {
    this.client = options.client;
    this.keyPrefix = options.keyPrefix;
    this.group = options.group ?? 'quotagate-webhooks';
    this.ownsClient = options.ownsClient ?? false;
    this.streamRefreshMs = options.streamRefreshMs ?? 10_000;
    this.appendMaxLength = options.appendMaxLength ?? 100_000;
    this.nowMs = options.nowMs ?? Date.now;
  }

  /** XADD of each event to its subject's stream (the one stream, or on a Cluster its slot's), as lua/consume.lua writes them. */
  async append(events: readonly QuotaEvent[]): Promise<void> {
    for (const event of events) {
      const stream = this.streamOf(event);
      await this.client.xadd(stream, 'MAXLEN', '~', this.appendMaxLength, '*', ...encodeStreamFields(event));
      if (this.clusterStreams !== undefined && !this.clusterStreams.keys.includes(stream)) this.clusterStreams.keys.push(stream);
    }
  }

  async claim(consumer: string, count: number, reclaimAfterMs: number): Promise<OutboxEntry[]> {
    const claimed: OutboxEntry[] = [];
    // Only streams holding entries are read: on a Cluster of many slot streams an idle poll costs one XLEN pipeline per primary.
    const lengths = await this.streamLengths(await this.streams());
    const now = this.nowMs();
    const reclaimDue = now - this.lastReclaimMs >= Math.min(reclaimAfterMs, RECLAIM_CHECK_INTERVAL_MS);
    if (reclaimDue) this.lastReclaimMs = now;
    // Each claim starts at the next stream, so a busy slot's stream cannot starve the others.
    const order = [...lengths];
    const start = order.length === 0 ? 0 : this.nextStart++ % order.length;
    for (const [stream, length] of [...order.slice(start), ...order.slice(0, start)]) {
      if (claimed.length >= count) break;
      if (length === 0) continue;
      await this.ensureGroup(stream);
      try {
        if (reclaimDue) claimed.push(...(await this.reclaim(stream, consumer, count - claimed.length, reclaimAfterMs)));
        if (claimed.length < count) claimed.push(...(await this.readNew(stream, consumer, count - claimed.length)));
      } catch (error) {
        // The stream or its group vanished (a flush, a failover to an empty node): made again on the next claim.
        if (error instanceof Error && error.message.startsWith('NOGROUP')) this.grouped.delete(stream);
        else throw error;
      }
    }
    return claimed;
  }

  async acknowledge(entryIds: readonly string[]): Promise<void> {
    const byStream = new Map<string, string[]>();
    for (const entryId of entryIds) {
      const { stream, id } = parseEntryId(entryId);
      let ids = byStream.get(stream);
      if (ids === undefined) byStream.set(stream, (ids = []));
      ids.push(id);
    }
    for (const [stream, ids] of byStream) {
      await this.client.xack(stream, this.group, ...ids);
      await this.client.xdel(stream, ...ids);
    }
  }

  /** XLEN of every stream: the entries not yet acknowledged (acknowledged ones are deleted). */
  async depth(): Promise<number> {
    let total = 0;
    for (const length of (await this.streamLengths(await this.streams())).values()) total += length;
    return total;
  }

  /** XLEN of each of `streams`, in their order: one command on one Redis; on a Cluster one pipeline per primary. */
  private async streamLengths(streams: readonly string[]): Promise<Map<string, number>> {
    const lengths = new Map<string, number>(streams.map((stream) => [stream, 0]));
    if (!(this.client instanceof Cluster)) {
      for (const stream of streams) lengths.set(stream, await this.client.xlen(stream));
      return lengths;
    }
    const cluster = this.client;
    const byNode = new Map<string, string[]>();
    for (const stream of streams) {
      const primary = cluster.slots[clusterSlotOf(stream)]?.[0];
      if (primary === undefined) continue;
      let keys = byNode.get(primary);
      if (keys === undefined) byNode.set(primary, (keys = []));
      keys.push(stream);
    }
    await Promise.all(
      cluster.nodes('master').map(async (node: Redis) => {
        const keys = byNode.get(`${node.options.host}:${node.options.port}`) ?? [];
        if (keys.length === 0) return;
        const pipeline = node.pipeline();
        for (const key of keys) pipeline.xlen(key);
        const replies = (await pipeline.exec()) ?? [];
        replies.forEach(([error, length], i) => {
          // A slot that moved meanwhile (MOVED) is read on the next poll, once the client's slot map caught up.
          if (error === null) lengths.set(keys[i]!, Number(length));
        });
      }),
    );
    return lengths;
  }

  async close(): Promise<void> {
    if (this.ownsClient) await closeRedisClient(this.client);
  }

  private streamOf(event: QuotaEvent): string {
    if (!(this.client instanceof Cluster)) return eventStreamKey(this.keyPrefix);
    const subject = typeof event.data.subject === 'string' ? event.data.subject : event.id;
    return eventStreamKey(this.keyPrefix, clusterSlotOf(usageMarkerKey(this.keyPrefix, subject)));
  }

  /** The one stream; on a Cluster every slot stream a SCAN of each primary finds, reused for streamRefreshMs. */
  private async streams(): Promise<string[]> {
    if (!(this.client instanceof Cluster)) return [eventStreamKey(this.keyPrefix)];
    const now = this.nowMs();
    if (this.clusterStreams !== undefined && now - this.clusterStreams.atMs < this.streamRefreshMs) return this.clusterStreams.keys;
    const keys = new Set<string>();
    await Promise.all(
      this.client.nodes('master').map(async (node: Redis) => {
        let cursor = '0';
        do {
          const [next, found] = await node.scan(cursor, 'MATCH', eventStreamPattern(this.keyPrefix), 'COUNT', 1_000);
          for (const key of found) if (key === eventStreamKey(this.keyPrefix, clusterSlotOf(key))) keys.add(key);
          cursor = next;
        } while (cursor !== '0');
      }),
    );
    this.clusterStreams = { keys: [...keys].sort(), atMs: now };
    return this.clusterStreams.keys;
  }

  /** Creates the group on `stream` (and the stream, MKSTREAM) reading from its start; an existing group (BUSYGROUP) is fine. */
  private async ensureGroup(stream: string): Promise<void> {
    if (this.grouped.has(stream)) return;
    try {
      await this.client.xgroup('CREATE', stream, this.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
    this.grouped.add(stream);
  }

  /** Entries of `stream` another consumer took more than `idleMs` ago and did not acknowledge, now `consumer`'s. */
  private async reclaim(stream: string, consumer: string, count: number, idleMs: number): Promise<OutboxEntry[]> {
    const reply = (await this.client.xautoclaim(stream, this.group, consumer, Math.max(0, Math.floor(idleMs)), '0-0', 'COUNT', count)) as [
      string,
      Array<[string, string[]] | null>,
      string[]?,
    ];
    const entries = reply[1].filter((entry): entry is [string, string[]] => entry !== null);
    if (entries.length === 0) return [];
    // XAUTOCLAIM does not say how often an entry was delivered; XPENDING does.
    const pipeline = this.client.pipeline();
    for (const [id] of entries) pipeline.xpending(stream, this.group, id, id, 1);
    const counts = new Map<string, number>();
    for (const [error, pending] of (await pipeline.exec()) ?? []) {
      if (error !== null) throw error;
      const [row] = pending as Array<[string, string, number, number]>;
      if (row !== undefined) counts.set(row[0], row[3]);
    }
    return this.decode(stream, entries, (id) => counts.get(id) ?? 2);
  }

  private async readNew(stream: string, consumer: string, count: number): Promise<OutboxEntry[]> {
    const reply = (await this.client.xreadgroup('GROUP', this.group, consumer, 'COUNT', count, 'STREAMS', stream, '>')) as
      | Array<[string, Array<[string, string[]]>]>
      | null;
    return this.decode(stream, reply?.[0]?.[1] ?? [], () => 1);
  }

  /** The events of `entries`; an entry that is no event (foreign, damaged) is acknowledged and dropped, so it never blocks the queue. */
  private async decode(stream: string, entries: ReadonlyArray<[string, string[]]>, claimsOf: (id: string) => number): Promise<OutboxEntry[]> {
    const decoded: OutboxEntry[] = [];
    const foreign: string[] = [];
    for (const [id, fields] of entries) {
      const event = decodeStreamEntry(fields);
      if (event === undefined) foreign.push(entryIdOf(stream, id));
      else decoded.push({ entryId: entryIdOf(stream, id), event, claims: claimsOf(id) });
    }
    if (foreign.length > 0) await this.acknowledge(foreign);
    return decoded;
  }
}

/** How often, at most, claims look for entries to take over (XAUTOCLAIM), ms; every claim when reclaimAfterMs is shorter. */
const RECLAIM_CHECK_INTERVAL_MS = 1_000;

/** An OutboxEntry's id: the stream entry's id and its stream (`<id>@<stream>`). */
function entryIdOf(stream: string, id: string): string {
  return `${id}@${stream}`;
}

function parseEntryId(entryId: string): { stream: string; id: string } {
  const at = entryId.indexOf('@');
  if (at <= 0) throw new Error(`not an event outbox entry id: ${entryId.slice(0, 60)}`);
  return { id: entryId.slice(0, at), stream: entryId.slice(at + 1) };
}
