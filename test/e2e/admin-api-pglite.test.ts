import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfigText } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import type { Database } from '../../src/db/database.js';
import { NO_CACHE_INVALIDATION } from '../../src/auth/cache-invalidation.js';
import { adminApi, openapiDocumentPath } from '../../src/http/routes/admin-api/admin-api.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { unusedPort } from '../support/ports.js';
import { startTestGateway, TEST_KEY, testConfig, type TestGateway } from '../support/test-gateway.js';
import { ADMIN_TOKEN, adminApiSuite } from './admin-api.suite.js';

adminApiSuite('PGlite', async () => '  data_dir: "memory://"');

describe('admin API switched off', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    // A token but no database, as in a gateway started without one: the API must be off, not open.
    gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: '  - { name: api, path_prefix: /, upstream: app }' }), {
      adminToken: ADMIN_TOKEN,
    });
  });

  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  it('answers 404 admin_disabled to every admin route, with or without a token', async () => {
    for (const [method, path] of [['GET', '/admin/subjects'], ['POST', '/admin/subjects'], ['GET', '/admin/audit'], ['POST', '/admin/keys/k_1/revoke']] as const) {
      for (const headers of [{}, { authorization: `Bearer ${ADMIN_TOKEN}` }] as Record<string, string>[]) {
        const res = await fetch(gw.adminUrl + path, { method, headers });
        expect(res.status).toBe(404);
        expect(res.headers.get('content-type')).toBe('application/problem+json');
        expect(((await res.json()) as { code: string }).code).toBe('admin_disabled');
      }
    }
  });

  it('says the API is off for want of a database, and still serves its document and reload with the token', async () => {
    const res = await fetch(`${gw.adminUrl}/admin/subjects`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(((await res.json()) as { detail: string }).detail).toBe('The admin API is off for this route: the gateway runs without a database.');
    expect((await fetch(`${gw.adminUrl}/admin/openapi`)).status).toBe(200);
  });

  it('is off without a token even when a database is open, its document included, saying the token is missing', async () => {
    const config = parseConfigText(testConfig({ upstreamOrigin: 'http://127.0.0.1:9', routes: '  - { name: api, path_prefix: /, upstream: app }' }), 't.yaml', {});
    for (const token of [undefined, '']) {
      const app = adminApi({ token, db: {} as Database, config, clock: systemClock, invalidator: NO_CACHE_INVALIDATION, logger: pino({ level: 'silent' }) });
      for (const path of ['/admin/subjects', '/admin/openapi']) {
        const res = await app.request(path, { headers: { authorization: 'Bearer ' } });
        expect(res.status).toBe(404);
        expect(await res.json()).toMatchObject({
          code: 'admin_disabled',
          detail: 'The admin API is off: no admin token is configured (the variable admin.token_env names is unset or empty).',
        });
      }
    }
  });
});

describe('openapi/admin.yaml', () => {
  it('parses as OpenAPI 3.1 and documents every route the admin API serves, and nothing else', () => {
    const document = parseYaml(readFileSync(openapiDocumentPath(), 'utf8')) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(document.openapi).toBe('3.1.0');
    const documented = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((method) => ['get', 'put', 'post', 'delete', 'patch'].includes(method))
        .map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    const config = parseConfigText(testConfig({ upstreamOrigin: 'http://127.0.0.1:9', routes: '  - { name: api, path_prefix: /, upstream: app }' }), 't.yaml', {});
    const app = adminApi({
      token: 'x',
      db: {} as Database,
      config,
      clock: systemClock,
      invalidator: NO_CACHE_INVALIDATION,
      logger: pino({ level: 'silent' }),
      reload: () => Promise.resolve({ ok: true, routes: 1, plans: 1, upstreams: 1 }),
    });
    const served = app.routes
      .filter((route) => route.method !== 'ALL')
      .map((route) => `${route.method} ${route.path}`);
    expect(new Set(served).size).toBe(25);
    expect([...new Set(served)].sort()).toEqual([...documented].sort());
  });
});

describe('GET /_quotagate/usage with the store down', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    const deadPort = await unusedPort();
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: api, path_prefix: /, upstream: app }',
        extra: `store:\n  type: redis\n  redis: { url: "redis://127.0.0.1:${deadPort}", connect_timeout_ms: 50, command_timeout_ms: 50 }\n`,
      }),
    );
  });

  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  it('answers 503 usage_unavailable with Retry-After, and still refuses a caller without a key first', async () => {
    const res = await fetch(`${gw.proxyUrl}/_quotagate/usage`, { headers: { 'x-api-key': TEST_KEY } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { code: string }).code).toBe('usage_unavailable');
    expect((await fetch(`${gw.proxyUrl}/_quotagate/usage`)).status).toBe(401);
    expect(upstream.requests).toEqual([]);
  });
});
