import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, TEST_KEY, testConfig, type TestGateway } from '../support/test-gateway.js';
import { ADMIN_TOKEN } from './admin-api.suite.js';

/**
 * API keys' scopes are enforced against a route's `scopes`, as a token's
 * are: keys created through the admin API (stored on the embedded
 * database) and a key listed in gateway.yaml.
 */
const ROUTES = `
  - { name: reports, path_prefix: /reports, upstream: app, auth: api_key, scopes: [reports:read] }
  - { name: admin-reports, path_prefix: /admin-reports, upstream: app, auth: api_key, scopes: [reports:read, reports:write] }
  - { name: api, path_prefix: /, upstream: app }`;

describe('API key scopes (embedded database and gateway.yaml keys)', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(gw.adminUrl + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const get = async (path: string, key: string) => {
    const res = await request(`${gw.proxyUrl}${path}`, { headers: { 'x-api-key': key } });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: text };
  };

  beforeAll(async () => {
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    const config = testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES }).replace(
      'subject: customer-1, plan: small }',
      'subject: customer-1, plan: small, scopes: [reports:read] }',
    );
    gw = await startTestGateway(config, { database: true, adminToken: ADMIN_TOKEN });
    expect((await admin('POST', '/admin/subjects', { id: 'acme', plan: 'small' })).status).toBe(201);
  });
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  it('admits a stored key with every scope the route needs, and refuses one without them with 403 insufficient_scope', async () => {
    const reader = await admin('POST', '/admin/subjects/acme/keys', { name: 'reader', scopes: ['reports:read'] });
    const plain = await admin('POST', '/admin/subjects/acme/keys', { name: 'plain' });
    expect(reader.status).toBe(201);
    const readerKey = reader.body.key as string;
    const plainKey = plain.body.key as string;
    const before = upstream.requests.length;

    expect((await get('/reports/1', readerKey)).status).toBe(200);
    const partial = await get('/admin-reports/1', readerKey);
    expect(partial.status).toBe(403);
    expect(partial.headers['www-authenticate']).toBe('Bearer error="insufficient_scope", scope="reports:read reports:write"');
    expect(JSON.parse(partial.body)).toMatchObject({ code: 'insufficient_scope', detail: 'This route needs the scope reports:write.' });
    const none = await get('/reports/1', plainKey);
    expect(none.status).toBe(403);
    expect(JSON.parse(none.body)).toMatchObject({ code: 'insufficient_scope' });
    // Routes without scopes take any valid key.
    expect((await get('/other', plainKey)).status).toBe(200);
    expect(upstream.requests.length - before).toBe(2);
  });

  it('gives a rotated key the scopes of the key it replaces', async () => {
    const created = await admin('POST', '/admin/subjects/acme/keys', { name: 'writer', scopes: ['reports:read', 'reports:write'] });
    const rotated = await admin('POST', `/admin/keys/${created.body.id as string}/rotate`, {});
    expect(rotated.status).toBe(201);
    expect(rotated.body).toMatchObject({ scopes: ['reports:read', 'reports:write'] });
    expect((await get('/admin-reports/1', rotated.body.key as string)).status).toBe(200);
    const reader = await admin('POST', '/admin/subjects/acme/keys', { name: 'reader-2', scopes: ['reports:read'] });
    const rotatedReader = await admin('POST', `/admin/keys/${reader.body.id as string}/rotate`, {});
    expect((await get('/admin-reports/1', rotatedReader.body.key as string)).status).toBe(403);
  });

  it('applies the scopes of a key listed in gateway.yaml', async () => {
    expect((await get('/reports/1', TEST_KEY)).status).toBe(200);
    expect((await get('/admin-reports/1', TEST_KEY)).status).toBe(403);
  });
});
