import { randomUUID } from 'node:crypto';

/** Longest client `X-Request-Id` kept, in characters; longer ones are replaced. */
const MAX_REQUEST_ID_LENGTH = 128;

/** Characters a kept id may hold: nothing that could split a log line or a header. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:@\/+=-]+$/;

/** Whether `value` is kept as the request's id: 1–128 of letters, digits and `._:@/+=-`. */
function isWellFormedRequestId(value: string | undefined): value is string {
  return value !== undefined && value.length > 0 && value.length <= MAX_REQUEST_ID_LENGTH && SAFE_REQUEST_ID.test(value);
}

/**
 * Names a request: the client's `X-Request-Id` when well-formed (see
 * {@link isWellFormedRequestId}), else a new UUID. The id is sent upstream in
 * place of the client's and returned on every answer, problems included.
 */
export function requestIdOf(offered: string | undefined): string {
  return isWellFormedRequestId(offered) ? offered : randomUUID();
}
