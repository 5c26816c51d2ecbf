import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { GatewayError } from '../../../core/errors.js';

/** Why the admin API is off: no token was given to the gateway, or it has no database. */
export type AdminOffReason = 'no_token' | 'no_database';

const OFF_DETAIL: Record<AdminOffReason, string> = {
  no_token: 'The admin API is off: no admin token is configured (the variable admin.token_env names is unset or empty).',
  no_database: 'The admin API is off for this route: the gateway runs without a database.',
};

/** 404 `admin_disabled`, the answer of every admin route while the API is off, saying why. */
export function adminDisabled(reason: AdminOffReason): GatewayError {
  return new GatewayError('admin_disabled', OFF_DETAIL[reason]);
}

/**
 * Guards the admin API with a bearer token. With no token (undefined or
 * empty) every request is refused with 404 `admin_disabled` (its detail from
 * `offReason`): the API is off, never open. Otherwise a missing or wrong
 * `Authorization: Bearer <token>` is 401 `admin_unauthorized`. The
 * comparison is over SHA-256 digests with timingSafeEqual, so neither the
 * token's length nor its content leaks through timing.
 */
export function adminAuth(token: string | undefined, offReason: AdminOffReason = 'no_token'): MiddlewareHandler {
  const expected = token === undefined || token === '' ? undefined : digest(token);
  return async function adminAuthMiddleware(c, next) {
    if (expected === undefined) throw adminDisabled(offReason);
    const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(c.req.header('authorization') ?? '');
    if (match === null || !timingSafeEqual(digest(match[1]!), expected)) {
      throw new GatewayError('admin_unauthorized', 'The admin API needs Authorization: Bearer <admin token>.', {}, [
        ['www-authenticate', 'Bearer realm="quotagate-admin"'],
      ]);
    }
    await next();
  };
}

/** The audit actor for requests bearing `token`: `admin:` and 8 hex digits of its SHA-256, never the token. */
export function adminActor(token: string | undefined): string {
  return token === undefined || token === '' ? 'admin' : `admin:${digest(token).toString('hex').slice(0, 8)}`;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
