import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type JwksServer, startJwksServer } from '../support/jwks-server.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { FIXED_NOW_MS, startTestGateway, testConfig, TEST_KEY, UNKNOWN_KEY, type TestGateway } from '../support/test-gateway.js';
import { claimsAt, newSigner, signToken, type TestSigner, unsignedToken } from '../support/tokens.js';

/** `auth: jwt` and `auth: any` routes through the real gateway, with a real JWKS endpoint and upstream. */

const ISSUER = 'https://idp.test/';
const AUDIENCE = 'https://api.test';

const ROUTES = `
  - { name: orders, path_prefix: /orders, upstream: app, auth: jwt, scopes: ["orders:read"] }
  - { name: withheld, path_prefix: /jwt/withheld, upstream: app, auth: jwt, forward_token: false }
  - { name: tokens, path_prefix: /jwt, upstream: app, auth: jwt }
  - { name: either, path_prefix: /any, upstream: app, auth: any }
  - { name: keys, path_prefix: /keys, upstream: app }`;

const PLANS = `  small: { limits: { minute: 3, hour: 100 } }
  enterprise: { limits: { minute: 10, hour: 1000 } }`;

describe('gateway end to end: JWT routes', () => {
  let upstream: RecordingUpstream;
  let jwks: JwksServer;
  let signer: TestSigner;
  let gw: TestGateway;

  const token = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
    signToken(signer, claimsAt(FIXED_NOW_MS, { iss: ISSUER, aud: AUDIENCE, sub: 'user-1', ...claims }), header);
  const get = (path: string, headers: Record<string, string> = {}) => request(`${gw.proxyUrl}${path}`, { headers });
  const bearer = (value: string) => ({ authorization: `Bearer ${value}` });

  beforeAll(async () => {
    signer = newSigner('RS256');
    upstream = await startRecordingUpstream();
    jwks = await startJwksServer([signer.publicJwk]);
  });
  afterAll(async () => {
    await Promise.all([upstream.close(), jwks.close()]);
  });
  beforeEach(async () => {
    upstream.requests.length = 0;
    jwks.setOutage('none');
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: ROUTES,
        plans: PLANS,
        jwt: `    default_plan: small
    issuers:
      - issuer: "${ISSUER}"
        audience: ["${AUDIENCE}"]
        algorithms: [RS256]
        jwks_url: "${jwks.url}"
`,
      }),
    );
  });
  afterEach(async () => {
    await gw.gateway.shutdown();
  });

  it('forwards a request with a valid token as its subject and plan, with the token (forward_token defaults to true)', async () => {
    const jwt = await token({ plan: 'enterprise' });
    const res = await get('/jwt/items?x=1', { ...bearer(jwt), 'x-custom': 'kept' });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(res.headers['ratelimit-policy']).toBe('"minute";q=10;w=60, "hour";q=1000;w=3600');
    const seen = upstream.requests[0]!;
    expect(seen.url).toBe('/jwt/items?x=1');
    expect(seen.headers['x-quotagate-subject']).toBe('user-1');
    expect(seen.headers['x-quotagate-plan']).toBe('enterprise');
    expect(seen.headers['x-quotagate-key-id']).toBeUndefined();
    expect(seen.headers.authorization).toBe(`Bearer ${jwt}`);
    expect(seen.headers['x-custom']).toBe('kept');
  });

  it('withholds the token on a route with forward_token: false, and an API key sent beside it on every route', async () => {
    const jwt = await token();
    for (const path of ['/jwt/withheld/x', '/jwt/x']) {
      const res = await get(path, { ...bearer(jwt), 'x-api-key': TEST_KEY, 'x-custom': 'kept' });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    }
    expect(upstream.requests.map((r) => [r.url, r.headers.authorization, r.headers['x-api-key'], r.headers['x-custom']])).toEqual([
      ['/jwt/withheld/x', undefined, undefined, 'kept'],
      ['/jwt/x', `Bearer ${jwt}`, undefined, 'kept'],
    ]);
  });

  it('gives a token whose plan claim names no configured plan the default plan', async () => {
    const res = await get('/jwt/x', bearer(await token({ plan: 'superuser' })));
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    expect(res.headers['ratelimit-policy']).toBe('"minute";q=3;w=60, "hour";q=100;w=3600');
    expect(upstream.requests[0]!.headers['x-quotagate-plan']).toBe('small');
  });

  it('counts every token of one subject against the same windows, and other subjects apart', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await get('/jwt/x', bearer(await token({ jti: `t-${i}` })));
      statuses.push(res.statusCode);
      await res.body.dump();
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    const other = await get('/jwt/x', bearer(await token({ sub: 'user-2' })));
    await other.body.dump();
    expect(other.statusCode).toBe(200);
    expect(other.headers['x-ratelimit-remaining-minute']).toBe('2');
  });

  it('answers a request with no token 401 missing_credentials with a bare Bearer challenge', async () => {
    const res = await get('/jwt/x');
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(await res.body.json()).toMatchObject({ status: 401, code: 'missing_credentials' });
    expect(upstream.requests).toHaveLength(0);
  });

  it.each([
    ['an expired token', () => token({ exp: FIXED_NOW_MS / 1000 - 3600 }), 'token_expired'],
    ['a token for another audience', () => token({ aud: 'https://other.test' }), 'token_audience_invalid'],
    ['a token from another issuer', () => token({ iss: 'https://other.test/' }), 'token_issuer_invalid'],
    ['an unsigned token (alg none)', () => Promise.resolve(unsignedToken({ alg: 'none' }, { iss: ISSUER, sub: 'x' })), 'token_algorithm_not_allowed'],
    ['a garbage token', () => Promise.resolve('not-a-jwt'), 'token_malformed'],
    ['a token with an unknown kid', () => token({}, { kid: 'rotated-away' }), 'token_key_unknown'],
    ['an oversized token', () => Promise.resolve('x'.repeat(9000)), 'token_too_large'],
  ])('answers %s 401 with its code and an invalid_token challenge, and forwards nothing', async (_, makeToken, code) => {
    const res = await get('/jwt/x', bearer(await makeToken()));
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(await res.body.json()).toMatchObject({ status: 401, code, type: `https://quotagate.dev/problems/${code}` });
    expect(upstream.requests).toHaveLength(0);
  });

  it('answers 403 insufficient_scope when the token lacks a scope the route requires', async () => {
    const denied = await get('/orders/1', bearer(await token({ scope: 'profile orders:write' })));
    expect(denied.statusCode).toBe(403);
    expect(denied.headers['www-authenticate']).toBe('Bearer error="insufficient_scope", scope="orders:read"');
    expect(await denied.body.json()).toMatchObject({ status: 403, code: 'insufficient_scope', detail: 'This route needs the scope orders:read.' });
    expect(upstream.requests).toHaveLength(0);
    const allowed = await get('/orders/1', bearer(await token({ scope: 'profile orders:read' })));
    await allowed.body.dump();
    expect(allowed.statusCode).toBe(200);
  });

  it('takes an API key or a token on an auth: any route', async () => {
    const byKey = await get('/any/x', { 'x-api-key': TEST_KEY });
    await byKey.body.dump();
    const byToken = await get('/any/x', bearer(await token({ sub: 'user-9', plan: 'enterprise' })));
    await byToken.body.dump();
    const byKeyAsBearer = await get('/any/x', bearer(TEST_KEY));
    await byKeyAsBearer.body.dump();
    expect([byKey.statusCode, byToken.statusCode, byKeyAsBearer.statusCode]).toEqual([200, 200, 200]);
    expect(upstream.requests.map((r) => [r.headers['x-quotagate-subject'], r.headers['x-quotagate-plan'], r.headers['x-quotagate-key-id']])).toEqual([
      ['customer-1', 'small', 'test-key'],
      ['user-9', 'enterprise', undefined],
      ['customer-1', 'small', 'test-key'],
    ]);
    // A key never reaches the upstream; the verified token does (forward_token defaults to true).
    expect(upstream.requests.map((r) => [r.headers.authorization !== undefined, r.headers['x-api-key'] !== undefined])).toEqual([
      [false, false],
      [true, false],
      [false, false],
    ]);
  });

  it('judges a presented API key alone on an auth: any route, and asks for either credential when none came', async () => {
    const badKey = await get('/any/x', { 'x-api-key': UNKNOWN_KEY, ...bearer(await token()) });
    expect(badKey.statusCode).toBe(401);
    expect(await badKey.body.json()).toMatchObject({ code: 'invalid_api_key' });
    const none = await get('/any/x');
    expect(none.statusCode).toBe(401);
    expect(await none.body.json()).toMatchObject({
      code: 'missing_credentials',
      detail: 'This route needs an API key (X-API-Key) or a token (Authorization: Bearer <token>).',
    });
    expect(upstream.requests).toHaveLength(0);
  });

  it('does not take a token on an api_key route', async () => {
    const res = await get('/keys/x', bearer(await token()));
    expect(res.statusCode).toBe(401);
    expect(await res.body.json()).toMatchObject({ code: 'missing_credentials' });
  });

  it('answers 503 jwks_unavailable while the issuer\'s keys were never fetched', async () => {
    jwks.setOutage('error');
    const res = await get('/jwt/x', bearer(await token()));
    expect(res.statusCode).toBe(503);
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(await res.body.json()).toMatchObject({ status: 503, code: 'jwks_unavailable' });
    expect(upstream.requests).toHaveLength(0);
  });

  it('counts each refusal by reason in the metrics, never with the token or subject', async () => {
    const expired = await token({ exp: FIXED_NOW_MS / 1000 - 3600 });
    const refused: Array<[string, string]> = [
      ['/jwt/x', expired],
      ['/jwt/x', 'garbage'],
      ['/orders/x', await token({ scope: 'x' })],
    ];
    for (const [path, value] of refused) await (await get(path, bearer(value))).body.dump();
    const ok = await get('/jwt/x', bearer(await token()));
    await ok.body.dump();
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain('quotagate_auth_failures_total{reason="token_expired"} 1');
    expect(metrics).toContain('quotagate_auth_failures_total{reason="token_malformed"} 1');
    expect(metrics).toContain('quotagate_auth_failures_total{reason="insufficient_scope"} 1');
    expect(metrics).toContain('quotagate_jwks_fetches_total{outcome="ok"} 1');
    expect(metrics).toContain('quotagate_requests_total{route="tokens",plan="small",outcome="forwarded"} 1');
    expect(metrics).not.toContain('user-1');
    expect(metrics).not.toContain(expired.slice(0, 20));
  });
});
