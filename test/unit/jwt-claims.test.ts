import { beforeAll, describe, expect, it } from 'vitest';
import { missingScopes, scopesOf } from '../../src/auth/token-claims.js';
import { ManualClock } from '../support/manual-clock.js';
import { AUDIENCE, ISSUER, jwtAuthenticatorFor, jwtTestConfig, withBearer } from '../support/jwt-auth.js';
import { claimsAt, newSigner, signToken, type TestSigner } from '../support/tokens.js';

/** Claims → identity: subject, plan (with the default-plan fallback) and scopes, with static keys. */

const NOW_MS = Date.UTC(2026, 5, 15, 10, 30, 0);

describe('token claims to identity', () => {
  let signer: TestSigner;
  beforeAll(() => {
    signer = newSigner('ES256', 'es-1');
  });

  function authenticatorWith(issuerExtra = '') {
    const jwk = JSON.stringify(signer.publicJwk);
    const issuer = `      - issuer: "${ISSUER}"
        audience: ["${AUDIENCE}"]
        algorithms: [ES256]
        keys: [{ jwk: ${jwk} }]
${issuerExtra}`;
    return jwtAuthenticatorFor(jwtTestConfig(issuer), new ManualClock(NOW_MS));
  }

  async function identify(claims: Record<string, unknown>, issuerExtra = '') {
    const token = await signToken(signer, claimsAt(NOW_MS, { iss: ISSUER, aud: AUDIENCE, ...claims }));
    return withBearer(authenticatorWith(issuerExtra), token);
  }

  it('gives a plan claim of enterprise the enterprise plan', async () => {
    expect(await identify({ sub: 'acme', plan: 'enterprise' })).toMatchObject({ ok: true, identity: { subject: 'acme', plan: 'enterprise' } });
  });

  it('gives a plan claim of superuser, which no plan is called, the default plan', async () => {
    expect(await identify({ sub: 'acme', plan: 'superuser' })).toMatchObject({ ok: true, identity: { subject: 'acme', plan: 'free' } });
  });

  it.each([
    ['missing', {}],
    ['a list', { plan: ['enterprise'] }],
    ['a number', { plan: 1 }],
    ['empty', { plan: '' }],
    ['differently cased', { plan: 'Enterprise' }],
  ])('gives the default plan when the plan claim is %s', async (_, claims) => {
    expect(await identify({ sub: 'acme', ...claims })).toMatchObject({ ok: true, identity: { plan: 'free' } });
  });

  it('reads subject, plan and scopes from the configured claim names, and prefixes the subject', async () => {
    const result = await identify(
      { sub: 'ignored', email: 'dev@acme.test', 'https://acme.test/plan': 'enterprise', scp: ['orders:read', 'orders:write'] },
      `        subject_claim: email
        plan_claim: "https://acme.test/plan"
        scopes_claim: scp
        subject_prefix: "idp:"
`,
    );
    expect(result).toEqual({
      ok: true,
      identity: { subject: 'idp:dev@acme.test', plan: 'enterprise' },
      scopes: new Set(['orders:read', 'orders:write']),
      credentialHeader: 'authorization',
    });
  });

  it('refuses a token whose subject claim is missing, empty, too long or not Unicode text', async () => {
    for (const sub of [undefined, '', 'x'.repeat(257), 'a\ud800', '\udc00b']) {
      expect(await identify({ sub })).toEqual({ ok: false, reason: 'token_claims_invalid' });
    }
    expect(await identify({ sub: 'x'.repeat(256) })).toMatchObject({ ok: true });
    expect(await identify({ sub: 'emoji \ud83d\ude00' })).toMatchObject({ ok: true });
  });

  it('carries no key id for a token', async () => {
    const result = await identify({ sub: 'acme' });
    expect(result.ok && result.identity.keyId).toBeUndefined();
  });
});

describe('scopes', () => {
  it('reads a space-separated string or a list of strings, and nothing else', () => {
    expect(scopesOf('read  write\tadmin ')).toEqual(new Set(['read', 'write', 'admin']));
    expect(scopesOf(['read', 7, '', 'write'])).toEqual(new Set(['read', 'write']));
    expect(scopesOf(undefined)).toEqual(new Set());
    expect(scopesOf({ read: true })).toEqual(new Set());
  });

  it('lists the required scopes a credential lacks, in the route\'s order', () => {
    expect(missingScopes(new Set(['b']), ['a', 'b', 'c'])).toEqual(['a', 'c']);
    expect(missingScopes(new Set(['a', 'b', 'c']), ['a', 'c'])).toEqual([]);
  });
});
