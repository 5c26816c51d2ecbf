import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { QuotaEvent } from '../../src/core/quota-events.js';
import { readEventStream } from '../support/event-streams.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { startTestGateway, testConfig, TEST_KEY, type TestGateway } from '../support/test-gateway.js';

/**
 * Quota events through the gateway: the plan's thresholds (one list, or per
 * window) reach the store's outbox with the plan's name, on the memory store
 * (the outbox the gateway exposes) and on Redis (the event stream); a hot
 * reload changes the thresholds from the next request.
 */

const SUBJECT = 'customer-1';
const plans = (thresholds: string) => `  small:
    limits: { month: 100 }
    quotas:
      search: { month: 10 }
    thresholds: ${thresholds}
  anonymous: { limits: { minute: 2 } }`;
const ROUTES = `
  - { name: search, path_prefix: /search, upstream: app, quota: search }
  - { name: other, path_prefix: /other, upstream: app }`;

const redisPrefix = testKeyPrefix('events-e2e');
const STORES = [
  { name: 'memory store', extra: '' },
  { name: 'Redis store', extra: `store:\n  type: redis\n  redis: { url: "redis://127.0.0.1:6379", key_prefix: ${redisPrefix}, command_timeout_ms: 2000 }\n` },
];

for (const store of STORES) {
  describe(`quota events end to end (${store.name})`, () => {
    let upstream: RecordingUpstream;
    let redis: Redis | undefined;
    let gw: TestGateway;
    let seen: QuotaEvent[] = [];
    beforeAll(async () => {
      upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
      if (store.extra !== '') redis = new Redis('redis://127.0.0.1:6379');
    });
    afterEach(async () => {
      await gw?.gateway.shutdown();
      if (redis !== undefined) await deleteKeysWithPrefix(redis, redisPrefix);
      seen = [];
    });
    afterAll(async () => {
      await upstream.close();
      redis?.disconnect();
    });

    async function send(path: string, times: number): Promise<number[]> {
      const statuses: number[] = [];
      for (let i = 0; i < times; i++) {
        const res = await request(`${gw.proxyUrl}${path}`, { headers: { 'x-api-key': TEST_KEY } });
        await res.body.dump();
        statuses.push(res.statusCode);
      }
      return statuses;
    }
    /** What the store's outbox holds about the subject so far. */
    async function events(): Promise<string[]> {
      if (redis !== undefined) seen = await readEventStream(redis, redisPrefix, SUBJECT);
      else for (const entry of await gw.gateway.memoryEventOutbox!.claim('test', 1_000, 60_000)) seen.push(entry.event);
      return seen.map((event) => `${event.type}:${event.data['policy']}:${event.data['threshold'] ?? ''}:${event.data['plan']}`);
    }

    it('emits the plan thresholds of the quota and the month window, per window by name, and the exhaustion', async () => {
      gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, plans: plans('{ default: [50], search.month: [80, 100] }'), extra: store.extra }));
      expect(gw.gateway.memoryEventOutbox === undefined).toBe(redis !== undefined);
      expect(await send('/search', 11)).toEqual([...Array(10).fill(200), 429]);
      expect(await events()).toEqual(['quota.threshold:search.month:80:small', 'quota.threshold:search.month:100:small', 'quota.exhausted:search.month::small']);
      // The month window (100) reaches its default 50 % with other routes too.
      await send('/other', 40);
      expect((await events()).slice(3)).toEqual(['quota.threshold:month:50:small']);
    });

    it('applies thresholds changed by a hot reload from the next request', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'quotagate-events-'));
      const file = join(dir, 'gateway.yaml');
      const yaml = (thresholds: string) => testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, plans: plans(thresholds), extra: store.extra });
      writeFileSync(file, yaml('[]'));
      gw = await startTestGateway(yaml('[]'), { configFile: file });
      await send('/search', 5);
      expect(await events()).toEqual([]);
      writeFileSync(file, yaml('[20, 60]'));
      expect(await gw.gateway.reload('test')).toMatchObject({ ok: true });
      // 20 % of 10 was passed before the reload: the next admission emits it, and 60 % when reached.
      await send('/search', 1);
      expect(await events()).toEqual(['quota.threshold:search.month:20:small', 'quota.threshold:search.month:60:small']);
    });
  });
}
