import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { metricSample, readyz, readyzUntil } from '../support/admin-probe.js';
import { type PostgresCluster, startPostgresCluster } from '../support/postgres-cluster.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { redisCli, type RedisServer, startRedisServer } from '../support/redis-server.js';
import { startTestGateway, testConfig, TEST_KEY, type TestGateway } from '../support/test-gateway.js';
import { within } from '../support/within.js';

/**
 * The readiness probe against real redis-servers started here: `/readyz`
 * follows what Redis would do to a request — killed and restarted, refusing
 * the gateway's commands by ACL, at maxmemory — with no request traffic
 * needed to notice, and the metrics and the log say why.
 */

const ROUTES = '  - { name: strict, path_prefix: /strict, upstream: app, on_store_error: closed }';

async function call(gw: TestGateway): Promise<{ status: number; code?: string }> {
  return within(
    (async () => {
      const res = await request(`${gw.proxyUrl}/strict`, { headers: { 'x-api-key': TEST_KEY } });
      const text = await res.body.text();
      return res.statusCode === 200 ? { status: 200 } : { status: res.statusCode, code: (JSON.parse(text) as { code: string }).code };
    })(),
    3_000,
    'GET /strict',
  );
}

describe('/readyz with the Redis store follows its readiness probe', () => {
  let redis: RedisServer | undefined;
  let upstream: RecordingUpstream | undefined;
  let gw: TestGateway | undefined;
  let postgres: PostgresCluster | undefined;

  afterEach(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
    await redis?.stop().catch(() => undefined);
    await postgres?.destroy();
    gw = undefined;
    upstream = undefined;
    redis = undefined;
    postgres = undefined;
  });

  async function start(redisUrl: string, logLines?: string[], postgresUrl?: string): Promise<TestGateway> {
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: ROUTES,
        plans: '  small: { limits: { hour: 1000000 } }',
        extra: `store:
  type: redis
  redis: { url: "${redisUrl}", command_timeout_ms: 500, connect_timeout_ms: 500, probe_interval_ms: 50 }
`,
        ...(postgresUrl === undefined ? {} : { postgres: `  url: ${postgresUrl}\n  connect_timeout_ms: 500\n  statement_timeout_ms: 2000` }),
      }),
      { ...(logLines === undefined ? {} : { logLines }), database: postgresUrl !== undefined },
    );
    return gw;
  }

  it('answers 503 once Redis is killed and 200 once it is back (empty), without any request', async () => {
    redis = await startRedisServer();
    const gateway = await start(redis.url);
    expect(await readyz(gateway.adminUrl)).toEqual({ status: 200, body: { status: 'ready', store: 'up' } });
    expect(await metricSample(gateway.adminUrl, 'quotagate_store_ready{store="redis"}')).toBe(1);

    const port = redis.port;
    await redis.kill();
    const down = await readyzUntil(gateway.adminUrl, (r) => r.status === 503);
    expect(down.body).toMatchObject({ status: 'ready', store: 'down', reason: expect.stringMatching(/^connection: /) });
    expect(await metricSample(gateway.adminUrl, 'quotagate_store_ready{store="redis"}')).toBe(0);
    expect(await metricSample(gateway.adminUrl, 'quotagate_store_probes_total{store="redis",result="connection"}')).toBeGreaterThan(0);

    redis = await startRedisServer({ port });
    const up = await readyzUntil(gateway.adminUrl, (r) => r.status === 200);
    expect(up.body).toEqual({ status: 'ready', store: 'up' });
    expect(await metricSample(gateway.adminUrl, 'quotagate_store_ready{store="redis"}')).toBe(1);
    // The restarted Redis has no persistence: the probe saw its state key gone.
    expect(await metricSample(gateway.adminUrl, 'quotagate_redis_emptied_total')).toBe(1);
    // Not one request was needed for either verdict.
    expect(await metricSample(gateway.adminUrl, 'quotagate_decisions_total{outcome="allowed",reason="allowed"}')).toBeUndefined();
    expect(await call(gateway)).toEqual({ status: 200 });
  }, 30_000);

  it('answers 503 after an empty Redis restart while the ledger cannot be read, and 200 once it can', async () => {
    postgres = await startPostgresCluster();
    redis = await startRedisServer();
    const gateway = await start(redis.url, undefined, postgres.url);
    expect(await call(gateway)).toEqual({ status: 200 });

    await postgres.stop();
    const port = redis.port;
    await redis.stop();
    redis = await startRedisServer({ port });
    const down = await readyzUntil(gateway.adminUrl, (r) => r.status === 503 && r.body.reason?.startsWith('ledger_unavailable') === true);
    expect(down.body).toMatchObject({ status: 'ready', store: 'down' });
    expect(down.body.reason).toMatch(/^ledger_unavailable: Redis has lost its counters .* the usage ledger cannot be read to restore them: /);
    expect(await metricSample(gateway.adminUrl, 'quotagate_store_probes_total{store="redis",result="ledger_unavailable"}')).toBeGreaterThan(0);
    expect(await metricSample(gateway.adminUrl, 'quotagate_redis_emptied_total')).toBe(1);
    // What /readyz predicted: the subject cannot be restored, so its request is refused.
    expect(await call(gateway)).toEqual({ status: 503, code: 'store_unavailable' });

    await postgres.start();
    const up = await readyzUntil(gateway.adminUrl, (r) => r.status === 200, 20_000);
    expect(up.body).toEqual({ status: 'ready', store: 'up' });
    expect(await call(gateway)).toEqual({ status: 200 });
  }, 90_000);

  const refusals = [
    { denied: '-evalsha', reason: /^noperm: NOPERM this user has no permissions to run the 'evalsha' command/ },
    { denied: '-eval', reason: /^noperm: NOPERM this user has no permissions to run the 'eval' command/ },
    { denied: '-hset', reason: /^noperm: Redis refused HSET inside the gateway's scripts: / },
    { denied: '-pexpire', reason: /^noperm: Redis refused PEXPIRE inside the gateway's scripts: / },
  ];
  for (const { denied, reason } of refusals) {
    it(`answers 503 naming the permission for an ACL user with ${denied}, and counts and logs the refusals as noperm`, async () => {
      redis = await startRedisServer();
      expect(await redisCli(redis.port, 'ACL', 'SETUSER', 'gateway', 'on', '>gateway-secret', '~*', '&*', '+@all', denied)).toBe('OK');
      const logLines: string[] = [];
      const gateway = await start(`redis://gateway:gateway-secret@127.0.0.1:${redis.port}`, logLines);

      const answer = await readyz(gateway.adminUrl);
      expect(answer.status).toBe(503);
      expect(answer.body).toMatchObject({ status: 'ready', store: 'down' });
      expect(answer.body.reason).toMatch(reason);
      expect(await metricSample(gateway.adminUrl, 'quotagate_store_probes_total{store="redis",result="noperm"}')).toBeGreaterThan(0);
      expect(await metricSample(gateway.adminUrl, 'quotagate_store_probes_total{store="redis",result="ok"}')).toBeUndefined();

      // ioredis sends a script with EVAL on a connection's first use and with
      // EVALSHA after that: without EVALSHA only the first request passes.
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push(await call(gateway));
      const refused = denied === '-evalsha' ? 2 : 3;
      expect(statuses.slice(3 - refused)).toEqual(Array(refused).fill({ status: 503, code: 'store_unavailable' }));
      expect(await metricSample(gateway.adminUrl, 'quotagate_store_errors_total{store="redis",kind="noperm"}')).toBe(refused);
      const logged = logLines.map((line) => JSON.parse(line) as { msg: string; kind?: string; cause?: string });
      const errorLines = logged.filter((line) => line.msg === 'redis store error');
      expect(errorLines).toHaveLength(1);
      expect(errorLines[0]).toMatchObject({ kind: 'noperm', cause: expect.stringContaining('ACL') });
    }, 30_000);
  }

  it('answers 503 naming XADD for an ACL user that may not append quota events, before a request crosses a threshold', async () => {
    redis = await startRedisServer();
    expect(await redisCli(redis.port, 'ACL', 'SETUSER', 'gateway', 'on', '>gateway-secret', '~*', '&*', '+@all', '-xadd')).toBe('OK');
    const gateway = await start(`redis://gateway:gateway-secret@127.0.0.1:${redis.port}`, []);
    const answer = await readyz(gateway.adminUrl);
    expect(answer.status).toBe(503);
    expect(answer.body.reason).toMatch(/^noperm: Redis refused XADD inside the gateway's scripts: /);
  }, 30_000);

  it('answers 503 naming OOM while Redis is at maxmemory under noeviction, counts oom, logs it once, and recovers', async () => {
    redis = await startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'] });
    const logLines: string[] = [];
    const gateway = await start(redis.url, logLines);
    expect(await readyz(gateway.adminUrl)).toEqual({ status: 200, body: { status: 'ready', store: 'up' } });
    expect(await metricSample(gateway.adminUrl, 'quotagate_redis_maxmemory_policy{policy="noeviction"}')).toBe(1);

    const filler = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      // 4 MB of data, then a limit below it: every write is refused until the limit is raised.
      for (let i = 0; i < 40; i++) await filler.set(`filler:${i}`, 'x'.repeat(100_000));
      expect(await filler.config('SET', 'maxmemory', '2mb')).toBe('OK');
      await expect(filler.set('one-more', 'x')).rejects.toThrow(/^OOM command not allowed/);

      const down = await readyzUntil(gateway.adminUrl, (r) => r.status === 503);
      expect(down.body).toMatchObject({ status: 'ready', store: 'down' });
      expect(down.body.reason).toMatch(/^oom: Redis refused HSET inside the gateway's scripts: OOM command not allowed when used memory > 'maxmemory'/);
      expect(down.body.warnings).toBeUndefined();
      expect(await metricSample(gateway.adminUrl, 'quotagate_store_probes_total{store="redis",result="oom"}')).toBeGreaterThan(0);

      // Fewer than the breaker's threshold (5), so each reaches Redis.
      for (let i = 0; i < 3; i++) expect(await call(gateway)).toEqual({ status: 503, code: 'store_unavailable' });
      expect(await metricSample(gateway.adminUrl, 'quotagate_store_errors_total{store="redis",kind="oom"}')).toBe(3);
      expect(await metricSample(gateway.adminUrl, 'quotagate_store_errors_total{store="redis",kind="script"}')).toBeUndefined();
      const errorLines = logLines.map((line) => JSON.parse(line) as { msg: string; kind?: string }).filter((line) => line.msg === 'redis store error');
      expect(errorLines.map((line) => line.kind)).toEqual(['oom']);

      expect(await filler.config('SET', 'maxmemory', '64mb')).toBe('OK');
      const up = await readyzUntil(gateway.adminUrl, (r) => r.status === 200);
      expect(up.body).toEqual({ status: 'ready', store: 'up' });
      expect(await call(gateway)).toEqual({ status: 200 });
    } finally {
      filler.disconnect();
    }
  }, 30_000);

  it('stays ready under allkeys-lru but warns that counters can be evicted, and exposes the policy', async () => {
    redis = await startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] });
    const logLines: string[] = [];
    const gateway = await start(redis.url, logLines);
    const answer = await readyz(gateway.adminUrl);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      status: 'ready',
      store: 'up',
      warnings: [expect.stringMatching(/^maxmemory-policy allkeys-lru lets Redis evict any key at maxmemory: an evicted counter restarts at zero/)],
    });
    expect(await metricSample(gateway.adminUrl, 'quotagate_redis_maxmemory_policy{policy="allkeys-lru"}')).toBe(1);
    expect(await metricSample(gateway.adminUrl, 'quotagate_redis_maxmemory_policy{policy="noeviction"}')).toBeUndefined();
    expect(logLines.filter((line) => line.includes('redis store warning'))).toHaveLength(1);

    // A policy change is picked up by the next probes: volatile-* evicts counters too (they carry a TTL).
    expect(await redisCli(redis.port, 'CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru')).toBe('OK');
    const changed = await readyzUntil(gateway.adminUrl, (r) => r.body.warnings?.[0]?.includes('volatile-lru') === true);
    expect(changed.status).toBe(200);
    expect(changed.body.warnings).toEqual([expect.stringContaining('evict keys with a TTL, which every counter has')]);
    expect(await call(gateway)).toEqual({ status: 200 });
  }, 30_000);
});
