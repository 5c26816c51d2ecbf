import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeApiKey } from '../../src/db/api-keys.js';
import type { Database } from '../../src/db/database.js';
import { storeTestKey, type StoredTestKey } from '../support/database-keys.js';
import { type PostgresCluster, startPostgresCluster, startPostgresReplica } from '../support/postgres-cluster.js';
import { connectTestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';
import { eventuallyAsync, within } from '../support/within.js';

/**
 * Key lookups on a real streaming replica: a throwaway PostgreSQL 15
 * primary and a hot standby made from it with `pg_basebackup -R -X stream`
 * (test/support/postgres-cluster.ts), replay paused and resumed with
 * pg_wal_replay_pause(), the standby stopped and started. Two gateways share
 * them: `patient` allows 60 s of lag (so its replica stays fresh while
 * replay is paused for a moment), `strict` 300 ms. Which database answered
 * is read from quotagate_key_lookups_served_total.
 */

const PLANS = `  small: { limits: { minute: 1000 } }
  anonymous: { limits: { minute: 2 } }`;
/** Bound of every wait for a replica or gateway to reach a state. */
const STATE_TIMEOUT_MS = 15_000;

async function get(gw: TestGateway, key: string) {
  return within(
    (async () => {
      const res = await request(`${gw.proxyUrl}/things`, { headers: { 'x-api-key': key } });
      const text = await res.body.text();
      return { status: res.statusCode, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : text };
    })(),
    10_000,
    'a proxied request',
  );
}

async function metricsText(gw: TestGateway): Promise<string> {
  return within(request(`${gw.adminUrl}/metrics`).then((res) => res.body.text()), 5_000, 'GET /metrics');
}

/** quotagate_key_lookups_served_total as `{ "served_by/reason": count }`. */
async function served(gw: TestGateway): Promise<Record<string, number>> {
  const text = await metricsText(gw);
  const samples = [...text.matchAll(/^quotagate_key_lookups_served_total\{served_by="(\w+)",reason="(\w+)"\} (\d+)$/gm)];
  return Object.fromEntries(samples.map(([, by, reason, count]) => [`${by}/${reason}`, Number(count)]));
}

/** The lookups `work` caused, by who served them and why. */
async function servedDuring(gw: TestGateway, work: () => Promise<void>): Promise<Record<string, number>> {
  const before = await served(gw);
  await work();
  const after = await served(gw);
  return Object.fromEntries(Object.entries(after).filter(([series, count]) => count !== (before[series] ?? 0)).map(([series, count]) => [series, count - (before[series] ?? 0)]));
}

/** The replica state the gateway reports now (`quotagate_db_replica_state{state} 1`). */
async function replicaState(gw: TestGateway): Promise<string | undefined> {
  return /^quotagate_db_replica_state\{state="(\w+)"\} 1$/m.exec(await metricsText(gw))?.[1];
}

/** Waits (bounded by STATE_TIMEOUT_MS) for a replica or gateway to reach a state. */
const until = (check: () => Promise<boolean>, what: string) => eventuallyAsync(check, STATE_TIMEOUT_MS, what);

describe('API key lookups on a streaming replica (PostgreSQL 15, pg_basebackup)', () => {
  let primary: PostgresCluster;
  let replica: PostgresCluster;
  let upstream: RecordingUpstream;
  let patient: TestGateway;
  let strict: TestGateway;
  /** Writes on the primary, as the admin API would. */
  let primaryDb: Database;
  /** Reads (and replay control) on the replica, for the test itself. */
  let replicaDb: Database;

  const gatewayYaml = (maxLagMs: number) =>
    testConfig({
      upstreamOrigin: upstream.origin,
      routes: '  - { name: api, path_prefix: /, upstream: app }',
      plans: PLANS,
      postgres: `  url: ${primary.url}\n  replica_url: ${replica.url}\n  replica_max_lag_ms: ${maxLagMs}\n  max_connections: 2\n  connect_timeout_ms: 1000`,
    });

  /** Resolves once the replica has replayed the key (it may be looked up there). */
  const replayed = (stored: StoredTestKey) =>
    until(async () => (await replicaDb.query('SELECT 1 FROM api_keys WHERE key_hash = $1', [stored.hash])).length === 1, 'the key on the replica');

  async function pauseReplay(): Promise<void> {
    await replicaDb.query('SELECT pg_wal_replay_pause()');
    await until(async () => (await replicaDb.query<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s'))[0]!.s === 'paused', 'replay to pause');
  }
  const resumeReplay = () => replicaDb.query('SELECT pg_wal_replay_resume()');

  beforeAll(async () => {
    [primary, upstream] = await Promise.all([startPostgresCluster(), startRecordingUpstream()]);
    upstream.configure({ reply: { body: 'ok' } });
    replica = await startPostgresReplica(primary);
    patient = await startTestGateway(gatewayYaml(60_000), { database: true });
    strict = await startTestGateway(gatewayYaml(300), { database: true });
    primaryDb = connectTestDatabase(primary.url);
    replicaDb = connectTestDatabase(replica.url);
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled([patient?.gateway.shutdown(), strict?.gateway.shutdown()]);
    await Promise.allSettled([primaryDb?.close(), replicaDb?.close()]);
    await replica?.destroy();
    await Promise.allSettled([primary?.destroy(), upstream?.close()]);
  }, 60_000);

  it('starts with the replica fresh, measured against the primary', async () => {
    expect((await replicaDb.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
    await until(async () => (await replicaState(patient)) === 'fresh' && (await replicaState(strict)) === 'fresh', 'both gateways to find the replica fresh');
    expect(await metricsText(patient)).toMatch(/^quotagate_db_replica_lag_seconds 0$/m);
  });

  it('serves a key from the replica once the replica has replayed it', async () => {
    const stored = await storeTestKey(primaryDb, { subject: 'replica-fresh' });
    await replayed(stored);
    const lookups = patient.gateway.databases!.keyLookups;
    const queriesBefore = lookups.queryCount;
    const delta = await servedDuring(patient, async () => {
      expect((await get(patient, stored.key)).status).toBe(200);
    });
    expect(delta).toEqual({ 'replica/fresh': 1 });
    expect(lookups.queryCount - queriesBefore).toBe(1);
    expect(upstream.requests.at(-1)!.headers['x-quotagate-subject']).toBe('replica-fresh');
  });

  it('accepts a key created while replay is paused: the replica’s miss is confirmed on the primary', async () => {
    await pauseReplay();
    try {
      const stored = await storeTestKey(primaryDb, { subject: 'replica-late' });
      expect(await replicaDb.query('SELECT 1 FROM api_keys WHERE key_hash = $1', [stored.hash])).toEqual([]);
      expect(await replicaState(patient)).toBe('fresh');
      const delta = await servedDuring(patient, async () => {
        expect((await get(patient, stored.key)).status).toBe(200);
      });
      expect(delta).toEqual({ 'primary/replica_miss': 1 });
      expect(upstream.requests.at(-1)!.headers['x-quotagate-subject']).toBe('replica-late');
      // Cached now: the next request asks neither database.
      expect(await servedDuring(patient, async () => void (await get(patient, stored.key)))).toEqual({});
    } finally {
      await resumeReplay();
    }
  });

  it('refuses a key neither database knows only after asking the primary too', async () => {
    const unknown = await storeTestKey(primaryDb, { subject: 'replica-unknown' });
    await primaryDb.query('DELETE FROM api_keys WHERE id = $1', [unknown.id]);
    const delta = await servedDuring(patient, async () => {
      expect((await get(patient, unknown.key)).body).toMatchObject({ status: 401, code: 'invalid_api_key' });
    });
    expect(delta).toEqual({ 'primary/replica_miss': 1 });
  });

  it('sends lookups to the primary while the replica lags beyond replica_max_lag_ms, and back once it catches up', async () => {
    const before = await storeTestKey(primaryDb, { subject: 'replica-known-1' });
    const after = await storeTestKey(primaryDb, { subject: 'replica-known-2' });
    await replayed(after);
    await pauseReplay();
    try {
      // A write the replica cannot replay: it falls behind from here on.
      await storeTestKey(primaryDb, { subject: 'replica-behind' });
      await until(async () => (await replicaState(strict)) === 'lagging', 'the strict gateway to find the replica lagging');
      const lag = Number(/^quotagate_db_replica_lag_seconds (\S+)$/m.exec(await metricsText(strict))?.[1]);
      expect(lag).toBeGreaterThan(0.3);
      // The replica has this key, but it is too far behind to be asked.
      const delta = await servedDuring(strict, async () => {
        expect((await get(strict, before.key)).status).toBe(200);
      });
      expect(delta).toEqual({ 'primary/replica_lagging': 1 });
    } finally {
      await resumeReplay();
    }
    await until(async () => (await replicaState(strict)) === 'fresh', 'the strict gateway to find the replica fresh again');
    const delta = await servedDuring(strict, async () => {
      expect((await get(strict, after.key)).status).toBe(200);
    });
    expect(delta).toEqual({ 'replica/fresh': 1 });
  });

  it('sends lookups to the primary while the replica is down, and back once it is up', async () => {
    const whileDown = await storeTestKey(primaryDb, { subject: 'replica-down-1' });
    const afterwards = await storeTestKey(primaryDb, { subject: 'replica-down-2' });
    await replayed(afterwards);
    await replica.stop();
    try {
      const delta = await servedDuring(patient, async () => {
        expect((await get(patient, whileDown.key)).status).toBe(200);
      });
      expect(delta).toEqual({ 'primary/replica_down': 1 });
      await until(async () => (await replicaState(patient)) === 'down', 'the gateway to report the replica down');
    } finally {
      await replica.start();
    }
    await until(async () => (await replicaState(patient)) === 'fresh', 'the gateway to find the replica fresh again');
    const delta = await servedDuring(patient, async () => {
      expect((await get(patient, afterwards.key)).status).toBe(200);
    });
    expect(delta).toEqual({ 'replica/fresh': 1 });
  }, 60_000);

  // Last for `patient`: after a change, it avoids the replica for replica_max_lag_ms (60 s).
  it('refuses a revoked key even while the replica, within its allowed lag, still shows it live', async () => {
    const stored = await storeTestKey(primaryDb, { subject: 'replica-revoked' });
    await replayed(stored);
    expect((await get(patient, stored.key)).status).toBe(200);
    await pauseReplay();
    try {
      await primaryDb.transaction((tx) => revokeApiKey(tx, stored.id));
      await patient.gateway.cacheInvalidator.keyChanged(stored.hash);
      expect(await replicaDb.query('SELECT 1 FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL', [stored.hash])).toHaveLength(1);
      expect(await replicaState(patient)).toBe('fresh');
      const delta = await servedDuring(patient, async () => {
        expect((await get(patient, stored.key)).body).toMatchObject({ status: 401, code: 'key_revoked' });
      });
      expect(delta).toEqual({ 'primary/recent_change': 1 });
    } finally {
      await resumeReplay();
    }
  });
});
