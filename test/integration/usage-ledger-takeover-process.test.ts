import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import { type GatewayProcess, sendWithKey as send, startGatewayProcess } from '../support/gateway-process.js';
import { startPostgresCluster, type PostgresCluster } from '../support/postgres-cluster.js';
import { connectTestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { usageTotalsOf as ledgerOf } from '../support/usage-totals.js';
import { within } from '../support/within.js';

/**
 * Two gateway processes on one Redis and one real PostgreSQL (throwaway
 * servers of this file). PostgreSQL stops, both take traffic, one is
 * stopped; once PostgreSQL is back the other flushes the stopped one's
 * usage as well, through the usage index every flusher reads (the leftover
 * SCAN runs at start and every 5 minutes only, far beyond this test's wait).
 * Regression: issue 11, "A dead instance's pending usage waits five minutes".
 */

const FLUSH_INTERVAL_MS = 300;

describe('usage of a stopped instance, taken over by a live one after a PostgreSQL outage', () => {
  let pg: PostgresCluster;
  let redis: RedisServer;
  let upstream: RecordingUpstream;
  const started: GatewayProcess[] = [];
  const stoppedKey = generateApiKey('qg');
  const liveKey = generateApiKey('qg');

  beforeAll(async () => {
    [pg, redis, upstream] = await Promise.all([startPostgresCluster(), startRedisServer(), startRecordingUpstream({ reply: { body: 'ok' } })]);
  }, 90_000);
  afterAll(async () => {
    for (const gateway of started) gateway.child.kill('SIGKILL');
    await Promise.allSettled([pg?.destroy(), redis?.stop(), upstream?.close()]);
  }, 60_000);

  const yaml = () => `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
store:
  type: redis
  redis: { url: "${redis.url}", key_prefix: qg, command_timeout_ms: 2000 }
postgres:
  url: "${pg.url}"
  connect_timeout_ms: 1000
  statement_timeout_ms: 2000
usage: { flush_interval_ms: ${FLUSH_INTERVAL_MS} }
upstreams:
  app: { url: ${upstream.origin} }
routes:
  - { name: api, path_prefix: /, upstream: app }
auth:
  api_keys:
    keys:
      - { id: k-stopped, hash: ${hashApiKey(stoppedKey)}, subject: subject-of-stopped, plan: metered }
      - { id: k-live, hash: ${hashApiKey(liveKey)}, subject: subject-of-live, plan: metered }
plans:
  metered: { limits: { month: 1000 } }
logging: { level: info }
`;

  it('flushes the stopped instance’s usage from the live one once PostgreSQL is back, exactly', async () => {
    const doomed = await startGatewayProcess(yaml());
    started.push(doomed);
    const survivor = await startGatewayProcess(yaml());
    started.push(survivor);
    // Each subject's first request restores its counters from the ledger, which needs PostgreSQL.
    expect(await send(doomed, stoppedKey, 1)).toEqual([200]);
    expect(await send(survivor, liveKey, 1)).toEqual([200]);

    await pg.stop();
    expect(await send(doomed, stoppedKey, 6)).toEqual(Array(6).fill(200));
    expect(await send(survivor, liveKey, 4)).toEqual(Array(4).fill(200));
    // Its last flush fails (the database is down): the usage stays marked in Redis.
    doomed.child.kill('SIGTERM');
    await within(doomed.exited, 30_000, 'the stopped gateway to exit');
    expect(doomed.output()).toContain('final usage ledger flush failed');

    await pg.start();
    const db = connectTestDatabase(pg.url);
    try {
      // The survivor never charged the stopped instance's subject: only the index tells it.
      const deadline = Date.now() + 30_000;
      while ((await ledgerOf(db, 'subject-of-stopped').catch((): Record<string, number> => ({})))['w:month'] !== 7 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, FLUSH_INTERVAL_MS));
      }
      expect(await ledgerOf(db, 'subject-of-stopped')).toEqual({ 'w:hour': 7, 'w:day': 7, 'w:month': 7 });
      survivor.child.kill('SIGTERM');
      expect(await within(survivor.exited, 30_000, 'the live gateway to drain and exit')).toBe(0);
      expect(await ledgerOf(db, 'subject-of-live')).toEqual({ 'w:hour': 5, 'w:day': 5, 'w:month': 5 });
      expect(await ledgerOf(db, 'subject-of-stopped')).toEqual({ 'w:hour': 7, 'w:day': 7, 'w:month': 7 });
    } finally {
      await db.close();
    }
  }, 180_000);
});
