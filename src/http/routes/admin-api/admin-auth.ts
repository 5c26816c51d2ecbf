import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { GatewayError } from '../../../core/errors.js';

/**
 * Guards the admin API with a bearer token. With no token (undefined or
 * empty) every request is refused with 404 `admin_disabled`: the API is off,
 * never open. Otherwise a missing or wrong `Authorization: Bearer <token>` is
 * 401 `admin_unauthorized`. The comparison is over SHA-256 digests with
 * timingSafeEqual, so neither the token's length nor its content leaks
 * through timing.
 */
export function adminAuth(token: string | undefined): MiddlewareHandler {
  const expected = token === undefined || token === '' ? undefined : digest(token);
  return async function adminAuthMiddleware(c, next) {
    if (expected === undefined) {
      throw new GatewayError('admin_disabled', 'The admin API is off: no admin token is configured (admin.token_env).');
    }
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
