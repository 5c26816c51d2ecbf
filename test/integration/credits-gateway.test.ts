import { type Cluster, Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import { insertCreditGrant } from '../../src/db/credit-grants.js';
import type { Database } from '../../src/db/database.js';
import { createSubject } from '../../src/db/subjects.js';
import { creditBalanceKey } from '../../src/redis/keys.js';
import { creditBalanceOf } from '../../src/redis/scripts.js';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { connectTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { SHARED_REDIS_KINDS, type SharedRedis } from '../support/shared-redis.js';

/**
 * The figure: three gateway processes on one Redis (and on a
 * 3-primary Redis Cluster) and one PostgreSQL, 1,000 concurrent requests
 * against an exhausted quota with a credit balance of 50: exactly 50 are
 * admitted, and the balance ends at 0, never below. And an admin change
 * through one instance (a counter reset) reaches the others at once: they
 * forget their local denials of the subject.
 */

const SUBJECT = 'prepaid';
/** The admin token the gateway processes read from their environment (inherited from this one). */
const ADMIN_TOKEN_ENV = 'QG_CREDITS_GATEWAY_TEST_ADMIN_TOKEN';
const ADMIN_TOKEN = 'credits-gateway-test-admin-token-0123456789';
/** A subject on a plain hourly window (whose denials each instance caches locally). */
const HOURLY_SUBJECT = 'hourly';
process.env[ADMIN_TOKEN_ENV] = ADMIN_TOKEN;

for (const [name, startRedis] of SHARED_REDIS_KINDS) {
  describe(`credits shared by three gateway processes (${name}, PostgreSQL)`, () => {
    const keyPrefix = testKeyPrefix('credits');
    const key = generateApiKey('qg');
    const hourlyKey = generateApiKey('qg');
    let upstream: RecordingUpstream;
    let database: TestDatabase;
    let db: Database;
    let shared: SharedRedis;
    let redis: Redis | Cluster;
    const gateways: GatewayProcess[] = [];
    const client = new Agent({ connections: null, pipelining: 0 });

    beforeAll(async () => {
      [upstream, database] = await Promise.all([startRecordingUpstream({ reply: { body: 'ok' } }), createTestDatabase()]);
      shared = await startRedis();
      redis = shared.client;
      const yaml = `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
store:
  type: redis
  redis: { ${shared.storeFields}, key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }
postgres:
  url: "${database.url}"
upstreams:
  app: { url: ${upstream.origin} }
routes:
  - { name: search, path_prefix: /, upstream: app, quota: search }
auth:
  api_keys:
    keys:
      - { id: k0, hash: ${hashApiKey(key)}, subject: ${SUBJECT}, plan: paid }
      - { id: k1, hash: ${hashApiKey(hourlyKey)}, subject: ${HOURLY_SUBJECT}, plan: hourly }
plans:
  hourly:
    limits: { hour: 1 }
  paid:
    quotas: { search: { month: 1 } }
    credits: { covers: [search.month] }
admin: { token_env: ${ADMIN_TOKEN_ENV} }
logging: { level: info }
`;
      // One by one: the first migrates the database; a failure leaves only started gateways, which afterAll kills.
      for (let i = 0; i < 3; i++) gateways.push(await startGatewayProcess(yaml));
      db = connectTestDatabase(database.url);
      await db.transaction(async (tx) => {
        await createSubject(tx, { id: SUBJECT, plan: 'paid' });
        await createSubject(tx, { id: HOURLY_SUBJECT, plan: 'hourly' });
        await insertCreditGrant(tx, { subjectId: SUBJECT, metric: 'search', amount: 30, grantedAt: new Date(), expiresAt: new Date(Date.now() + 86_400_000) });
        await insertCreditGrant(tx, { subjectId: SUBJECT, metric: 'search', amount: 20, grantedAt: new Date() });
      });
    }, 120_000);

    afterAll(async () => {
      for (const gateway of gateways) gateway.child.kill('SIGKILL');
      await upstream?.close();
      if (redis instanceof Redis) await deleteKeysWithPrefix(redis, keyPrefix);
      await shared?.stop();
      await client.close();
      await db?.close();
      await database?.drop();
    }, 60_000);

    async function send(gateway: GatewayProcess, path: string): Promise<{ status: number; rateLimit: string | undefined }> {
      return sendWith(gateway, key, path);
    }

    async function sendWith(gateway: GatewayProcess, apiKey: string, path = '/x'): Promise<{ status: number; rateLimit: string | undefined }> {
      const res = await request(`${gateway.proxyUrl}${path}`, { headers: { 'x-api-key': apiKey }, dispatcher: client });
      await res.body.dump();
      const header = res.headers['ratelimit'];
      return { status: res.statusCode, rateLimit: typeof header === 'string' ? header : undefined };
    }

    it('of 1,000 concurrent requests against the exhausted quota, exactly 50 (the balance) are admitted; the balance ends at 0', async () => {
      // The quota's one unit: the subject is hydrated (grants read from PostgreSQL) and the quota exhausted.
      const first = await send(gateways[0]!, '/warm-up');
      expect(first.status).toBe(200);
      expect(first.rateLimit).toContain('"credits";r=50');
      const outcomes = await Promise.all(Array.from({ length: 1_000 }, (_, i) => send(gateways[i % 3]!, `/q/${i}`)));
      const tally = outcomes.reduce<Record<number, number>>((acc, { status }) => ({ ...acc, [status]: (acc[status] ?? 0) + 1 }), {});
      expect(tally).toEqual({ 200: 50, 429: 950 });
      expect(upstream.requests.filter((r) => r.headers['x-quotagate-subject'] === SUBJECT)).toHaveLength(51);
      const fields = await redis.hgetall(creditBalanceKey(keyPrefix, SUBJECT, 'search'));
      expect(creditBalanceOf(fields, Date.now())).toBe(0);
      // Never below 0: no grant spent past its amount.
      const spent = Object.entries(fields).filter(([field]) => field.startsWith('u:')).map(([field, value]) => [Number(value), Number(fields[`a:${field.slice(2)}`])]);
      expect(spent.map(([used, amount]) => used === amount)).toEqual([true, true]);
      expect((await send(gateways[1]!, '/after')).rateLimit).toContain('"credits";r=0');
    }, 90_000);

    it('a reset through one instance reaches the others at once: their local denials of the subject are forgotten', async () => {
      const admit = (gateway: GatewayProcess) => sendWith(gateway, hourlyKey);
      expect((await admit(gateways[0]!)).status).toBe(200);
      // Every instance denies the exhausted subject now, and remembers that denial locally until the hour ends.
      for (const gateway of gateways) expect((await admit(gateway)).status).toBe(429);
      for (const gateway of gateways.slice(1)) {
        const reset = await request(`${gateways[0]!.adminUrl}/admin/subjects/${HOURLY_SUBJECT}/reset`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
          dispatcher: client,
        });
        await reset.body.dump();
        expect(reset.statusCode).toBe(200);
        // The other instance hears of it through the invalidation channel (well within a second; bounded here).
        const deadline = Date.now() + 5_000;
        let status = (await admit(gateway)).status;
        while (status === 429 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          status = (await admit(gateway)).status;
        }
        expect(status).toBe(200);
      }
    }, 60_000);
  });
}
