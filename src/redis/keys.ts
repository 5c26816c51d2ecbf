import { createHash } from 'node:crypto';
import { hashTagOfSlot } from './cluster-slots.js';

/**
 * The one place Redis keys are built. Every key has the form
 *
 *     <prefix>:v1:{<subject>}:<suffix>
 *
 * The `{<subject>}` hash tag puts all of a subject's keys in one Redis Cluster
 * slot, so one script can touch all of them. `v1` versions the layout: a
 * change of a key's type or fields gets a new version rather than a migration.
 *
 * Suffixes:
 * - `<counterId>` (`w:hour`, `q:search:month`): a policy counter, a HASH with
 *   `p` (start of the period counted, epoch seconds) and `n` (units used in
 *   it); see lua/consume.lua;
 * - `idem2:<sha256 hex of the Idempotency-Key>`: the record of a request
 *   admitted under an Idempotency-Key (a HASH: fingerprint, attempt, and
 *   once completed the response; see lua/consume.lua and
 *   lua/settle-idempotency.lua). `idem2`, not `idem`: the STRING records of
 *   earlier releases live under `idem:`, so neither release ever reads the
 *   other's as the wrong type during a rolling upgrade;
 * - `charges:<minute>`: what each consume call charged, by request id (a
 *   HASH, one per minute of the sending instance's clock, with a short TTL),
 *   so that a call whose reply was lost can be undone by its id; see
 *   lua/consume.lua and lua/undo-charge.lua;
 * - `dirty`: the usage marker, what changed since the ledger flusher last
 *   copied the subject (a HASH; see lua/consume.lua);
 * - `hydrated`: present once the subject's counters were restored from the
 *   ledger (a STRING; see lua/hydrate.lua); its integer value is also the
 *   subject's ledger version, INCRed by every script call that changes or
 *   decides the counters (see lua/consume.lua);
 * - `credits:<metric>`: the subject's prepaid credits of a metric, a HASH of
 *   per-grant fields (granted, spent, expiry; see lua/consume.lua and
 *   lua/add-credits.lua). The monthly credit spend is a counter like any
 *   other (`c:<metric>:month`).
 *
 * One set of keys is no subject's: the readiness probe's
 * `<prefix>:v1:readiness:{probe}:state` and `…:scratch` (see lua/probe.lua).
 * Their `readiness` segment stands where a subject's keys have their hash
 * tag, so no subject's key can equal them or match a subject key pattern.
 *
 * Another is shared by subjects: the usage index, `<prefix>:v1:dirty-index`
 * (a SET of the usage marker keys that exist), which every ledger flusher
 * reads, so any live instance finds the usage a dead one left. On a Redis
 * Cluster there is one per slot, `<prefix>:v1:{<tag of the slot>}:dirty-index`,
 * so consume.lua can write it in the subject's own slot.
 */
const KEY_LAYOUT_VERSION = 'v1';

/**
 * The subject as it appears inside the hash tag. `%`, `{` and `}` are
 * percent-encoded (injectively), so a subject holding braces (a JWT `sub`
 * may) can neither end the tag early nor leave it empty, either of which
 * would scatter the subject's keys over several slots.
 */
export function subjectHashTag(subject: string): string {
  return `{${subject.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}}`;
}

/** The HASH counting one policy (by its `counterId`) for one subject. */
export function counterKey(prefix: string, subject: string, counterId: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:${subjectHashTag(subject)}:${counterId}`;
}

/**
 * The record of a request admitted under the client's Idempotency-Key,
 * scoped to the subject. The client's key is hashed: it may be long and is the
 * client's data, not ours to put in key names.
 */
export function idempotencyRecordKey(prefix: string, subject: string, idempotencyKey: string): string {
  const digest = createHash('sha256').update(idempotencyKey).digest('hex');
  return `${prefix}:${KEY_LAYOUT_VERSION}:${subjectHashTag(subject)}:idem2:${digest}`;
}

/**
 * The subject's charge records of one minute (`minute`: epoch ms / 60,000 on
 * the sending instance's clock): a HASH from the request id the gateway gave
 * a consume call (its own token, never client data) to what that call
 * charged. One key a minute, not one a request, keeps a busy subject's slot
 * small (a Cluster migrates it key by key).
 */
export function chargeRecordsKey(prefix: string, subject: string, minute: number): string {
  return `${chargeRecordsKeyPrefix(prefix, subject)}${minute}`;
}

/** chargeRecordsKey without its minute, for callers that add the minute per call. */
export function chargeRecordsKeyPrefix(prefix: string, subject: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:${subjectHashTag(subject)}:charges:`;
}

/** The subject's usage marker: what the ledger flusher has yet to copy. */
export function usageMarkerKey(prefix: string, subject: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:${subjectHashTag(subject)}:dirty`;
}

/** The subject's credit balance of `metric` (a HASH of per-grant fields). */
export function creditBalanceKey(prefix: string, subject: string, metric: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:${subjectHashTag(subject)}:credits:${metric}`;
}

/** The subject's hydration marker: set once its counters were restored from the ledger. */
export function hydrationMarkerKey(prefix: string, subject: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:${subjectHashTag(subject)}:hydrated`;
}

/**
 * The usage index that lists `subject`'s usage marker: the one index, or on
 * a Cluster (`slot` given: the slot of the subject's keys) that slot's.
 */
export function usageIndexKey(prefix: string, slot?: number): string {
  if (slot === undefined) return `${prefix}:${KEY_LAYOUT_VERSION}:dirty-index`;
  return `${prefix}:${KEY_LAYOUT_VERSION}:{${hashTagOfSlot(slot)}}:dirty-index`;
}

/** A SCAN MATCH pattern for every usage marker under `prefix` (a key_prefix holds no glob characters). */
export function usageMarkerPattern(prefix: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:{*}:dirty`;
}

/** The subject of a usage marker key (the inverse of usageMarkerKey), or undefined for another key. */
export function subjectOfUsageMarkerKey(prefix: string, key: string): string | undefined {
  const head = `${prefix}:${KEY_LAYOUT_VERSION}:{`;
  const tail = '}:dirty';
  if (!key.startsWith(head) || !key.endsWith(tail) || key.length <= head.length + tail.length) return undefined;
  const tagged = key.slice(head.length, key.length - tail.length);
  if (/[{}]/.test(tagged)) return undefined;
  return tagged.replace(/%(25|7B|7D)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** The readiness probe's state (a HASH; see lua/probe.lua): its disappearance shows Redis lost its data. */
export function readinessStateKey(prefix: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:readiness:{probe}:state`;
}

/** The readiness probe's scratch STRING, written and deleted by each probe (same slot as the state). */
export function readinessScratchKey(prefix: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:readiness:{probe}:scratch`;
}

/**
 * The event stream (a Redis STREAM of quota events, see
 * src/core/quota-events.ts encodeStreamFields) that `subject`'s events go
 * to: one for the whole store, or on a Cluster (`slot` given: the slot of
 * the subject's keys) that slot's, so lua/consume.lua can append to it in
 * the subject's own slot. Deliverers read every one through a consumer group.
 */
export function eventStreamKey(prefix: string, slot?: number): string {
  if (slot === undefined) return `${prefix}:${KEY_LAYOUT_VERSION}:events`;
  return `${prefix}:${KEY_LAYOUT_VERSION}:{${hashTagOfSlot(slot)}}:events`;
}

/** A SCAN MATCH pattern for every slot's event stream under `prefix` on a Cluster (see eventStreamKey). */
export function eventStreamPattern(prefix: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:{*}:events`;
}

/**
 * The fleet's denials of `subject` in one minute (`minute`: epoch ms /
 * 60,000), a STRING counter every instance INCRBYs with what it counted
 * (see src/usage/denial-flusher.ts), expiring two minutes after it was
 * last written.
 */
export function denialCounterKey(prefix: string, subject: string, minute: number): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:${subjectHashTag(subject)}:denials:${minute}`;
}

/** The subject's block by an abuse rule: a STRING holding the block's end (epoch ms), with that TTL (PX). */
export function subjectBlockKey(prefix: string, subject: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:${subjectHashTag(subject)}:blocked`;
}

/**
 * The index of blocks, a ZSET of subjects scored by their block's end
 * (epoch ms), that an instance reads at start and whenever it
 * resubscribes to the block channel. Shared by subjects (no hash tag):
 * like the readiness keys, its `blocks` segment stands where a subject's
 * hash tag would.
 */
export function subjectBlockIndexKey(prefix: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:blocks`;
}

/** The pub/sub channel of block changes: `<key_prefix>:v1:blocks`. */
export function subjectBlockChannel(prefix: string): string {
  return `${prefix}:${KEY_LAYOUT_VERSION}:blocks`;
}
