import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { redisCli, type RedisServer, startRedisServer } from '../support/redis-server.js';
import { startTestGateway, testConfig, TEST_KEY, type TestGateway } from '../support/test-gateway.js';
import { readyzUntil } from '../support/admin-probe.js';
import { eventually, eventuallyAsync, within } from '../support/within.js';

const ROUTES = `
  - { name: strict, path_prefix: /strict, upstream: app, on_store_error: closed }
  - { name: lenient, path_prefix: /lenient, upstream: app, on_store_error: open }`;

/** Every request is bounded: a hang fails the test rather than stalling it. */
const REQUEST_BOUND_MS = 3_000;

interface Answer {
  readonly path: string;
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

async function call(gw: TestGateway, path: string): Promise<Answer> {
  return within(
    (async () => {
      const res = await request(`${gw.proxyUrl}${path}`, { headers: { 'x-api-key': TEST_KEY } });
      return { path, status: res.statusCode, headers: res.headers, body: await res.body.text() };
    })(),
    REQUEST_BOUND_MS,
    `GET ${path}`,
  );
}

/**
 * Sends requests to both routes, `concurrency` at a time, until stopped, and
 * collects every answer; a transport error or a hang is recorded as status 0.
 */
function startLoad(gw: TestGateway, concurrency = 6) {
  const answers: Answer[] = [];
  let running = true;
  const workers = Array.from({ length: concurrency }, async (_, i) => {
    while (running) {
      const path = i % 2 === 0 ? '/strict' : '/lenient';
      answers.push(
        await call(gw, path).catch((error: Error) => ({ path, status: 0, headers: {}, body: error.message })),
      );
    }
  });
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

describe('Redis faults under load', () => {
  let redis: RedisServer | undefined;
  let upstream: RecordingUpstream | undefined;
  let gw: TestGateway | undefined;
  let load: ReturnType<typeof startLoad> | undefined;

  afterEach(async () => {
    await load?.stop();
    load = undefined;
    await gw?.gateway.shutdown();
    await upstream?.close();
    await redis?.stop().catch(() => undefined);
    gw = undefined;
    upstream = undefined;
    redis = undefined;
  });

  async function start(): Promise<TestGateway> {
    redis = await startRedisServer();
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: ROUTES,
        plans: '  small: { limits: { hour: 1000000, day: 10000000 } }',
        extra: `store:
  type: redis
  redis: { url: "${redis.url}", command_timeout_ms: 100, connect_timeout_ms: 500, probe_interval_ms: 50 }
  circuit_breaker: { failure_threshold: 3, open_ms: 200 }
`,
      }),
    );
    return gw;
  }

  it('fails closed routes with 503 and open routes through, never 500 or a hang, and recovers when Redis returns', async () => {
    const gateway = await start();
    const port = redis!.port;
    const healthy = await call(gateway, '/strict');
    expect(healthy.status).toBe(200);
    expect(healthy.headers['ratelimit']).toBeDefined();

    load = startLoad(gateway);
    const { answers } = load;
    await eventually(() => answers.length >= 50, 5_000, 'load before the outage');
    await redis!.kill();
    const outageStart = answers.length;
    await eventually(
      () => answers.slice(outageStart).filter((a) => a.status === 503).length >= 20,
      10_000,
      '503s from the closed route during the outage',
    );
    // The readiness probe (every 50 ms) reports the outage; the 503s above can all come before its next run.
    const ready = await readyzUntil(gateway.adminUrl, (r) => r.body.store !== 'up');
    expect(ready.body).toMatchObject({ store: expect.stringMatching(/^(down|probing)$/) });

    redis = await startRedisServer({ port });
    const recoveryStart = answers.length;
    // The gateway runs on a manual clock: move it past open_ms so the breaker probes Redis.
    await eventually(
      () => {
        gateway.clock.advance(50);
        return answers.slice(recoveryStart).some((a) => a.path === '/strict' && a.status === 200);
      },
      10_000,
      'decisions to resume on the closed route after Redis returned',
    );
    await load.stop();

    const during = answers.slice(outageStart, recoveryStart);
    expect(answers.filter((a) => a.status === 0 || (a.status >= 500 && a.status !== 503))).toEqual([]);
    expect(answers.filter((a) => a.path === '/lenient' && a.status !== 200)).toEqual([]);
    expect(answers.filter((a) => a.path === '/strict' && ![200, 503].includes(a.status))).toEqual([]);
    const failedClosed = during.filter((a) => a.path === '/strict' && a.status === 503);
    expect(failedClosed.length).toBeGreaterThan(0);
    for (const answer of failedClosed) {
      expect(answer.headers['retry-after']).toBe('1');
      expect(JSON.parse(answer.body)).toMatchObject({ status: 503, code: 'store_unavailable' });
    }
    const failedOpen = during.filter((a) => a.path === '/lenient' && a.headers['x-quotagate-limit'] === 'unenforced');
    expect(failedOpen.length).toBeGreaterThan(0);
    for (const answer of failedOpen) expect(answer.headers['ratelimit']).toBeUndefined();

    const after = await call(gateway, '/strict');
    expect(after.status).toBe(200);
    expect(after.headers['ratelimit']).toBeDefined();
    // The readiness probe (every probe_interval_ms) finds Redis back by itself, with no request needed.
    const readyAgain = await readyzUntil(gateway.adminUrl, (r) => r.status === 200 && r.body.store === 'up');
    expect(readyAgain.body).toMatchObject({ status: 'ready', store: 'up' });
  }, 40_000);

  it('loses no request when the script cache is flushed mid-load', async () => {
    const gateway = await start();
    load = startLoad(gateway);
    const { answers } = load;
    for (let i = 0; i < 5; i++) {
      await eventually(() => answers.length >= (i + 1) * 40, 5_000, 'load between flushes');
      expect(await redisCli(redis!.port, 'SCRIPT', 'FLUSH')).toBe('OK');
    }
    await eventually(() => answers.length >= 240, 5_000, 'load after the last flush');
    await load.stop();
    const notAdmitted = answers.filter((a) => a.status !== 200 || a.headers['ratelimit'] === undefined);
    expect(notAdmitted).toEqual([]);
    const noscriptCount = async () => Number(/errorstat_NOSCRIPT:count=(\d+)/.exec(await redisCli(redis!.port, 'INFO', 'errorstats'))?.[1]);
    expect(await noscriptCount()).toBeGreaterThanOrEqual(1);
    // Background commands (the key's last-used write, the ledger) may still meet a NOSCRIPT after the load:
    // the metric must catch up with Redis's own count (bounded wait), not match a snapshot taken mid-way.
    let metrics = '';
    let reloads = -1;
    await eventuallyAsync(
      async () => {
        reloads = await noscriptCount();
        metrics = await (await request(`${gateway.adminUrl}/metrics`)).body.text();
        return metrics.includes(`quotagate_redis_noscript_errors ${reloads}\n`);
      },
      5_000,
      'the NOSCRIPT metric to match Redis errorstats',
    );
    expect(metrics).toContain(`quotagate_redis_noscript_errors ${reloads}`);
  }, 30_000);
});
