import type { AuthFailureReason, AuthResult, Authenticator, PresentedCredentials } from '../../auth/authenticator.js';
import { isBearerApiKey } from '../../auth/credentials.js';
import { missingScopes } from '../../auth/token-claims.js';
import { type ErrorCode, GatewayError } from '../../core/errors.js';
import type { ClientAddressResolver } from '../../proxy/client-address.js';
import type { Exchange } from '../exchange.js';

/** The `auth` modes of a route that take credentials. */
export type CredentialMode = 'api_key' | 'jwt' | 'any';

export interface IdentifyOptions {
  /** The authenticator of each mode; `jwt` and `any` exist only when token issuers are configured. */
  readonly authenticators: Readonly<Partial<Record<CredentialMode, Authenticator>>>;
  readonly clientAddress: ClientAddressResolver;
  /** Plan of callers on `auth: none` routes. */
  readonly anonymousPlan: string;
  /** `auth.api_keys.prefix`: a bearer token starting with `<prefix>_` is a key and is never forwarded. */
  readonly apiKeyPrefix: string;
  /** Called once per refused request (authentication or scope), for the auth-failures metric. */
  readonly onAuthFailure: (reason: AuthFailureReason | 'insufficient_scope') => void;
}

const MISSING_DETAIL: Record<CredentialMode, string> = {
  api_key: 'This route needs an API key in the X-API-Key header or as Authorization: Bearer <key>.',
  jwt: 'This route needs a token as Authorization: Bearer <token>.',
  any: 'This route needs an API key (X-API-Key) or a token (Authorization: Bearer <token>).',
};

/** RFC 6750 §3: a bare challenge when no credential came, `error="invalid_token"` for a bad token. */
const BEARER = 'Bearer';
const INVALID_TOKEN = 'Bearer error="invalid_token"';

/** Each refusal's code, detail and `WWW-Authenticate` challenge (none for an outage). */
const FAILURES: Record<AuthFailureReason, { code: ErrorCode; detail: string; challenge?: string }> = {
  missing: { code: 'missing_credentials', detail: MISSING_DETAIL.api_key, challenge: BEARER },
  malformed: { code: 'malformed_api_key', detail: 'The API key is not in the expected format.', challenge: BEARER },
  unknown: { code: 'invalid_api_key', detail: 'The API key is not valid.', challenge: BEARER },
  revoked: { code: 'key_revoked', detail: 'The API key has been revoked.', challenge: BEARER },
  expired: { code: 'key_expired', detail: 'The API key has expired.', challenge: BEARER },
  suspended: { code: 'subject_suspended', detail: 'The account this API key belongs to is suspended.' },
  key_store_unavailable: { code: 'store_unavailable', detail: 'API keys cannot be checked now; retry later.' },
  throttled: { code: 'auth_throttled', detail: 'Too many unknown API keys from this address; retry in a second.' },
  token_too_large: { code: 'token_too_large', detail: 'The token is longer than this gateway accepts.', challenge: INVALID_TOKEN },
  token_malformed: { code: 'token_malformed', detail: 'The token is not a well-formed JWT.', challenge: INVALID_TOKEN },
  token_algorithm_not_allowed: {
    code: 'token_algorithm_not_allowed',
    detail: 'The token is signed with an algorithm that is not accepted.',
    challenge: INVALID_TOKEN,
  },
  token_issuer_invalid: { code: 'token_issuer_invalid', detail: 'The token is not from an accepted issuer.', challenge: INVALID_TOKEN },
  token_audience_invalid: { code: 'token_audience_invalid', detail: 'The token is not meant for this API.', challenge: INVALID_TOKEN },
  token_expired: { code: 'token_expired', detail: 'The token has expired.', challenge: INVALID_TOKEN },
  token_not_yet_valid: { code: 'token_not_yet_valid', detail: 'The token is not valid yet.', challenge: INVALID_TOKEN },
  token_signature_invalid: { code: 'token_signature_invalid', detail: 'The token signature does not verify.', challenge: INVALID_TOKEN },
  token_key_unknown: { code: 'token_key_unknown', detail: 'The token is signed with an unknown key.', challenge: INVALID_TOKEN },
  token_claims_invalid: {
    code: 'token_claims_invalid',
    detail: 'The token lacks a required claim (exp, iat when a maximum age is set, or the subject) or has one of the wrong type.',
    challenge: INVALID_TOKEN,
  },
  token_too_old: { code: 'token_too_old', detail: 'The token was issued too long ago; get a fresh one.', challenge: INVALID_TOKEN },
  token_type_invalid: { code: 'token_type_invalid', detail: 'The token is not of the type this API accepts (typ).', challenge: INVALID_TOKEN },
  invalid_token: { code: 'invalid_token', detail: 'The token cannot be verified.', challenge: INVALID_TOKEN },
  jwks_unavailable: { code: 'jwks_unavailable', detail: 'The keys to verify the token cannot be fetched now; retry later.' },
};

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
    return authenticateCaller(credentialsOf(exchange, options.clientAddress), mode, options, route.config.name).then((result) => {
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
    });
  };
}

/** The credential-bearing headers of the exchange's request, and its client address (worked out only if asked). */
export function credentialsOf(exchange: Exchange, clientAddress: ClientAddressResolver): PresentedCredentials {
  return {
    xApiKey: exchange.header('x-api-key'),
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

/**
 * The caller's credentials checked by the authenticator of `mode`: the
 * authenticated result, or the refusal thrown as identify() answers it (401
 * with its code and challenge, 503 while token keys cannot be fetched).
 * Shared by identify() and the endpoints the gateway answers itself
 * (`GET /_quotagate/usage`), so credentials are checked one way.
 */
export async function authenticateCaller(
  credentials: PresentedCredentials,
  mode: CredentialMode,
  options: Pick<IdentifyOptions, 'authenticators' | 'onAuthFailure'>,
  routeName: string,
): Promise<Extract<AuthResult, { ok: true }>> {
  const authenticator = options.authenticators[mode];
  if (authenticator === undefined) throw new Error(`route "${routeName}" uses auth: ${mode}, which has no authenticator`);
  const result = await authenticator.authenticate(credentials);
  if (!result.ok) {
    options.onAuthFailure(result.reason);
    const failure = FAILURES[result.reason];
    const detail = result.reason === 'missing' ? MISSING_DETAIL[mode] : failure.detail;
    const headers: ReadonlyArray<readonly [string, string]> =
      result.reason === 'throttled' ? RETRY_NEXT_SECOND : failure.challenge === undefined ? [] : [['www-authenticate', failure.challenge]];
    throw new GatewayError(failure.code, detail, {}, headers);
  }
  return result;
}

/** The throttle's budget is per second: the next one has a fresh budget. */
const RETRY_NEXT_SECOND: ReadonlyArray<readonly [string, string]> = [['retry-after', '1']];
