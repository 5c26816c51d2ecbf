import { describe, expect, it } from 'vitest';
import type { AuthFailureReason, AuthResult, Authenticator } from '../../src/auth/authenticator.js';
import { authenticateCaller, type CredentialMode } from '../../src/auth/caller-authentication.js';
import { NO_SCOPES } from '../../src/auth/authenticator.js';
import { GatewayError } from '../../src/core/errors.js';

/** An authenticator that answers `result` to every call (the cases here are about what a result becomes). */
function answering(result: AuthResult): Authenticator {
  return { authenticate: () => Promise.resolve(result) };
}

const NO_CREDENTIALS = { xApiKey: undefined, authorization: undefined };

async function refusal(reason: AuthFailureReason, mode: CredentialMode = 'api_key'): Promise<{ error: GatewayError; counted: string[] }> {
  const counted: string[] = [];
  const options = { authenticators: { [mode]: answering({ ok: false, reason }) }, onAuthFailure: (r: string) => void counted.push(r) };
  const error = await (async () => authenticateCaller(NO_CREDENTIALS, mode, options, 'api'))().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof GatewayError)) throw new Error(`expected a GatewayError for ${reason}, got ${String(error)}`);
  return { error, counted };
}

describe('authenticateCaller (the one check of a caller\'s credentials)', () => {
  it('resolves to the authenticated result and counts no failure', async () => {
    const counted: string[] = [];
    const ok: AuthResult = { ok: true, identity: { subject: 'acme', plan: 'pro' }, credentialHeader: 'x-api-key', scopes: NO_SCOPES };
    const result = await authenticateCaller(NO_CREDENTIALS, 'api_key', { authenticators: { api_key: answering(ok) }, onAuthFailure: (r) => void counted.push(r) }, 'api');
    expect(result).toBe(ok);
    expect(counted).toEqual([]);
  });

  it('throws a revoked key as 401 key_revoked with a bare Bearer challenge, counted once by its reason', async () => {
    const { error, counted } = await refusal('revoked');
    expect([error.status, error.code, error.detail, error.headers]).toEqual([401, 'key_revoked', 'The API key has been revoked.', [['www-authenticate', 'Bearer']]]);
    expect(counted).toEqual(['revoked']);
  });

  it('names what the mode needs when nothing was presented', async () => {
    expect((await refusal('missing', 'api_key')).error.detail).toBe('This route needs an API key in the X-API-Key header or as Authorization: Bearer <key>.');
    expect((await refusal('missing', 'jwt')).error.detail).toBe('This route needs a token as Authorization: Bearer <token>.');
    expect((await refusal('missing', 'any')).error.detail).toBe('This route needs an API key (X-API-Key) or a token (Authorization: Bearer <token>).');
  });

  it('answers a bad token with error="invalid_token", an outage with 503 and no challenge, the throttle with Retry-After: 1', async () => {
    const expired = (await refusal('token_expired', 'jwt')).error;
    expect([expired.status, expired.code, expired.headers]).toEqual([401, 'token_expired', [['www-authenticate', 'Bearer error="invalid_token"']]]);
    const outage = (await refusal('key_store_unavailable')).error;
    expect([outage.status, outage.code, outage.headers]).toEqual([503, 'store_unavailable', []]);
    const suspended = (await refusal('suspended')).error;
    expect([suspended.status, suspended.code, suspended.headers]).toEqual([403, 'subject_suspended', []]);
    const throttled = (await refusal('throttled')).error;
    expect([throttled.status, throttled.code, throttled.headers]).toEqual([429, 'auth_throttled', [['retry-after', '1']]]);
  });

  it('fails as a programming fault (not a GatewayError) when the mode has no authenticator', async () => {
    // Thrown synchronously; the async wrapper turns it into a rejection.
    const error = await (async () => authenticateCaller(NO_CREDENTIALS, 'jwt', { authenticators: {}, onAuthFailure: () => {} }, 'reports'))().catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(GatewayError);
    expect((error as Error).message).toBe('route "reports" uses auth: jwt, which has no authenticator');
  });
});
