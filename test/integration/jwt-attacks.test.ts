import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JwtAuthenticator } from '../../src/auth/jwt-authenticator.js';
import { ManualClock } from '../support/manual-clock.js';
import { AUDIENCE, ISSUER, jwksIssuer, jwtAuthenticatorFor, jwtTestConfig, outcomeOf, withBearer } from '../support/jwt-auth.js';
import { type JwksServer, startJwksServer } from '../support/jwks-server.js';
import { base64url, claimsAt, hmacToken, newSigner, signToken, type TestSigner, unsignedToken } from '../support/tokens.js';

/**
 * The known attacks on JWT verification, each its own case, against an
 * issuer with a real JWKS endpoint and an issuer with a static PEM key.
 * Every refusal must name its reason; none may reach a second key source.
 */

const NOW_MS = Date.UTC(2026, 5, 15, 10, 30, 0);
const NOW_S = NOW_MS / 1000;
const COOLDOWN_MS = 30_000;
const STATIC_ISSUER = 'https://static.test/';
const TOLERANCE_S = 30;

describe('JWT attacks', () => {
  let jwks: JwksServer;
  /** A JWKS server the attacker controls, publishing the attacker's key. */
  let attackerJwks: JwksServer;
  let rs: TestSigner;
  let es: TestSigner;
  let staticSigner: TestSigner;
  let attacker: TestSigner;
  let clock: ManualClock;
  let authenticator: JwtAuthenticator;

  const claims = (extra: Record<string, unknown> = {}) => claimsAt(NOW_MS, { iss: ISSUER, aud: AUDIENCE, sub: 'user-1', ...extra });
  const outcome = async (token: string) => outcomeOf(await withBearer(authenticator, token));

  beforeAll(async () => {
    rs = newSigner('RS256');
    es = newSigner('ES256');
    staticSigner = newSigner('RS256', 'static-1');
    attacker = newSigner('RS256', 'attacker-1');
    jwks = await startJwksServer([rs.publicJwk, es.publicJwk]);
    attackerJwks = await startJwksServer([attacker.publicJwk]);
  });
  afterAll(async () => {
    await Promise.all([jwks.close(), attackerJwks.close()]);
  });
  beforeEach(async () => {
    clock = new ManualClock(NOW_MS);
    const pem = (staticSigner.publicKey.export({ type: 'spki', format: 'pem' }) as string).trim().split('\n');
    const staticIssuer = `      - issuer: "${STATIC_ISSUER}"
        audience: ["${AUDIENCE}"]
        algorithms: [RS256]
        keys:
          - kid: static-1
            pem: |
${pem.map((line) => `              ${line}`).join('\n')}
`;
    const config = jwtTestConfig(
      jwksIssuer(jwks.url, `        clock_tolerance_ms: ${TOLERANCE_S * 1000}\n`) + staticIssuer,
      '    token_cache: { max_entries: 0 }\n    max_token_bytes: 8192\n',
    );
    authenticator = jwtAuthenticatorFor(config, clock);
    // Load the key set, so each case starts with the keys cached and the cooldown running.
    expect(await outcome(await signToken(rs, claims()))).toBe('ok');
  });

  describe('algorithm and key confusion', () => {
    it.each(['none', 'None', 'NONE', 'nOnE'])('refuses alg %s, signed or not', async (alg) => {
      expect(await outcome(unsignedToken({ alg, kid: rs.kid }, claims()))).toBe('token_algorithm_not_allowed');
      expect(await outcome(unsignedToken({ alg, kid: rs.kid }, claims(), base64url('x')))).toBe('token_algorithm_not_allowed');
    });

    it('refuses an HS256 token whose HMAC secret is the RSA public key from the JWKS (PEM and JWK forms)', async () => {
      const pem = rs.publicKey.export({ type: 'spki', format: 'pem' }) as string;
      const der = rs.publicKey.export({ type: 'spki', format: 'der' });
      for (const secret of [pem, pem.trim(), der, JSON.stringify(rs.publicJwk)]) {
        expect(await outcome(hmacToken(secret, { kid: rs.kid, typ: 'JWT' }, claims()))).toBe('token_algorithm_not_allowed');
      }
    });

    it('refuses an HS256 token whose HMAC secret is the configured PEM of a static-key issuer', async () => {
      const pem = staticSigner.publicKey.export({ type: 'spki', format: 'pem' }) as string;
      const token = hmacToken(pem, { kid: 'static-1' }, claimsAt(NOW_MS, { iss: STATIC_ISSUER, aud: AUDIENCE, sub: 'x' }));
      expect(await outcome(token)).toBe('token_algorithm_not_allowed');
      // The static issuer itself works.
      expect(await outcome(await signToken(staticSigner, claimsAt(NOW_MS, { iss: STATIC_ISSUER, aud: AUDIENCE, sub: 'x' })))).toBe('ok');
    });

    it('refuses an algorithm the issuer does not allow, even one quotagate supports', async () => {
      const ps = await signToken({ ...rs, alg: 'PS256' as 'RS256' }, claims());
      expect(await outcome(ps)).toBe('token_algorithm_not_allowed');
      const staticEs = await signToken(es, claimsAt(NOW_MS, { iss: STATIC_ISSUER, aud: AUDIENCE, sub: 'x' }));
      expect(await outcome(staticEs)).toBe('token_algorithm_not_allowed');
    });

    it('ignores an embedded jwk header: the attacker key it carries is never used', async () => {
      // With the real kid: verified against the real key, so the signature fails.
      const withKid = await signToken(attacker, claims(), { kid: rs.kid, jwk: attacker.publicJwk });
      expect(await outcome(withKid)).toBe('token_signature_invalid');
      // Without a kid: the one RSA key of the set is used, with the same result.
      const withoutKid = await signToken(attacker, claims(), { kid: undefined, jwk: attacker.publicJwk });
      expect(await outcome(withoutKid)).toBe('token_signature_invalid');
    });

    it('ignores jku and x5u headers: the attacker\'s key server is never asked', async () => {
      const before = jwks.hits;
      const jku = await signToken(attacker, claims(), { jku: attackerJwks.url });
      expect(await outcome(jku)).toBe('token_key_unknown');
      const x5u = await signToken(attacker, claims(), { x5u: attackerJwks.url });
      expect(await outcome(x5u)).toBe('token_key_unknown');
      const jkuWithRealKid = await signToken(attacker, claims(), { kid: rs.kid, jku: attackerJwks.url });
      expect(await outcome(jkuWithRealKid)).toBe('token_signature_invalid');
      expect(attackerJwks.hits).toBe(0);
      expect(jwks.hits - before).toBe(0);
    });

    it('refuses a token signed by one issuer\'s key that claims to be from another configured issuer', async () => {
      const token = await signToken(rs, claimsAt(NOW_MS, { iss: STATIC_ISSUER, aud: AUDIENCE, sub: 'x' }), { kid: 'static-1' });
      expect(await outcome(token)).toBe('token_signature_invalid');
    });

    it('refuses a token whose payload was changed after signing', async () => {
      const [header, , signature] = (await signToken(rs, claims({ plan: 'free' }))).split('.');
      const forged = `${header}.${base64url(JSON.stringify(claims({ plan: 'enterprise' })))}.${signature}`;
      expect(await outcome(forged)).toBe('token_signature_invalid');
    });
  });

  describe('claims', () => {
    it('refuses an expired token', async () => {
      expect(await outcome(await signToken(rs, claims({ exp: NOW_S - TOLERANCE_S - 1 })))).toBe('token_expired');
    });

    it('accepts a token expired by less than the clock tolerance', async () => {
      expect(await outcome(await signToken(rs, claims({ exp: NOW_S - TOLERANCE_S + 1 })))).toBe('ok');
    });

    it('refuses a token whose nbf is in the future', async () => {
      expect(await outcome(await signToken(rs, claims({ nbf: NOW_S + TOLERANCE_S + 1 })))).toBe('token_not_yet_valid');
      expect(await outcome(await signToken(rs, claims({ nbf: NOW_S + TOLERANCE_S - 1 })))).toBe('ok');
    });

    it('refuses a token issued in the future (iat)', async () => {
      expect(await outcome(await signToken(rs, claims({ iat: NOW_S + TOLERANCE_S + 1 })))).toBe('token_not_yet_valid');
    });

    it('refuses a token without exp', async () => {
      const { exp: _omitted, ...withoutExp } = claims();
      expect(await outcome(await signToken(rs, withoutExp))).toBe('token_claims_invalid');
    });

    it('refuses a token whose exp is not a number', async () => {
      expect(await outcome(await signToken(rs, claims({ exp: String(NOW_S + 60) })))).toBe('token_claims_invalid');
    });

    it('refuses a token for another audience, or for none', async () => {
      expect(await outcome(await signToken(rs, claims({ aud: 'https://other.test' })))).toBe('token_audience_invalid');
      expect(await outcome(await signToken(rs, claims({ aud: ['https://other.test', 'https://api.test/'] })))).toBe('token_audience_invalid');
      const { aud: _omitted, ...withoutAud } = claims();
      expect(await outcome(await signToken(rs, withoutAud))).toBe('token_audience_invalid');
    });

    it('accepts a token whose audience list includes this API', async () => {
      expect(await outcome(await signToken(rs, claims({ aud: ['https://other.test', AUDIENCE] })))).toBe('ok');
    });

    it('refuses a token from an issuer that is not configured, or with no issuer', async () => {
      expect(await outcome(await signToken(rs, claims({ iss: 'https://evil.test/' })))).toBe('token_issuer_invalid');
      expect(await outcome(await signToken(rs, claims({ iss: ISSUER.slice(0, -1) })))).toBe('token_issuer_invalid');
      const { iss: _omitted, ...withoutIss } = claims();
      expect(await outcome(await signToken(rs, withoutIss))).toBe('token_issuer_invalid');
    });

    it('refuses a token without a subject', async () => {
      const { sub: _omitted, ...withoutSub } = claims();
      expect(await outcome(await signToken(rs, withoutSub))).toBe('token_claims_invalid');
      expect(await outcome(await signToken(rs, claims({ sub: 42 })))).toBe('token_claims_invalid');
    });
  });

  describe('key lookups', () => {
    it('refetches at most once per cooldown under a flood of unknown kids', async () => {
      const before = jwks.hits;
      const flood = async (count: number) => {
        const tokens = await Promise.all(
          Array.from({ length: count }, () => signToken(es, claims(), { kid: randomBytes(8).toString('hex') })),
        );
        return Promise.all(tokens.map(outcome));
      };
      // Within the cooldown of the fetch in beforeEach: no fetch at all.
      expect(new Set(await flood(50))).toEqual(new Set(['token_key_unknown']));
      expect(jwks.hits - before).toBe(0);
      clock.advance(COOLDOWN_MS);
      expect(new Set(await flood(50))).toEqual(new Set(['token_key_unknown']));
      expect(jwks.hits - before).toBe(1);
      expect(new Set(await flood(50))).toEqual(new Set(['token_key_unknown']));
      expect(jwks.hits - before).toBe(1);
      clock.advance(COOLDOWN_MS);
      await flood(50);
      expect(jwks.hits - before).toBe(2);
      // The real keys are unaffected.
      expect(await outcome(await signToken(rs, claims()))).toBe('ok');
    });

    it('refuses a kid of the right key type that names no key', async () => {
      expect(await outcome(await signToken(rs, claims(), { kid: 'no-such-key' }))).toBe('token_key_unknown');
    });
  });

  describe('malformed tokens', () => {
    it('refuses a token cut short inside its payload', async () => {
      const token = await signToken(rs, claims());
      const [header, payload] = token.split('.');
      expect(await outcome(`${header}.${payload!.slice(0, 10)}`)).toBe('token_malformed');
      expect(await outcome(`${header}.${payload!.slice(0, 11)}.`)).toBe('token_malformed');
      expect(await outcome(token.slice(0, token.indexOf('.') + 5))).toBe('token_malformed');
    });

    it('refuses a token whose signature was cut short', async () => {
      const token = await signToken(rs, claims());
      expect(await outcome(token.slice(0, -4))).toBe('token_signature_invalid');
      expect(await outcome(token.slice(0, token.lastIndexOf('.') + 1))).toBe('token_signature_invalid');
    });

    it.each([
      ['a word', 'hello'],
      ['empty segments', '..'],
      ['three junk segments', 'a.b.c'],
      ['four segments', 'eyJhbGciOiJSUzI1NiJ9.e30.e30.e30'],
      ['a header that is not JSON', `${base64url('not json')}.${base64url('{}')}.sig`],
      ['a header that is a JSON list', `${base64url('["RS256"]')}.${base64url('{}')}.sig`],
      ['a payload that is not JSON', `${base64url('{"alg":"RS256"}')}.${base64url('nope')}.sig`],
      ['a payload that is a JSON string', `${base64url('{"alg":"RS256"}')}.${base64url('"sub"')}.sig`],
      ['characters outside base64url', 'eyJhbGciOiJSUzI1NiJ9.e30+/.c2ln'],
      ['random bytes', randomBytes(200).toString('base64')],
      ['a JWE (five segments)', 'eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d'],
      ['a non-string kid', unsignedToken({ alg: 'RS256', kid: 7 }, { iss: ISSUER }, 'c2ln')],
    ])('refuses garbage: %s', async (_, token) => {
      expect(await outcome(token)).toBe('token_malformed');
    });

    it('refuses an oversized token before parsing it', async () => {
      expect(await outcome('x'.repeat(8193))).toBe('token_too_large');
      const big = await signToken(rs, claims({ padding: 'p'.repeat(9000) }));
      expect(await outcome(big)).toBe('token_too_large');
      expect(await outcome(await signToken(rs, claims({ padding: 'p'.repeat(5000) })))).toBe('ok');
    });
  });
});
