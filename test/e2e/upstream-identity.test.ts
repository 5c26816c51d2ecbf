import { request as httpRequest } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import type { RedisClient } from '../../src/redis/client.js';
import { type JwksServer, startJwksServer } from '../support/jwks-server.js';
import { startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from '../support/recording-upstream.js';
import { connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { FIXED_NOW_MS, startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { claimsAt, newSigner, signToken, type TestSigner } from '../support/tokens.js';
import { within } from '../support/within.js';

/**
 * Headers and identity the upstream can trust (issue 10 §3), through the real
 * server in front of a recording upstream, on both stores: forged
 * gateway-owned headers in underscore spellings, subjects that differ only
 * in encoding, API keys on every kind of route, forward_token, and the JWT
 * issuer rules max_token_age_s and typ.
 */

const REDIS_URL = 'redis://127.0.0.1:6379';
const ISSUER = 'https://idp.test/';
const AUDIENCE = 'https://api.test';
const STRICT_ISSUER = 'https://strict.idp.test/';

const UNICODE_KEY = generateApiKey('qg');
const LITERAL_KEY = generateApiKey('qg');
const PLAIN_KEY = generateApiKey('qg');

function config(upstreamOrigin: string, jwksUrl: string, storeSection: string): string {
  return `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
upstreams:
  app: { url: "${upstreamOrigin}", connect_timeout_ms: 500, headers_timeout_ms: 2000, body_timeout_ms: 2000 }
routes:
  - { name: public, path_prefix: /public, upstream: app, auth: none }
  - { name: tokens, path_prefix: /jwt, upstream: app, auth: jwt }
  - { name: either, path_prefix: /any, upstream: app, auth: any, forward_token: false }
  - { name: keys, path_prefix: /keys, upstream: app }
auth:
  api_keys:
    keys:
      - { id: unicode, hash: ${hashApiKey(UNICODE_KEY)}, subject: "jürgen", plan: small }
      - { id: literal, hash: ${hashApiKey(LITERAL_KEY)}, subject: "j%C3%BCrgen", plan: small }
      - { id: plain, hash: ${hashApiKey(PLAIN_KEY)}, subject: "customer 1/100%", plan: small }
  jwt:
    default_plan: small
    issuers:
      - { issuer: "${ISSUER}", audience: ["${AUDIENCE}"], algorithms: [RS256], jwks_url: "${jwksUrl}", subject_prefix: "idp:" }
      - issuer: "${STRICT_ISSUER}"
        audience: ["${AUDIENCE}"]
        algorithms: [RS256]
        jwks_url: "${jwksUrl}"
        subject_prefix: "strict:"
        max_token_age_s: 300
        typ: at+jwt
        clock_tolerance_ms: 0
plans:
  small: { limits: { minute: 100, hour: 1000 } }
  anonymous: { limits: { minute: 100 } }
postgres: { data_dir: "memory://" }
${storeSection}`;
}

/** A GET with headers sent exactly as named, in this order (a raw header list: node then sets no Host itself). */
function get(origin: string, path: string, headers: ReadonlyArray<readonly [string, string]>): Promise<{ status: number; body: string }> {
  const raw = [['host', new URL(origin).host], ...headers].flat();
  return within(
    new Promise((resolve, reject) => {
      const req = httpRequest(`${origin}${path}`, { headers: raw as unknown as Record<string, string> }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end();
    }),
    5_000,
    `GET ${path}`,
  );
}

/** Header names as the upstream received them, with `_` read as `-`, lower-cased. */
function dashedNames(request: RecordedRequest): string[] {
  return request.rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase().replaceAll('_', '-'));
}

describe.each(['memory', 'redis'] as const)('headers and identity the upstream can trust, end to end (%s store)', (store) => {
  let upstream: RecordingUpstream;
  let jwks: JwksServer;
  let signer: TestSigner;
  let gw: TestGateway;
  let redis: RedisClient | undefined;
  let keyPrefix: string;

  const token = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, issuer = ISSUER) =>
    signToken(signer, claimsAt(FIXED_NOW_MS, { iss: issuer, aud: AUDIENCE, sub: 'user-1', ...claims }), header);

  beforeAll(async () => {
    signer = newSigner('RS256');
    upstream = await startRecordingUpstream();
    jwks = await startJwksServer([signer.publicJwk]);
    if (store === 'redis') redis = await connectTestRedis(REDIS_URL);
  });
  afterAll(async () => {
    await Promise.all([upstream.close(), jwks.close()]);
    await redis?.quit();
  });
  beforeEach(async () => {
    upstream.requests.length = 0;
    keyPrefix = testKeyPrefix('ident');
    const storeSection = store === 'redis' ? `store:\n  type: redis\n  redis: { url: "${REDIS_URL}", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }\n` : '';
    gw = await startTestGateway(config(upstream.origin, jwks.url, storeSection));
  });
  afterEach(async () => {
    await gw.gateway.shutdown();
    if (redis !== undefined) await deleteKeysWithPrefix(redis, keyPrefix);
  });

  it('drops client headers that equal gateway-owned ones once _ reads as -, and keeps other underscore names', async () => {
    const forged: [string, string][] = [
      ['X_Quotagate_Subject', 'admin'],
      ['X-Quotagate_Plan', 'enterprise'],
      ['x_quotagate_key_id', 'k0'],
      ['X_Forwarded_For', '6.6.6.6'],
      ['X-Forwarded_Proto', 'https'],
      ['X_Forwarded_Host', 'evil.example'],
      ['X-Real_IP', '6.6.6.6'],
      ['X_Request_Id', 'forged-id'],
      ['X_API_Key', PLAIN_KEY],
      ['X_Custom_Field', 'kept'],
    ];
    for (const [path, credentials] of [
      ['/keys/x', [['x-api-key', PLAIN_KEY]]],
      ['/public/x', []],
    ] as const) {
      const res = await get(gw.proxyUrl, path, [...credentials, ...forged]);
      expect(res.status).toBe(200);
    }
    for (const seen of upstream.requests) {
      const names = dashedNames(seen);
      for (const owned of ['x-quotagate-subject', 'x-quotagate-plan', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id']) {
        // Exactly one, the gateway's own.
        expect(names.filter((name) => name === owned), owned).toHaveLength(1);
      }
      expect(names.filter((name) => name === 'x-real-ip' || name === 'x-api-key')).toEqual([]);
      expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen.headers['x_custom_field']).toBe('kept');
    }
    expect(upstream.requests.map((r) => [r.headers['x-quotagate-subject'], r.headers['x-quotagate-plan']])).toEqual([
      ['customer%201%2F100%25', 'small'],
      ['ip:127.0.0.1', 'anonymous'],
    ]);
  });

  it('sends two subjects that differ only in encoding as two values, each decoding back to its subject', async () => {
    for (const key of [UNICODE_KEY, LITERAL_KEY]) {
      expect((await get(gw.proxyUrl, '/keys/x', [['x-api-key', key]])).status).toBe(200);
    }
    const sent = upstream.requests.map((r) => r.headers['x-quotagate-subject'] as string);
    expect(sent).toEqual(['j%C3%BCrgen', 'j%25C3%25BCrgen']);
    expect(sent.map(decodeURIComponent)).toEqual(['jürgen', 'j%C3%BCrgen']);
  });

  it('never forwards an API key: not on auth: none, jwt or any routes, not as a bearer beside another credential', async () => {
    const jwt = await token();
    const cases: [string, [string, string][]][] = [
      ['/public/x', [['x-api-key', PLAIN_KEY]]],
      ['/public/x', [['authorization', `Bearer ${PLAIN_KEY}`]]],
      ['/public/x', [['authorization', `bearer \t${PLAIN_KEY}`]]],
      ['/jwt/x', [['authorization', `Bearer ${jwt}`], ['x-api-key', PLAIN_KEY]]],
      ['/any/x', [['authorization', `Bearer ${PLAIN_KEY}`]]],
      ['/keys/x', [['x-api-key', PLAIN_KEY], ['authorization', `Bearer ${UNICODE_KEY}`]]],
    ];
    for (const [path, headers] of cases) expect((await get(gw.proxyUrl, path, headers)).status, path).toBe(200);
    const leaked = upstream.requests.flatMap((r) => r.rawHeaders).filter((value) => value.includes('qg_'));
    expect(leaked).toEqual([]);
    expect(upstream.requests).toHaveLength(cases.length);
    // The verified token is forwarded (forward_token defaults to true); an unrelated Authorization on auth: none is too.
    expect(upstream.requests[3]!.headers.authorization).toBe(`Bearer ${jwt}`);
    const other = await get(gw.proxyUrl, '/public/x', [['authorization', 'Basic dXNlcjpwdw==']]);
    expect(other.status).toBe(200);
    expect(upstream.requests[6]!.headers.authorization).toBe('Basic dXNlcjpwdw==');
  });

  it('withholds a verified token on a forward_token: false route', async () => {
    const jwt = await token();
    expect((await get(gw.proxyUrl, '/any/x', [['authorization', `Bearer ${jwt}`]])).status).toBe(200);
    expect((await get(gw.proxyUrl, '/jwt/x', [['authorization', `Bearer ${jwt}`]])).status).toBe(200);
    expect(upstream.requests.map((r) => [r.headers['x-quotagate-subject'], r.headers.authorization])).toEqual([
      ['idp:user-1', undefined],
      ['idp:user-1', `Bearer ${jwt}`],
    ]);
  });

  describe('an issuer with max_token_age_s and typ', () => {
    const nowS = Math.floor(FIXED_NOW_MS / 1000);
    const strict = (claims: Record<string, unknown>, header: Record<string, unknown> = { typ: 'at+jwt' }) => token(claims, header, STRICT_ISSUER);

    it.each([
      ['a fresh at+jwt token', {}, { typ: 'at+jwt' }, 200, undefined],
      ['typ application/AT+JWT', {}, { typ: 'application/AT+JWT' }, 200, undefined],
      ['a token exactly max_token_age_s old', { iat: nowS - 300 }, { typ: 'at+jwt' }, 200, undefined],
      ['a token older than max_token_age_s', { iat: nowS - 301 }, { typ: 'at+jwt' }, 401, 'token_too_old'],
      ['a token without iat', { iat: undefined }, { typ: 'at+jwt' }, 401, 'token_claims_invalid'],
      ['typ JWT', {}, { typ: 'JWT' }, 401, 'token_type_invalid'],
      ['no typ', {}, {}, 401, 'token_type_invalid'],
    ] as const)('%s → %s', async (_, claims, header, status, code) => {
      const jwt = await strict(claims, header);
      const res = await get(gw.proxyUrl, '/jwt/x', [['authorization', `Bearer ${jwt}`]]);
      expect(res.status).toBe(status);
      if (code === undefined) {
        expect(upstream.requests.map((r) => r.headers['x-quotagate-subject'])).toEqual(['strict:user-1']);
      } else {
        expect(JSON.parse(res.body)).toMatchObject({ status: 401, code, type: `https://quotagate.dev/problems/${code}` });
        expect(upstream.requests).toHaveLength(0);
      }
    });

    it('stops answering a cached token from the cache once it is too old', async () => {
      const jwt = await strict({ iat: nowS - 200 });
      expect((await get(gw.proxyUrl, '/jwt/x', [['authorization', `Bearer ${jwt}`]])).status).toBe(200);
      gw.clock.advance(101_000);
      const res = await get(gw.proxyUrl, '/jwt/x', [['authorization', `Bearer ${jwt}`]]);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'token_too_old' });
      expect(upstream.requests).toHaveLength(1);
    });

    it('counts each refusal under its own reason in quotagate_auth_failures_total', async () => {
      await get(gw.proxyUrl, '/jwt/x', [['authorization', `Bearer ${await strict({ iat: nowS - 999 })}`]]);
      await get(gw.proxyUrl, '/jwt/x', [['authorization', `Bearer ${await strict({}, { typ: 'JWT' })}`]]);
      const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
      expect(metrics).toContain('quotagate_auth_failures_total{reason="token_too_old"} 1');
      expect(metrics).toContain('quotagate_auth_failures_total{reason="token_type_invalid"} 1');
    });
  });
});
