import { describe, expect, it } from 'vitest';
import { type AuthResult, type Authenticator } from '../../src/auth/authenticator.js';
import { JwtAuthenticator } from '../../src/auth/jwt-authenticator.js';
import type { JwtVerifier, TokenVerification } from '../../src/auth/jwt-verifier.js';
import { KeyOrTokenAuthenticator } from '../../src/auth/key-or-token-authenticator.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { ManualClock } from '../support/manual-clock.js';
import { jwtTestConfig } from '../support/jwt-auth.js';

/** The cache of verified tokens, and how the authenticators use it and each other. */

const NOW_MS = Date.UTC(2026, 5, 15, 10, 30, 0);
const verified = { identity: { subject: 'acme', plan: 'free' }, scopes: new Set(['read']) };

describe('TokenCache', () => {
  it('answers a cached token until its TTL ends', () => {
    const clock = new ManualClock(NOW_MS);
    const cache = new TokenCache({ maxEntries: 10, ttlMs: 30_000, clock });
    cache.set('t1', verified, NOW_MS + 3_600_000);
    expect(cache.get('t1')).toEqual(verified);
    clock.advance(29_999);
    expect(cache.get('t1')).toBeDefined();
    clock.advance(1);
    expect(cache.get('t1')).toBeUndefined();
  });

  it('never answers a token at or past its exp, whatever the TTL', () => {
    const clock = new ManualClock(NOW_MS);
    const cache = new TokenCache({ maxEntries: 10, ttlMs: 600_000, clock });
    cache.set('t1', verified, NOW_MS + 5_000);
    clock.advance(4_999);
    expect(cache.get('t1')).toBeDefined();
    clock.advance(1);
    expect(cache.get('t1')).toBeUndefined();
  });

  it('does not keep a token that is already past its exp', () => {
    const cache = new TokenCache({ maxEntries: 10, ttlMs: 30_000, clock: new ManualClock(NOW_MS) });
    cache.set('t1', verified, NOW_MS);
    expect(cache.size).toBe(0);
  });

  it('holds at most maxEntries tokens, dropping the least recently used', () => {
    const cache = new TokenCache({ maxEntries: 2, ttlMs: 30_000, clock: new ManualClock(NOW_MS) });
    cache.set('t1', verified, NOW_MS + 60_000);
    cache.set('t2', verified, NOW_MS + 60_000);
    cache.get('t1');
    cache.set('t3', verified, NOW_MS + 60_000);
    expect([cache.get('t1'), cache.get('t2'), cache.get('t3')].map((entry) => entry !== undefined)).toEqual([true, false, true]);
  });
});

/** A verifier that answers from a script and counts its calls. */
function scriptedVerifier(answer: () => TokenVerification): JwtVerifier & { calls: number } {
  const verifier = {
    calls: 0,
    verify(): Promise<TokenVerification> {
      verifier.calls++;
      return Promise.resolve(answer());
    },
  };
  return verifier as unknown as JwtVerifier & { calls: number };
}

describe('JwtAuthenticator with the cache', () => {
  const issuer = jwtTestConfig(`      - issuer: "https://issuer.test/"
        audience: [api]
        algorithms: [EdDSA]
        jwks_url: "http://127.0.0.1:9/jwks.json"
`).auth.jwt.issuers[0]!;
  const mapping = { plans: new Set(['free', 'enterprise']), defaultPlan: 'free' };

  function setup(expSeconds: number) {
    const clock = new ManualClock(NOW_MS);
    let valid = true;
    const verifier = scriptedVerifier(() =>
      valid ? { ok: true, claims: { sub: 'acme', plan: 'enterprise', exp: expSeconds }, issuer } : { ok: false, reason: 'token_expired' },
    );
    const lookups: ('hit' | 'miss')[] = [];
    const authenticator = new JwtAuthenticator({
      verifier,
      mapping,
      maxTokenBytes: 8192,
      cache: new TokenCache({ maxEntries: 100, ttlMs: 30_000, clock }),
      onCacheLookup: (result) => lookups.push(result),
    });
    const expire = () => {
      valid = false;
    };
    return { clock, verifier, authenticator, expire, lookups };
  }
  const bearer = (authenticator: Authenticator, token: string) => authenticator.authenticate({ xApiKey: undefined, authorization: `Bearer ${token}` });

  it('verifies a hot token once within the TTL', async () => {
    const { verifier, authenticator } = setup(NOW_MS / 1000 + 3600);
    const results = [await bearer(authenticator, 'tok'), await bearer(authenticator, 'tok'), await bearer(authenticator, 'tok')];
    expect(results.every((r) => r.ok && r.identity.plan === 'enterprise')).toBe(true);
    expect(verifier.calls).toBe(1);
    await bearer(authenticator, 'other');
    expect(verifier.calls).toBe(2);
  });

  it('reports each cache lookup as a hit or a miss (the token cache metric)', async () => {
    const { authenticator, lookups } = setup(NOW_MS / 1000 + 3600);
    await bearer(authenticator, 'tok');
    await bearer(authenticator, 'tok');
    await bearer(authenticator, 'other');
    expect(lookups).toEqual(['miss', 'hit', 'miss']);
  });

  it('verifies again once the token reaches exp, and then refuses it', async () => {
    const { clock, verifier, authenticator, expire } = setup(NOW_MS / 1000 + 10);
    expect((await bearer(authenticator, 'tok')).ok).toBe(true);
    clock.advance(10_000);
    expire();
    expect(await bearer(authenticator, 'tok')).toEqual({ ok: false, reason: 'token_expired' });
    expect(verifier.calls).toBe(2);
  });

  it('refuses an oversized token without verifying or hashing it', async () => {
    const { verifier, authenticator } = setup(NOW_MS / 1000 + 3600);
    expect(await bearer(authenticator, 'x'.repeat(8193))).toEqual({ ok: false, reason: 'token_too_large' });
    expect(verifier.calls).toBe(0);
  });

  it('reports a request without a bearer token as missing', async () => {
    const { authenticator } = setup(NOW_MS / 1000 + 3600);
    for (const authorization of [undefined, 'Basic dXNlcjpwYXNz', 'Bearer ', 'Bearer']) {
      expect(await authenticator.authenticate({ xApiKey: undefined, authorization })).toEqual({ ok: false, reason: 'missing' });
    }
  });
});

describe('KeyOrTokenAuthenticator (auth: any)', () => {
  const fixed = (result: AuthResult): Authenticator & { calls: number } => {
    const authenticator = {
      calls: 0,
      authenticate() {
        authenticator.calls++;
        return Promise.resolve(result);
      },
    };
    return authenticator;
  };
  const credentials = { xApiKey: undefined, authorization: 'Bearer x' };

  it('uses the token when no API key is presented', async () => {
    const keys = fixed({ ok: false, reason: 'missing' });
    const tokens = fixed({ ok: false, reason: 'token_expired' });
    expect(await new KeyOrTokenAuthenticator(keys, tokens).authenticate(credentials)).toEqual({ ok: false, reason: 'token_expired' });
  });

  it('judges a presented API key alone: a bad key does not fall through to the token', async () => {
    const keys = fixed({ ok: false, reason: 'unknown' });
    const tokens = fixed({ ok: false, reason: 'missing' });
    expect(await new KeyOrTokenAuthenticator(keys, tokens).authenticate(credentials)).toEqual({ ok: false, reason: 'unknown' });
    expect(tokens.calls).toBe(0);
  });
});
