import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JwtAuthenticator } from '../../src/auth/jwt-authenticator.js';
import { ManualClock } from '../support/manual-clock.js';
import { AUDIENCE, ISSUER, jwksIssuer, jwtAuthenticatorFor, jwtTestConfig, outcomeOf, withBearer } from '../support/jwt-auth.js';
import { type JwksOutage, type JwksServer, startJwksServer } from '../support/jwks-server.js';
import { claimsAt, newSigner, signToken, type TestSigner } from '../support/tokens.js';
import { eventually } from '../support/within.js';

/**
 * JWT verification against a real JWKS endpoint (node:http on loopback):
 * each algorithm, key rotation through the unknown-kid refetch, and
 * outages. Time is a manual clock, so cooldowns pass only when a test says.
 */

const NOW_MS = Date.UTC(2026, 5, 15, 10, 30, 0);
const COOLDOWN_MS = 30_000;
const REFRESH_MS = 600_000;
/** The default jwks_max_stale_ms: 24 h. */
const MAX_STALE_MS = 86_400_000;
const WAIT_MS = 5_000;

describe('JWT verification with a remote JWKS', () => {
  let jwks: JwksServer;
  let rs: TestSigner;
  let es: TestSigner;
  let ed: TestSigner;
  let clock: ManualClock;
  let fetches: Array<'ok' | 'error'>;
  let authenticator: JwtAuthenticator;

  const token = (signer: TestSigner, claims: Record<string, unknown> = {}) =>
    signToken(signer, claimsAt(clock.now(), { iss: ISSUER, aud: AUDIENCE, sub: 'user-1', ...claims }));

  beforeAll(async () => {
    rs = newSigner('RS256');
    es = newSigner('ES256');
    ed = newSigner('EdDSA');
    jwks = await startJwksServer();
  });
  afterAll(async () => {
    await jwks.close();
  });
  beforeEach(() => {
    jwks.publish([rs.publicJwk, es.publicJwk, ed.publicJwk]);
    jwks.setOutage('none');
    clock = new ManualClock(NOW_MS);
    fetches = [];
    // No token cache: every request reaches the key source.
    const config = jwtTestConfig(
      jwksIssuer(jwks.url, '        jwks_timeout_ms: 300\n'),
      '    token_cache: { max_entries: 0 }\n',
    );
    authenticator = jwtAuthenticatorFor(config, clock, {
      onJwksFetch: (_issuer, outcome) => fetches.push(outcome.ok ? 'ok' : 'error'),
    });
  });

  it.each(['RS256', 'ES256', 'EdDSA'] as const)('verifies an %s token with a key from the JWKS', async (alg) => {
    const signer = { RS256: rs, ES256: es, EdDSA: ed }[alg];
    const result = await withBearer(authenticator, await token(signer, { sub: `user-${alg}` }));
    expect(result).toEqual({
      ok: true,
      identity: { subject: `user-${alg}`, plan: 'free' },
      scopes: new Set(),
      credentialHeader: 'authorization',
    });
  });

  it('fetches the key set once for many tokens of known keys', async () => {
    const before = jwks.hits;
    for (const signer of [rs, es, ed, rs, es, ed]) {
      expect(outcomeOf(await withBearer(authenticator, await token(signer)))).toBe('ok');
    }
    expect(jwks.hits - before).toBe(1);
  });

  it('fetches once for concurrent first tokens', async () => {
    const before = jwks.hits;
    const tokens = await Promise.all([rs, es, ed].map((signer) => token(signer)));
    const results = await Promise.all(tokens.map((t) => withBearer(authenticator, t)));
    expect(results.map(outcomeOf)).toEqual(['ok', 'ok', 'ok']);
    expect(jwks.hits - before).toBe(1);
  });

  it('picks up a rotated key through the unknown-kid refetch', async () => {
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('ok');
    const before = jwks.hits;
    const rotated = newSigner('RS256');
    jwks.publish([rotated.publicJwk]);
    clock.advance(COOLDOWN_MS);
    expect(outcomeOf(await withBearer(authenticator, await token(rotated)))).toBe('ok');
    expect(jwks.hits - before).toBe(1);
    // The old key left the set with that fetch.
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('token_key_unknown');
  });

  it('does not refetch for a new kid within the cooldown, and does once it has passed', async () => {
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('ok');
    const rotated = newSigner('ES256');
    jwks.publish([rs.publicJwk, rotated.publicJwk]);
    const before = jwks.hits;
    clock.advance(COOLDOWN_MS - 1);
    expect(outcomeOf(await withBearer(authenticator, await token(rotated)))).toBe('token_key_unknown');
    expect(jwks.hits - before).toBe(0);
    clock.advance(1);
    expect(outcomeOf(await withBearer(authenticator, await token(rotated)))).toBe('ok');
    expect(jwks.hits - before).toBe(1);
  });

  it('refreshes a key set older than jwks_refresh_ms in the background, dropping removed keys', async () => {
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('ok');
    jwks.publish([es.publicJwk]);
    clock.advance(REFRESH_MS);
    // This request is answered from the old set while the refresh runs.
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('ok');
    await eventually(() => fetches.length === 2, WAIT_MS, 'the background refresh');
    expect(fetches).toEqual(['ok', 'ok']);
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('token_key_unknown');
    expect(outcomeOf(await withBearer(authenticator, await token(es)))).toBe('ok');
  });

  it.each<JwksOutage>(['error', 'reset', 'hang'])(
    'keeps verifying with the cached keys while the JWKS is down (%s)',
    async (outage) => {
      expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('ok');
      jwks.setOutage(outage);
      // Stale: the next request triggers a background refresh, which fails.
      clock.advance(REFRESH_MS);
      expect(outcomeOf(await withBearer(authenticator, await token(es)))).toBe('ok');
      await eventually(() => fetches.length === 2, WAIT_MS, 'the failed refresh');
      expect(fetches).toEqual(['ok', 'error']);
      // Long into the outage, with refetches failing each cooldown, the keys still verify.
      for (let attempt = 3; attempt <= 5; attempt++) {
        clock.advance(COOLDOWN_MS);
        expect(outcomeOf(await withBearer(authenticator, await token(ed)))).toBe('ok');
        await eventually(() => fetches.length === attempt, WAIT_MS, `failed refresh ${attempt}`);
      }
      expect(fetches).toEqual(['ok', 'error', 'error', 'error', 'error']);
    },
  );

  it('stops trusting keys fetched jwks_max_stale_ms ago while the JWKS is down, and trusts them again after a fetch', async () => {
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('ok');
    jwks.setOutage('error');
    // Just short of the bound (refetches failing meanwhile), the cached keys still verify.
    clock.advance(MAX_STALE_MS - 1);
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('ok');
    await eventually(() => fetches.length === 2, WAIT_MS, 'the failed background refresh');
    clock.advance(1);
    // Fetched 24 h ago: a revoked signing key must not stay valid through the outage.
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('jwks_unavailable');
    expect(outcomeOf(await withBearer(authenticator, await token(es)))).toBe('jwks_unavailable');
    expect(fetches).toEqual(['ok', 'error']);
    // The next attempt, one cooldown later, succeeds: the fresh set is trusted again.
    jwks.setOutage('none');
    jwks.publish([es.publicJwk]);
    clock.advance(COOLDOWN_MS);
    expect(outcomeOf(await withBearer(authenticator, await token(es)))).toBe('ok');
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('token_key_unknown');
    expect(fetches).toEqual(['ok', 'error', 'ok']);
  });

  it('answers jwks_unavailable while no key set was ever fetched, retrying only after the cooldown', async () => {
    jwks.setOutage('error');
    const before = jwks.hits;
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('jwks_unavailable');
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('jwks_unavailable');
    expect(jwks.hits - before).toBe(1);
    jwks.setOutage('none');
    clock.advance(COOLDOWN_MS);
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('ok');
    expect(jwks.hits - before).toBe(2);
  });

  it('gives up on a JWKS endpoint that never answers after jwks_timeout_ms', async () => {
    jwks.setOutage('hang');
    expect(outcomeOf(await withBearer(authenticator, await token(rs)))).toBe('jwks_unavailable');
    expect(fetches).toEqual(['error']);
  });
});
