import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgresCluster, type PostgresCluster } from '../support/postgres-cluster.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';

/**
 * The admin API with its real PostgreSQL stopped under it (a throwaway
 * cluster of this file): every operation answers 503 database_unavailable
 * with Retry-After, never a 500, and works again once the server is back.
 * Regression: issue 11, "The admin API answers 500 when PostgreSQL is down".
 */

const ADMIN_TOKEN = 'outage-admin-token-91c2';
const PLANS = `  small: { limits: { minute: 1000 } }
  pro: { limits: { hour: 1000 }, quotas: { search: { day: 50 } } }
  anonymous: { limits: { minute: 2 } }`;

interface Answer {
  readonly status: number;
  readonly contentType: string | null;
  readonly retryAfter: string | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
}

describe('the admin API while PostgreSQL is down', () => {
  let cluster: PostgresCluster;
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  let keyId: string;

  async function call(method: string, path: string, body?: unknown): Promise<Answer> {
    const res = await fetch(gw.adminUrl + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      contentType: res.headers.get('content-type'),
      retryAfter: res.headers.get('retry-after'),
      body: text === '' ? undefined : JSON.parse(text),
    };
  }

  beforeAll(async () => {
    [cluster, upstream] = await Promise.all([startPostgresCluster(), startRecordingUpstream()]);
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: api, path_prefix: /, upstream: app }',
        plans: PLANS,
        postgres: `  url: ${cluster.url}\n  connect_timeout_ms: 1000\n  statement_timeout_ms: 2000`,
      }),
      { database: true, adminToken: ADMIN_TOKEN },
    );
    expect((await call('POST', '/admin/subjects', { id: 'acme', plan: 'small' })).status).toBe(201);
    const created = await call('POST', '/admin/subjects/acme/keys', { name: 'ci' });
    expect(created.status).toBe(201);
    keyId = created.body.id as string;
  }, 90_000);

  afterAll(async () => {
    await gw?.gateway.shutdown();
    await Promise.allSettled([cluster?.destroy(), upstream?.close()]);
  }, 60_000);

  it('answers every operation 503 database_unavailable with Retry-After, and serves again once it is back', async () => {
    const operations: ReadonlyArray<readonly [string, string, unknown?]> = [
      ['POST', '/admin/subjects', { id: 'globex', plan: 'small' }],
      ['GET', '/admin/subjects'],
      ['GET', '/admin/subjects/acme'],
      ['PUT', '/admin/subjects/acme/plan', { plan: 'pro' }],
      ['PUT', '/admin/subjects/acme/overrides', { overrides: { limits: { hour: 5 } } }],
      ['POST', '/admin/subjects/acme/suspend'],
      ['POST', '/admin/subjects/acme/reactivate'],
      ['POST', '/admin/subjects/acme/keys', { name: 'second' }],
      ['GET', '/admin/subjects/acme/keys'],
      ['POST', `/admin/keys/${keyId}/rotate`, {}],
      ['POST', `/admin/keys/${keyId}/revoke`],
      ['GET', '/admin/subjects/acme/usage'],
      ['POST', '/admin/subjects/acme/reset'],
      ['POST', '/admin/subjects/acme/credits', { metric: 'search', amount: 10 }],
      ['GET', '/admin/audit'],
      ['DELETE', '/admin/subjects/acme'],
    ];
    await cluster.stop();
    const answers: Record<string, unknown> = {};
    for (const [method, path, body] of operations) {
      const answer = await call(method, path, body);
      answers[`${method} ${path}`] = {
        status: answer.status,
        contentType: answer.contentType,
        retryAfter: answer.retryAfter,
        code: answer.body?.code,
      };
    }
    const expected = { status: 503, contentType: 'application/problem+json', retryAfter: '5', code: 'database_unavailable' };
    expect(answers).toEqual(Object.fromEntries(operations.map(([method, path]) => [`${method} ${path}`, expected])));

    await cluster.start();
    // postgres.js reconnects on the next query: no restart of the gateway.
    const deadline = Date.now() + 20_000;
    let subject = await call('GET', '/admin/subjects/acme');
    while (subject.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      subject = await call('GET', '/admin/subjects/acme');
    }
    // Nothing the refused writes asked for happened.
    expect(subject).toMatchObject({ status: 200, body: { id: 'acme', plan: 'small', overrides: null, suspended_at: null } });
    expect((await call('GET', '/admin/subjects/globex')).status).toBe(404);
    const keys = await call('GET', '/admin/subjects/acme/keys');
    expect(keys.body.items.map((key: { id: string; revoked_at: unknown }) => [key.id, key.revoked_at])).toEqual([[keyId, null]]);
  }, 90_000);
});
