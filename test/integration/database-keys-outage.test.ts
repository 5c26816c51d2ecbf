import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getApiKey } from '../../src/db/api-keys.js';
import type { Database } from '../../src/db/database.js';
import { storeTestKey, type StoredTestKey } from '../support/database-keys.js';
import { startPostgresCluster, type PostgresCluster } from '../support/postgres-cluster.js';
import { connectTestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';
import { eventuallyAsync } from '../support/within.js';

/**
 * PostgreSQL stopped and started under a running gateway. The server is a
 * throwaway cluster of this file (the shared one is never stopped).
 */

const PLANS = `  small: { limits: { minute: 1000 } }
  anonymous: { limits: { minute: 2 } }`;

async function get(gw: TestGateway, key: string) {
  const res = await request(`${gw.proxyUrl}/things`, { headers: { 'x-api-key': key } });
  const text = await res.body.text();
  return { status: res.statusCode, contentType: res.headers['content-type'], body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : text };
}

describe('API keys while PostgreSQL is down', () => {
  let cluster: PostgresCluster;
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  let db: Database;
  let cached: StoredTestKey;
  let uncached: StoredTestKey;
  let stopped = false;

  beforeAll(async () => {
    [cluster, upstream] = await Promise.all([startPostgresCluster(), startRecordingUpstream()]);
    upstream.configure({ reply: { body: 'ok' } });
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: api, path_prefix: /, upstream: app }',
        plans: PLANS,
        postgres: `  url: ${cluster.url}\n  connect_timeout_ms: 1000\n  statement_timeout_ms: 2000`,
      }),
      { database: true },
    );
    db = connectTestDatabase(cluster.url);
    cached = await storeTestKey(db, { subject: 'outage-cached' });
    uncached = await storeTestKey(db, { subject: 'outage-uncached' });
    await db.close();
  }, 90_000);

  afterAll(async () => {
    if (!stopped) await gw?.gateway.shutdown();
    await Promise.allSettled([cluster?.destroy(), upstream?.close()]);
  }, 60_000);

  it('serves cached keys, answers 503 store_unavailable for the rest (never 500), and recovers by itself', async () => {
    expect((await get(gw, cached.key)).status).toBe(200);
    await cluster.stop();

    for (let i = 0; i < 5; i++) expect((await get(gw, cached.key)).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const refused = await get(gw, uncached.key);
      expect(refused.status).toBe(503);
      expect(refused.contentType).toBe('application/problem+json');
      expect(refused.body).toMatchObject({ status: 503, code: 'store_unavailable' });
    }
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/quotagate_auth_failures_total\{reason="key_store_unavailable"\} 3/);

    await cluster.start();
    // postgres.js reconnects on the next query: no restart of the gateway.
    await eventuallyAsync(async () => (await get(gw, uncached.key)).status === 200, 20_000, 'the uncached key to resolve again', 50);
    expect((await get(gw, cached.key)).status).toBe(200);
  }, 90_000);

  it('writes last_used_at in a batch, at the latest when the gateway shuts down', async () => {
    expect((await get(gw, cached.key)).status).toBe(200);
    await gw.gateway.shutdown();
    stopped = true;
    db = connectTestDatabase(cluster.url);
    try {
      expect((await getApiKey(db, cached.id))?.lastUsedAt).toBeInstanceOf(Date);
    } finally {
      await db.close();
    }
  }, 30_000);
});
