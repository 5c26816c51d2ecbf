import type { MiddlewareHandler } from 'hono';
import type { ApiKeyAuthenticator, AuthFailureReason } from '../../auth/api-key-authenticator.js';
import { type ErrorCode, GatewayError } from '../../core/errors.js';
import type { ClientAddressResolver } from '../../proxy/client-address.js';
import { type ProxyEnv, requestHeader } from '../context.js';

export interface IdentifyOptions {
  readonly authenticator: ApiKeyAuthenticator;
  readonly clientAddress: ClientAddressResolver;
  /** Plan of callers on `auth: none` routes. */
  readonly anonymousPlan: string;
  /** Called once per failed authentication, for the auth-failures metric. */
  readonly onAuthFailure: (reason: AuthFailureReason) => void;
}

const FAILURES: Record<AuthFailureReason, { code: ErrorCode; detail: string }> = {
  missing: {
    code: 'missing_credentials',
    detail: 'This route needs an API key in the X-API-Key header or as Authorization: Bearer <key>.',
  },
  malformed: { code: 'malformed_api_key', detail: 'The API key is not in the expected format.' },
  unknown: { code: 'invalid_api_key', detail: 'The API key is not valid.' },
};

/**
 * Establishes who the request is charged to, per the route's `auth` mode:
 * `api_key` → the key's subject and plan (401 with its own code when missing,
 * malformed or unknown); `none` → the client IP on the anonymous plan, where
 * X-Forwarded-For counts only from trusted proxies.
 */
export function identify(options: IdentifyOptions): MiddlewareHandler<ProxyEnv> {
  return async function identifyMiddleware(c, next) {
    const route = c.var.route;
    if (route.config.auth === 'none') {
      const peer = c.env?.incoming?.socket.remoteAddress ?? '';
      const { clientIp } = options.clientAddress.resolve(peer, requestHeader(c, 'x-forwarded-for'));
      c.set('identity', { subject: `ip:${clientIp}`, plan: options.anonymousPlan });
      c.set('credentialHeaders', []);
      return next();
    }
    const result = await options.authenticator.authenticate(requestHeader(c, 'x-api-key'), requestHeader(c, 'authorization'));
    if (!result.ok) {
      options.onAuthFailure(result.reason);
      const failure = FAILURES[result.reason];
      throw new GatewayError(failure.code, failure.detail, {}, [['www-authenticate', 'Bearer']]);
    }
    c.set('identity', result.identity);
    c.set('credentialHeaders', [result.credentialHeader]);
    return next();
  };
}
