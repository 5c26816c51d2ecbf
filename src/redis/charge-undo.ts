import type { RedisClient } from './client.js';
import { chargeRecordsKey, counterKey, creditBalanceKey, hydrationMarkerKey, idempotencyRecordKey, usageIndexKey, usageMarkerKey } from './keys.js';
import { ScriptReplyError, USAGE_MARKER_TTL_MS } from './scripts.js';

/** A consume call whose reply was lost: what it was sent with. */
export interface UndoChargeInput {
  readonly subject: string;
  /** The counters the call was given (its policies', then its meters'), in the same order. */
  readonly counterIds: readonly string[];
  /** The request id the call was sent with (its charge record's name). */
  readonly requestId: string;
  /** The minute whose charge records the call was sent to (its `chargeMinute`). */
  readonly chargeMinute: number;
  /** With an Idempotency-Key: the key and the attempt id the call marked it in flight under (released by the undo). */
  readonly idempotency?: { readonly key: string; readonly attempt: string };
  /** On a Redis Cluster, the slot of the subject's keys (its usage index is that slot's); absent on one Redis. */
  readonly slot?: number;
  /** When a policy of the call was covered by credits: their metric and its monthly spend counter (the credits the call spent are given back). */
  readonly credits?: { readonly metric: string; readonly spendCounterId: string };
}

/** runUndoChargeScript's answer when the call charged nothing (or was undone already). */
const NOT_CHARGED = -1;

/**
 * Undoes the charge of one consume call by its request id, with one EVALSHA
 * of lua/undo-charge.lua: only if that call charged, and only once. Resolves
 * to how many counters were given the cost back, or NOT_CHARGED; the
 * credits it spent (with `input.credits`) go back to the grants they came from.
 * `trackUsage`: a ledger backs the counters (the refunded counts go into the
 * usage marker, at a fresh version of the subject, for the next flush).
 */
export async function runUndoChargeScript(
  client: RedisClient,
  keyPrefix: string,
  input: UndoChargeInput,
  trackUsage: boolean,
): Promise<number> {
  const keys = input.counterIds.map((counterId) => counterKey(keyPrefix, input.subject, counterId));
  keys.push(
    usageMarkerKey(keyPrefix, input.subject),
    chargeRecordsKey(keyPrefix, input.subject, input.chargeMinute),
    hydrationMarkerKey(keyPrefix, input.subject),
    usageIndexKey(keyPrefix, input.slot),
  );
  const args: Array<string | number> = [input.counterIds.length, trackUsage ? 1 : 0, ...input.counterIds, input.requestId, USAGE_MARKER_TTL_MS];
  if (input.idempotency !== undefined) keys.push(idempotencyRecordKey(keyPrefix, input.subject, input.idempotency.key));
  args.push(input.idempotency?.attempt ?? '');
  if (input.credits !== undefined) {
    keys.push(creditBalanceKey(keyPrefix, input.subject, input.credits.metric), counterKey(keyPrefix, input.subject, input.credits.spendCounterId));
    args.push(input.credits.spendCounterId);
  }
  const reply = await client.quotagateUndoCharge(keys.length, ...keys, ...args);
  if (typeof reply !== 'number' || !Number.isInteger(reply) || reply < NOT_CHARGED) throw new ScriptReplyError('undo-charge.lua', reply);
  return reply;
}
