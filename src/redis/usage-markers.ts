import { Cluster, type Redis } from 'ioredis';
import type { DirtyUsage, UsageEntry } from '../core/usage-ledger.js';
import type { RedisClient } from './client.js';
import { CLUSTER_SLOTS } from './cluster-slots.js';
import { counterKey, hydrationMarkerKey, subjectOfUsageMarkerKey, usageIndexKey, usageMarkerKey, usageMarkerPattern } from './keys.js';
import { ScriptReplyError } from './scripts.js';

/**
 * The Redis side of the usage ledger: reading and clearing a subject's usage
 * marker (written by lua/consume.lua), finding leftover markers, and
 * restoring counters from the ledger (lua/hydrate.lua). Each call is one
 * command on the subject's slot, or one walk of the usage index (or, for
 * markers older than the index, one SCAN walk) per primary.
 */

/** What the subject's usage marker holds, or undefined when there is none. One HGETALL. */
export async function readUsageMarker(client: RedisClient, keyPrefix: string, subject: string): Promise<DirtyUsage | undefined> {
  const fields = await client.hgetall(usageMarkerKey(keyPrefix, subject));
  if (fields._v === undefined) return undefined;
  const version = Number(fields._v);
  if (!Number.isSafeInteger(version) || version < 0) throw new ScriptReplyError('usage marker', { _v: fields._v });
  const entries: UsageEntry[] = [];
  for (const [field, value] of Object.entries(fields)) {
    if (field === '_v') continue;
    const separator = field.indexOf(':');
    const periodStartSeconds = Number(field.slice(0, separator));
    const count = Number(value);
    if (separator <= 0 || !Number.isSafeInteger(periodStartSeconds) || !Number.isSafeInteger(count) || count < 0) {
      throw new ScriptReplyError('usage marker', { [field]: value });
    }
    entries.push({ counterId: field.slice(separator + 1), periodStartMs: periodStartSeconds * 1000, count });
  }
  return { subject, entries, version };
}

/**
 * Deletes the marker, and takes it out of the usage index of `slot` (see
 * usageIndexKey), if its version is still `version` or it is gone
 * (lua/clear-usage-marker.lua); true if deleted or gone.
 */
export async function clearUsageMarker(
  client: RedisClient,
  keyPrefix: string,
  subject: string,
  version: string,
  slot: number | undefined,
): Promise<boolean> {
  const reply = await client.quotagateClearUsageMarker(2, usageMarkerKey(keyPrefix, subject), usageIndexKey(keyPrefix, slot), version);
  return reply === 1;
}

/** Members read per SSCAN step of the usage index. */
const INDEX_SCAN_COUNT = 1_000;

/**
 * Every subject the usage index lists: whatever any instance charged and no
 * flusher has cleared yet. One SSCAN walk of the index on one Redis; on a
 * Cluster, one pipeline per primary reading the index of each slot it serves.
 */
export async function readUsageIndex(client: RedisClient, keyPrefix: string): Promise<string[]> {
  const markerKeys: string[] = [];
  if (client instanceof Cluster) {
    const slotsByNode = new Map<string, number[]>();
    for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
      const primary = client.slots[slot]?.[0];
      if (primary === undefined) continue;
      let slots = slotsByNode.get(primary);
      if (slots === undefined) slotsByNode.set(primary, (slots = []));
      slots.push(slot);
    }
    await Promise.all(
      client.nodes('master').map(async (node) => {
        const slots = slotsByNode.get(`${node.options.host}:${node.options.port}`) ?? [];
        if (slots.length === 0) return;
        const pipeline = node.pipeline();
        for (const slot of slots) pipeline.smembers(usageIndexKey(keyPrefix, slot));
        for (const [error, members] of (await pipeline.exec()) ?? []) {
          if (error !== null) throw error;
          markerKeys.push(...(members as string[]));
        }
      }),
    );
  } else {
    let cursor = '0';
    do {
      const [next, members] = await client.sscan(usageIndexKey(keyPrefix), cursor, 'COUNT', INDEX_SCAN_COUNT);
      markerKeys.push(...members);
      cursor = next;
    } while (cursor !== '0');
  }
  const subjects = new Set<string>();
  for (const key of markerKeys) {
    const subject = subjectOfUsageMarkerKey(keyPrefix, key);
    if (subject !== undefined) subjects.add(subject);
  }
  return [...subjects];
}

/** Subjects with a usage marker under `keyPrefix`, on every primary (SCAN, 1,000 keys a step). */
export async function scanUsageMarkers(client: RedisClient, keyPrefix: string): Promise<string[]> {
  const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
  const subjects: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', usageMarkerPattern(keyPrefix), 'COUNT', 1_000);
      for (const key of keys) {
        const subject = subjectOfUsageMarkerKey(keyPrefix, key);
        if (subject !== undefined) subjects.push(subject);
      }
      cursor = next;
    } while (cursor !== '0');
  }
  return subjects;
}

/** One counter to restore: the ledger's count of its current period, and how long the key should live (ms; Infinity: for ever). */
export interface HydrationEntry extends UsageEntry {
  readonly ttlMs: number;
}

/**
 * Raises the subject's counters to the ledger's counts and sets its
 * hydration marker for `markerTtlMs`, with the subject's version above
 * `ledgerVersion` (the ledger's highest for the subject) and any it holds
 * (lua/hydrate.lua). Resolves to how many counters were raised.
 */
export async function runHydrateScript(
  client: RedisClient,
  keyPrefix: string,
  subject: string,
  entries: readonly HydrationEntry[],
  markerTtlMs: number,
  ledgerVersion = 0,
): Promise<number> {
  const keys = entries.map((entry) => counterKey(keyPrefix, subject, entry.counterId));
  keys.push(hydrationMarkerKey(keyPrefix, subject), usageMarkerKey(keyPrefix, subject));
  // A lifetime counter (ttlMs Infinity) gets 0: it never expires.
  const args = entries.flatMap((entry) => [
    Math.floor(entry.periodStartMs / 1000),
    entry.count,
    Number.isFinite(entry.ttlMs) ? Math.max(1, Math.ceil(entry.ttlMs)) : 0,
  ]);
  const reply = await client.quotagateHydrate(keys.length, ...keys, Math.max(1, Math.ceil(markerTtlMs)), ...args, ledgerVersion);
  if (typeof reply !== 'number') throw new ScriptReplyError('hydrate.lua', reply);
  return reply;
}

/**
 * What the store counts for `subject`'s counters in the given periods, in
 * order: a counter's `n` when it counts that period, else 0 (it counts
 * another period, or is gone). One pipeline of HMGETs on the subject's slot.
 */
export async function readCounterCounts(
  client: RedisClient,
  keyPrefix: string,
  subject: string,
  periods: ReadonlyArray<{ readonly counterId: string; readonly periodStartMs: number }>,
): Promise<number[]> {
  if (periods.length === 0) return [];
  const pipeline = client.pipeline();
  for (const period of periods) pipeline.hmget(counterKey(keyPrefix, subject, period.counterId), 'p', 'n');
  const replies = (await pipeline.exec()) ?? [];
  return periods.map((period, i) => {
    const [error, value] = replies[i] ?? [new Error('no reply'), undefined];
    if (error !== null) throw error;
    const [p, n] = value as [string | null, string | null];
    return p !== null && Number(p) * 1000 === period.periodStartMs ? Number(n ?? 0) : 0;
  });
}
