import type { Decision } from '../core/decision.js';
import type { IdempotencyTicket, StoredResponse } from '../core/idempotency.js';
import type { RedisClient } from './client.js';
import { idempotencyRecordKey } from './keys.js';
import {
  type ConsumeScriptInput,
  type ConsumeScriptOptions,
  consumeScriptCall,
  type IdempotencyScriptPart,
  NEEDS_HYDRATION,
  parseConsumeReply,
  ScriptReplyError,
} from './scripts.js';

/**
 * lua/consume.lua's answer to a request with an Idempotency-Key: a decision
 * (the key was free; admitted means it is now in flight), or what the key's
 * record says.
 */
export type IdempotentScriptAnswer =
  | { readonly kind: 'decided'; readonly decision: Decision }
  | { readonly kind: 'replay'; readonly response: StoredResponse }
  | { readonly kind: 'in-flight' }
  | { readonly kind: 'reused' }
  | typeof NEEDS_HYDRATION;

/**
 * Looks up the Idempotency-Key record and, when there is none, decides and
 * charges `input` and marks the key in flight under `attempt`: one EVALSHA of
 * lua/consume.lua, atomic on the server.
 */
export async function runIdempotentConsumeScript(
  client: RedisClient,
  input: ConsumeScriptInput,
  idempotency: { readonly key: string; readonly fingerprint: string; readonly attempt: string },
  options: ConsumeScriptOptions,
): Promise<IdempotentScriptAnswer> {
  const part: IdempotencyScriptPart = {
    recordKey: idempotencyRecordKey(options.keyPrefix, input.subject, idempotency.key),
    fingerprint: idempotency.fingerprint,
    attempt: idempotency.attempt,
  };
  // The Buffer variant: a replayed body is bytes, not text.
  const reply = await client.quotagateConsumeBuffer(...consumeScriptCall(input, options, part));
  if (Array.isArray(reply) && reply.length >= 1) {
    const head: unknown = reply[0];
    if (head === -1 && reply.length === 1) return NEEDS_HYDRATION;
    if (head === -2 && reply.length === 1) return { kind: 'reused' };
    if (head === -3 && reply.length === 1) return { kind: 'in-flight' };
    if (head === -4) return { kind: 'replay', response: parseStoredResponse(reply) };
  }
  return { kind: 'decided', decision: parseConsumeReply(reply, input) };
}

/**
 * Keeps `response` for replay under the ticket's key (with `ttlMs`), or with
 * `response` undefined deletes the record: one EVALSHA of
 * lua/settle-idempotency.lua, which does nothing unless the record is still
 * this ticket's in-flight mark.
 */
export async function runSettleIdempotencyScript(
  client: RedisClient,
  keyPrefix: string,
  ticket: IdempotencyTicket,
  response: StoredResponse | undefined,
  ttlMs: number,
): Promise<void> {
  const recordKey = idempotencyRecordKey(keyPrefix, ticket.subject, ticket.key);
  const reply =
    response === undefined
      ? await client.quotagateSettleIdempotency(1, recordKey, ticket.attempt, '', '', '', ttlMs)
      : await client.quotagateSettleIdempotency(1, recordKey, ticket.attempt, response.status, JSON.stringify(response.headers), response.body, ttlMs);
  if (reply !== 0 && reply !== 1) throw new ScriptReplyError('settle-idempotency.lua', reply);
}

/** The `{ -4, status, headers, body }` reply of consume.lua as a StoredResponse. */
function parseStoredResponse(reply: unknown[]): StoredResponse {
  const [, status, headers, body] = reply;
  if (reply.length !== 4 || !Number.isInteger(status) || !Buffer.isBuffer(headers) || !Buffer.isBuffer(body)) {
    throw new ScriptReplyError('consume.lua', reply);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(headers.toString('utf8'));
  } catch {
    throw new ScriptReplyError('consume.lua', reply);
  }
  if (!Array.isArray(parsed) || !parsed.every(isHeaderPair)) throw new ScriptReplyError('consume.lua', reply);
  return { status: status as number, headers: parsed, body };
}

function isHeaderPair(value: unknown): value is [string, string] {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string';
}
