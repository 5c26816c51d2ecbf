import type { PresentedCredentials } from '../../auth/authenticator.js';
import { type Authenticated, authenticateCaller, type CallerAuthentication } from '../../auth/caller-authentication.js';
import { isBearerApiKey } from '../../auth/credentials.js';
import { missingScopes } from '../../auth/token-claims.js';
import { GatewayError } from '../../core/errors.js';
import type { ClientAddressResolver } from '../../proxy/client-address.js';
import type { Exchange } from '../exchange.js';

export interface IdentifyOptions extends CallerAuthentication {
  readonly clientAddress: ClientAddressResolver;
  /** Plan of callers on `auth: none` routes. */
  readonly anonymousPlan: string;
  /** `auth.api_keys.prefix`: a bearer token starting with `<prefix>_` is a key and is never forwarded. */
  readonly apiKeyPrefix: string;
}

/**
 * Establishes who the request is charged to, per the route's `auth` mode:
 * `api_key` → the key's subject and plan; `jwt` → the bearer token's subject
 * and plan claims; `any` → a key if one is presented, else a token; `none` →
 * the client IP on the anonymous plan, where X-Forwarded-For counts only
 * from trusted proxies. Sets `credentialHeaders`: on every route an API key
 * (in `Authorization`) is withheld from the upstream, and a verified token
 * is forwarded unless the route says `forward_token: false`. A refusal is
 * 401 with its own code (403 for a suspended subject's key; 503 while token
 * keys or the key store cannot be reached); a credential without the route's
 * `scopes` is 403 `insufficient_scope`.
 */
export function identify(options: IdentifyOptions): (exchange: Exchange) => Promise<void> | void {
  const keyPrefix = `${options.apiKeyPrefix}_`;
  return function identifyStep(exchange) {
    const route = exchange.route!;
    const mode = route.config.auth;
    if (mode === 'none') {
      const peer = exchange.req.socket.remoteAddress ?? '';
      const { clientIp } = options.clientAddress.resolve(peer, exchange.header('x-forwarded-for'));
      exchange.identity = { subject: `ip:${clientIp}`, plan: options.anonymousPlan };
      exchange.credentialHeaders = withheldCredentials(exchange, false, keyPrefix);
      return;
    }
    const authenticated = authenticateCaller(credentialsOf(exchange, options.clientAddress), mode, options, route.config.name);
    if (authenticated instanceof Promise) return authenticated.then((result) => admit(exchange, result, options, keyPrefix));
    admit(exchange, authenticated, options, keyPrefix);
  };
}

/** Records an authenticated caller on the exchange, or throws 403 `insufficient_scope` when the route's scopes are not all granted. */
function admit(exchange: Exchange, result: Authenticated, options: IdentifyOptions, keyPrefix: string): void {
  const route = exchange.route!;
  const required = route.config.scopes;
  if (required !== undefined) {
    const missing = missingScopes(result.scopes, required);
    if (missing.length > 0) {
      options.onAuthFailure('insufficient_scope');
      throw new GatewayError('insufficient_scope', `This route needs the scope${missing.length > 1 ? 's' : ''} ${missing.join(', ')}.`, {}, [
        ['www-authenticate', `Bearer error="insufficient_scope", scope="${required.join(' ')}"`],
      ]);
    }
  }
  exchange.identity = result.identity;
  exchange.credentialHeaders = withheldCredentials(exchange, !route.config.forward_token, keyPrefix);
}

/** The credential-bearing headers of the exchange's request, and its client address (worked out only if asked). */
export function credentialsOf(exchange: Exchange, clientAddress: ClientAddressResolver): PresentedCredentials {
  return {
    // A header wins over the route's `key_query_param`.
    xApiKey: exchange.header('x-api-key') ?? exchange.queryApiKey,
    authorization: exchange.header('authorization'),
    clientAddress: () => clientAddress.resolve(exchange.req.socket.remoteAddress ?? '', exchange.header('x-forwarded-for')).clientIp,
  };
}

const NOTHING: readonly string[] = Object.freeze([]);
const AUTHORIZATION: readonly string[] = Object.freeze(['authorization']);

/**
 * The credential fields the upstream must not get, beyond `X-API-Key`
 * (which request-headers.ts never forwards): `Authorization` when it holds
 * an API key as a bearer token, on any route, and whenever the route does
 * not forward tokens (`forward_token: false`).
 */
function withheldCredentials(exchange: Exchange, withholdTokens: boolean, keyPrefix: string): readonly string[] {
  const authorization = exchange.header('authorization');
  if (authorization === undefined) return NOTHING;
  return withholdTokens || isBearerApiKey(authorization, keyPrefix) ? AUTHORIZATION : NOTHING;
}
