import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { readUsageSince } from '../../src/db/usage.js';
import { counterKey } from '../../src/redis/keys.js';
import { storeTestKey } from '../support/database-keys.js';
import { BLACKHOLE, delayBy, type FaultProxy, PASS, startFaultProxy } from '../support/fault-proxy.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { redisCli, type RedisServer, startRedisServer } from '../support/redis-server.js';
import { startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';
import { within } from '../support/within.js';

/**
 * The real gateway with its Redis behind a fault proxy the test switches:
 * a blackhole (connection kept, every byte dropped) and delays that make
 * replies time out after the command ran.
 */

const SUBJECT = 'faulty-link';
/** Every request is bounded: a hang fails the test rather than stalling it. */
const REQUEST_BOUND_MS = 5_000;

describe('the gateway through Redis connection faults', () => {
  let redis: RedisServer | undefined;
  let proxy: FaultProxy | undefined;
  let upstream: RecordingUpstream | undefined;
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
    await proxy?.close();
    await redis?.stop();
    gw = undefined;
    upstream = undefined;
    proxy = undefined;
    redis = undefined;
  });

  async function start(): Promise<{ gateway: TestGateway; faults: FaultProxy; key: string }> {
    redis = await startRedisServer();
    proxy = await startFaultProxy(redis.port);
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: strict, path_prefix: /strict, upstream: app, on_store_error: closed }',
        plans: '  small: { limits: { month: 1000000 } }',
        extra: `store:
  type: redis
  redis: { url: "${proxy.url}", command_timeout_ms: 100, connect_timeout_ms: 500 }
  circuit_breaker: { failure_threshold: 3, open_ms: 200 }
usage: { flush_interval_ms: 100 }
`,
      }),
      { database: true },
    );
    const { key } = await storeTestKey(gw.gateway.databases!.primary, { subject: SUBJECT });
    return { gateway: gw, faults: proxy, key };
  }

  async function status(gateway: TestGateway, key: string): Promise<number> {
    return within(
      (async () => {
        const res = await request(`${gateway.proxyUrl}/strict`, { headers: { 'x-api-key': key } });
        await res.body.text();
        return res.statusCode;
      })(),
      REQUEST_BOUND_MS,
      'GET /strict',
    );
  }

  /** Statuses of `count` requests in a row; between two, the clock moves past open_ms so the breaker probes. */
  async function sequence(gateway: TestGateway, key: string, count: number): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < count; i++) {
      statuses.push(await status(gateway, key));
      gateway.clock.advance(250);
    }
    return statuses;
  }

  /** Requests until one is admitted (at most `bound`), as an operator's traffic would after a fault ends. */
  async function untilAdmitted(gateway: TestGateway, key: string, bound: number): Promise<number[]> {
    const statuses: number[] = [];
    while (statuses.length < bound && statuses.at(-1) !== 200) {
      statuses.push(await status(gateway, key));
      gateway.clock.advance(250);
      if (statuses.at(-1) !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return statuses;
  }

  const tally = (statuses: readonly number[]) =>
    statuses.reduce<Record<number, number>>((counts, s) => ({ ...counts, [s]: (counts[s] ?? 0) + 1 }), {});

  async function metric(gateway: TestGateway, line: string): Promise<number> {
    const text = await (await request(`${gateway.adminUrl}/metrics`)).body.text();
    const match = text.split('\n').find((l) => l.startsWith(`${line} `));
    return match === undefined ? 0 : Number(match.slice(line.length + 1));
  }

  it('recovers after a blackhole: once a request is admitted again, the next 30 are all admitted', async () => {
    const { gateway, faults, key } = await start();
    expect(tally(await sequence(gateway, key, 5))).toEqual({ 200: 5 });

    faults.setMode(BLACKHOLE);
    const during = await sequence(gateway, key, 10);
    expect(tally(during)).toEqual({ 503: 10 });

    faults.setMode(PASS);
    const recovering = await untilAdmitted(gateway, key, 200);
    expect(recovering.at(-1)).toBe(200);
    expect(recovering.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(tally(await sequence(gateway, key, 30))).toEqual({ 200: 30 });
    // The readiness probe runs on its own interval: it reports the store up again by itself.
    const readiness = async () => ((await (await request(`${gateway.adminUrl}/readyz`)).body.json()) as { store: string }).store;
    const readyDeadline = Date.now() + 10_000;
    while ((await readiness()) !== 'up' && Date.now() < readyDeadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await readiness()).toBe('up');
    // The blackhole was seen as store faults: a timeout (a request's, or the readiness probe's), then failed reconnections.
    const storeErrors = (kind: string) => metric(gateway, `quotagate_store_errors_total{store="redis",kind="${kind}"}`);
    expect((await storeErrors('timeout')) + (await storeErrors('connection'))).toBeGreaterThan(0);
  }, 60_000);

  it('bills exactly the admitted requests when replies time out after the command ran', async () => {
    const { gateway, faults, key } = await start();
    const healthy = await sequence(gateway, key, 10);
    expect(tally(healthy)).toEqual({ 200: 10 });

    // 80 ms each way: a consume runs on Redis after 80 ms; its reply would be back after 160 ms, past command_timeout_ms.
    faults.setMode(delayBy(80));
    const delayed = await sequence(gateway, key, 20);
    expect(tally(delayed)).toEqual({ 503: 20 });

    faults.setMode(PASS);
    const recovering = await untilAdmitted(gateway, key, 200);
    const after = await sequence(gateway, key, 10);
    const all = [...healthy, ...delayed, ...recovering, ...after];
    expect(all.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    const admitted = all.filter((s) => s === 200).length;
    expect(upstream!.requests).toHaveLength(admitted);

    // Some refused requests had charged: each of those was undone by its request id.
    expect(await metric(gateway, 'quotagate_lost_charges_total{result="refunded"}')).toBeGreaterThan(0);
    const counted = async () => {
      const rows = await readUsageSince(gateway.gateway.databases!.primary, SUBJECT, new Date(Date.now() - 40 * 86_400_000));
      return {
        counter: Number(await redisCli(redis!.port, 'HGET', counterKey('qg', SUBJECT, 'w:month'), 'n')),
        ledger: rows.filter((row) => row.counterId === 'w:month').reduce((sum, row) => sum + row.count, 0),
      };
    };
    // The flusher runs every 100 ms. The ledger only ever rises: had it once held a refused
    // request's charge, it could never come down to `admitted`.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && JSON.stringify(await counted()) !== JSON.stringify({ counter: admitted, ledger: admitted })) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await counted()).toEqual({ counter: admitted, ledger: admitted });
  }, 60_000);
});
