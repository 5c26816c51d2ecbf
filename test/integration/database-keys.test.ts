import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeApiKey } from '../../src/db/api-keys.js';
import type { Database } from '../../src/db/database.js';
import { suspendSubject } from '../../src/db/subjects.js';
import { storeTestKey } from '../support/database-keys.js';
import { connectTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestGateway, testConfig, TEST_KEY, UNKNOWN_KEY, type TestGateway } from '../support/test-gateway.js';
import { eventuallyAsync } from '../support/within.js';

/**
 * API keys from PostgreSQL on the request path: two gateways sharing one
 * database and one Redis (pub/sub invalidation), keys written straight to
 * the database as the admin API would, then announced through the
 * gateway's CacheInvalidator.
 */

const PLANS = `  small: { limits: { minute: 3, hour: 100 } }
  big: { limits: { minute: 100000 } }
  free: { limits: { minute: 7 } }
  anonymous: { limits: { minute: 2 } }`;
const ROUTES = `  - { name: api, path_prefix: /, upstream: app }`;

async function get(gw: TestGateway, key: string) {
  const res = await request(`${gw.proxyUrl}/things`, { headers: { 'x-api-key': key } });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : text };
}

/** Database key lookups the gateway has made (answered), whichever database answered. */
async function lookupsServed(gw: TestGateway): Promise<number> {
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
  return [...text.matchAll(/^quotagate_key_lookups_served_total\{[^}]*\} (\d+)$/gm)].reduce((sum, [, count]) => sum + Number(count), 0);
}

describe('API keys from the database (PostgreSQL 15, Redis pub/sub)', () => {
  let pgDb: TestDatabase;
  let db: Database;
  let redis: RedisServer;
  let upstream: RecordingUpstream;
  let first: TestGateway;
  let second: TestGateway;

  beforeAll(async () => {
    [pgDb, redis, upstream] = await Promise.all([createTestDatabase(), startRedisServer(), startRecordingUpstream()]);
    upstream.configure({ reply: { body: 'ok' } });
    const yaml = testConfig({
      upstreamOrigin: upstream.origin,
      routes: ROUTES,
      plans: PLANS,
      // The "replica" is the same server, not in recovery: the gateway finds it is no standby and asks the primary.
      postgres: `  url: ${pgDb.url}\n  replica_url: ${pgDb.url}`,
      // A generous command timeout: this test is about key lookups, not store timeouts on a loaded machine.
      extra: `store:\n  type: redis\n  redis:\n    url: ${redis.url}\n    key_prefix: qgkeys\n    command_timeout_ms: 2000`,
    });
    first = await startTestGateway(yaml, { database: true });
    second = await startTestGateway(yaml, { database: true });
    db = connectTestDatabase(pgDb.url);
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([first?.gateway.shutdown(), second?.gateway.shutdown()]);
    await db?.close();
    await Promise.allSettled([pgDb?.drop(), redis?.stop(), upstream?.close()]);
  });

  it('accepts a key inserted into the database at once, with its subject and plan upstream', async () => {
    const stored = await storeTestKey(db, { subject: 'db-acme', plan: 'small' });
    const res = await get(first, stored.key);
    expect(res.status).toBe(200);
    const seen = upstream.requests.at(-1)!;
    expect(seen.headers['x-quotagate-subject']).toBe('db-acme');
    expect(seen.headers['x-quotagate-plan']).toBe('small');
    expect(seen.headers['x-quotagate-key-id']).toBe(stored.id);
  });

  it('still accepts the keys of gateway.yaml, checked before the database', async () => {
    const before = await lookupsServed(first);
    expect((await get(first, TEST_KEY)).status).toBe(200);
    expect(await lookupsServed(first)).toBe(before);
  });

  it('refuses a revoked key on a second instance within one second of the invalidation', async () => {
    const stored = await storeTestKey(db, { subject: 'db-revoked', plan: 'big' });
    expect((await get(second, stored.key)).status).toBe(200); // cached on the second instance
    expect((await get(first, stored.key)).status).toBe(200);
    await db.transaction((tx) => revokeApiKey(tx, stored.id));
    await first.gateway.cacheInvalidator.keyChanged(stored.hash);
    await eventuallyAsync(async () => (await get(second, stored.key)).status === 401, 1_000, 'the second instance to refuse the key', 10);
    const refused = await get(second, stored.key);
    expect(refused.headers['content-type']).toBe('application/problem+json');
    expect(refused.body).toMatchObject({ status: 401, code: 'key_revoked' });
    expect((await get(first, stored.key)).body).toMatchObject({ code: 'key_revoked' });
  });

  it('refuses the keys of a subject suspended after they were cached, with 403 subject_suspended', async () => {
    const one = await storeTestKey(db, { subject: 'db-suspended', plan: 'big' });
    const two = await storeTestKey(db, { subject: 'db-suspended' });
    expect((await get(second, one.key)).status).toBe(200);
    expect((await get(second, two.key)).status).toBe(200);
    await db.transaction((tx) => suspendSubject(tx, 'db-suspended'));
    await first.gateway.cacheInvalidator.subjectChanged('db-suspended');
    await eventuallyAsync(async () => (await get(second, one.key)).status === 403, 1_000, 'the second instance to refuse the subject', 10);
    for (const stored of [one, two]) {
      const refused = await get(second, stored.key);
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ status: 403, code: 'subject_suspended' });
    }
  });

  it('refuses an expired key with key_expired', async () => {
    const stored = await storeTestKey(db, { subject: 'db-expired', expiresAt: new Date('2020-01-01T00:00:00Z') });
    const refused = await get(first, stored.key);
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ code: 'key_expired' });
  });

  it('counts each refusal by reason in the auth-failures metric', async () => {
    const scrape = async (gw: TestGateway) => (await request(`${gw.adminUrl}/metrics`)).body.text();
    const metrics = await scrape(first);
    expect(await scrape(second)).toMatch(/quotagate_auth_failures_total\{reason="suspended"\} [1-9]/);
    for (const reason of ['revoked', 'expired']) {
      expect(metrics).toMatch(new RegExp(`quotagate_auth_failures_total\\{reason="${reason}"\\} [1-9]`));
    }
    expect(metrics).toMatch(/quotagate_key_lookups_total\{result="miss"\} [1-9]/);
    expect(metrics).toMatch(/quotagate_key_lookups_served_total\{served_by="primary",reason="replica_not_in_recovery"\} [1-9]/);
    expect(metrics).not.toMatch(/quotagate_key_lookups_served_total\{served_by="replica"/);
    expect(metrics).toMatch(/^quotagate_db_replica_state\{state="not_in_recovery"\} 1$/m);
  });

  it('applies the subject overrides from the database to its plan', async () => {
    const stored = await storeTestKey(db, { subject: 'db-overridden', plan: 'big', overrides: { limits: { minute: 1 } } });
    expect((await get(first, stored.key)).status).toBe(200);
    const denied = await get(first, stored.key);
    expect(denied.status).toBe(429);
    expect(denied.headers['x-ratelimit-limit']).toBe('1');
  });

  it('gives a subject whose plan left gateway.yaml the default plan, never an unlimited one', async () => {
    const stored = await storeTestKey(db, { subject: 'db-old-plan', plan: 'legacy' });
    const res = await get(first, stored.key);
    expect(res.status).toBe(200);
    expect(upstream.requests.at(-1)!.headers['x-quotagate-plan']).toBe('free'); // auth.jwt.default_plan
  });

  it('remembers an unknown key without asking again, and forgets it once the key is created', async () => {
    const stored = await storeTestKey(db, { subject: 'db-late' });
    // Not announced yet: an unknown key, asked once, then answered from the negative cache.
    expect((await get(first, UNKNOWN_KEY)).body).toMatchObject({ code: 'invalid_api_key' });
    const before = await lookupsServed(first);
    expect((await get(first, UNKNOWN_KEY)).body).toMatchObject({ code: 'invalid_api_key' });
    expect(await lookupsServed(first)).toBe(before);
    expect((await get(first, stored.key)).status).toBe(200);
  });

  it('makes no key lookup for 1,000 cached keys under load', async () => {
    const keys = [];
    for (let i = 0; i < 1_000; i++) keys.push(await storeTestKey(db, { subject: `load-${i % 50}`, plan: 'big' }));
    for (let i = 0; i < keys.length; i += 50) {
      const statuses = await Promise.all(keys.slice(i, i + 50).map(async (stored) => (await get(first, stored.key)).status));
      expect(statuses.every((status) => status === 200)).toBe(true);
    }
    const before = await lookupsServed(first);
    let served = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < keys.length; i += 100) {
        const statuses = await Promise.all(keys.slice(i, i + 100).map(async (stored) => (await get(first, stored.key)).status));
        served += statuses.filter((status) => status === 200).length;
      }
    }
    expect(served).toBe(3_000);
    expect((await lookupsServed(first)) - before).toBe(0);
  }, 120_000);
});
