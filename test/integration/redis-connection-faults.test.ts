import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import { quotaPolicy, windowPolicy } from '../../src/core/policy.js';
import { CircuitBreaker } from '../../src/limiter/circuit-breaker.js';
import { GuardedLimiter, type LimitOutcome } from '../../src/limiter/guarded-limiter.js';
import { LocalDenyCache } from '../../src/limiter/local-deny-cache.js';
import { RedisLimiter } from '../../src/limiter/redis-limiter.js';
import { StoreCallGate } from '../../src/limiter/store-call-gate.js';
import { closeRedisClient, createRedisClient, type RedisClient, waitUntilReady } from '../../src/redis/client.js';
import { classifyRedisError } from '../../src/redis/error-kinds.js';
import { counterKey, idempotencyRecordKey } from '../../src/redis/keys.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { BLACKHOLE, delayBy, type FaultProxy, PASS, startFaultProxy } from '../support/fault-proxy.js';
import { redisCli, type RedisServer, startRedisServer } from '../support/redis-server.js';
import { eventually, within } from '../support/within.js';

const MID_MONTH = Date.UTC(2026, 5, 15, 10, 30, 0);
const policies = [windowPolicy('hour', 100_000), quotaPolicy('search', 'month', 1_000_000)];

/** Runs `body` with a throwaway redis-server and a fault proxy in front of it, and cleans both up. */
describe('Redis connection faults, through a fault proxy', () => {
  let redis: RedisServer | undefined;
  let proxy: FaultProxy | undefined;
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    await proxy?.close();
    await redis?.stop();
    proxy = undefined;
    redis = undefined;
  });

  async function startProxiedRedis(): Promise<FaultProxy> {
    redis = await startRedisServer();
    proxy = await startFaultProxy(redis.port);
    return proxy;
  }

  /** A client as the gateway makes one for its limiter: its own timeout is only a backstop. */
  async function limiterClient(url: string, commandTimeoutMs: number): Promise<RedisClient> {
    const client = createRedisClient(
      { url, command_timeout_ms: commandTimeoutMs, connect_timeout_ms: 1_000, key_prefix: 'qg' },
      { commandTimeoutMs: commandTimeoutMs + 1_000 },
    );
    client.on('error', () => {});
    cleanups.push(() => closeRedisClient(client));
    await waitUntilReady(client, 5_000);
    return client;
  }

  /** A limiter (command_timeout_ms 100) through a fault proxy, recording how each lost charge was settled. */
  async function lostChargeLimiter(): Promise<{ faults: FaultProxy; client: RedisClient; limiter: RedisLimiter; settled: string[] }> {
    const faults = await startProxiedRedis();
    const client = await limiterClient(faults.url, 100);
    const settled: string[] = [];
    const limiter = new RedisLimiter({
      client,
      keyPrefix: 'qg',
      commandTimeoutMs: 100,
      nowForTesting: () => MID_MONTH,
      onLostCharge: (outcome) => settled.push(outcome),
    });
    return { faults, client, limiter, settled };
  }

  it('reproduction: with plain ioredis, a blackholed command leaves every later reply matched to an older command', async () => {
    const faults = await startProxiedRedis();
    const client = new Redis(faults.url, { commandTimeout: 100, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    cleanups.push(async () => client.disconnect());
    await within(new Promise((resolve) => client.once('ready', resolve)), 5_000, 'ioredis ready');
    expect(await client.incr('n')).toBe(1);
    faults.setMode(BLACKHOLE);
    await expect(client.incr('n')).rejects.toThrow('Command timed out');
    faults.setMode(PASS);
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await client.incr('n').then(String, (error: Error) => error.message));
    // Every INCR ran on Redis, yet each reply went to the command before it, which had given up.
    expect(answers).toEqual(Array.from({ length: 10 }, () => 'Command timed out'));
    expect(await redisCli(redis!.port, 'GET', 'n')).toBe('11');
  });

  it('the limiter retires a blackholed connection: after the blackhole lifts, every call is answered again', async () => {
    const faults = await startProxiedRedis();
    const client = await limiterClient(faults.url, 100);
    const limiter = new RedisLimiter({ client, keyPrefix: 'qg', commandTimeoutMs: 100, nowForTesting: () => MID_MONTH });
    const subject = 'blackholed';
    expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(true);
    const acceptedBefore = faults.accepted;

    faults.setMode(BLACKHOLE);
    await expect(limiter.consume({ subject, policies, cost: 1 })).rejects.toThrow(/timed out/);
    faults.setMode(PASS);
    await eventually(() => faults.accepted > acceptedBefore && client.status === 'ready', 5_000, 'a new connection');

    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      outcomes.push(await limiter.consume({ subject, policies, cost: 1 }).then((d) => (d.allowed ? 'allowed' : 'denied'), () => 'failed'));
    }
    expect(outcomes).toEqual(Array.from({ length: 20 }, () => 'allowed'));
    // The blackholed call never reached Redis: nothing to undo, 21 admitted, 21 counted.
    await limiter.dirtySubjects(false);
    expect(limiter.lostChargesPending).toBe(0);
    expect(await redisCli(redis!.port, 'HGET', counterKey('qg', subject, 'w:hour'), 'n')).toBe('21');
  });

  it('undoes a charge whose reply was lost, by its request id, exactly once', async () => {
    const { faults, client, limiter, settled } = await lostChargeLimiter();
    const subject = 'delayed';
    expect((await limiter.consume({ subject, policies, cost: 3 })).allowed).toBe(true);
    // 80 ms each way: the command runs on Redis after 80 ms, its reply would come after 160 ms.
    faults.setMode(delayBy(80));
    await expect(limiter.consume({ subject, policies, cost: 3 })).rejects.toThrow(/timed out/);
    expect(limiter.lostChargesPending).toBe(1);
    const acceptedBefore = faults.accepted;
    faults.setMode(PASS);
    await eventually(() => faults.accepted > acceptedBefore && client.status === 'ready', 5_000, 'a new connection');
    expect(await redisCli(redis!.port, 'HGET', counterKey('qg', subject, 'w:hour'), 'n')).toBe('6');

    expect((await limiter.consume({ subject, policies, cost: 3 })).allowed).toBe(true);
    await limiter.dirtySubjects(false);
    expect(limiter.lostChargesPending).toBe(0);
    // Two admitted at cost 3: the lost one is gone from every counter.
    expect(await redisCli(redis!.port, 'HGET', counterKey('qg', subject, 'w:hour'), 'n')).toBe('6');
    expect(await redisCli(redis!.port, 'HGET', counterKey('qg', subject, 'q:search:month'), 'n')).toBe('6');
    expect(settled).toEqual(['refunded']);
  });

  it('undoes a lost idempotent consume the same way, and releases its key so that a retry is decided afresh', async () => {
    const { faults, client, limiter, settled } = await lostChargeLimiter();
    const subject = 'delayed-idempotent';
    const claim = { key: 'order-9', fingerprint: 'f9' };
    const recordKey = idempotencyRecordKey('qg', subject, claim.key);
    expect((await limiter.consume({ subject, policies, cost: 3 })).allowed).toBe(true);
    // The command runs on Redis after 80 ms; its reply would come after 160 ms.
    faults.setMode(delayBy(80));
    await expect(limiter.consumeIdempotent({ subject, policies, cost: 3 }, claim)).rejects.toThrow(/timed out/);
    expect(limiter.lostChargesPending).toBe(1);
    const acceptedBefore = faults.accepted;
    faults.setMode(PASS);
    await eventually(() => faults.accepted > acceptedBefore && client.status === 'ready', 5_000, 'a new connection');
    // It ran: charged, and its key marked in flight.
    expect(await redisCli(redis!.port, 'HGET', counterKey('qg', subject, 'w:hour'), 'n')).toBe('6');
    expect(await redisCli(redis!.port, 'HGET', recordKey, 'f')).toBe(claim.fingerprint);

    await limiter.dirtySubjects(false);
    expect(limiter.lostChargesPending).toBe(0);
    expect(settled).toEqual(['refunded']);
    expect(await redisCli(redis!.port, 'HGET', counterKey('qg', subject, 'w:hour'), 'n')).toBe('3');
    expect(await redisCli(redis!.port, 'EXISTS', recordKey)).toBe('0');
    // The client's retry with the key is admitted (not 409 in flight) and charged once.
    expect((await limiter.consumeIdempotent({ subject, policies, cost: 3 }, claim)).kind).toBe('admitted');
    expect(await redisCli(redis!.port, 'HGET', counterKey('qg', subject, 'q:search:month'), 'n')).toBe('6');
  });

  it('a reply that arrived while the gateway stalled past the deadline is not a timeout', async () => {
    redis = await startRedisServer();
    const client = await limiterClient(redis.url, 50);
    let retired = 0;
    const gate = new StoreCallGate({ timeoutMs: 50, maxInFlight: 8, maxQueueWaitMs: 50, retireConnection: () => (retired += 1) });
    const ping = gate.run(() => client.ping());
    // The process is busy for 200 ms (a loaded machine, a long GC): Redis answers meanwhile, and the deadline passes.
    const busyUntil = performance.now() + 200;
    while (performance.now() < busyUntil) {
      // Spin.
    }
    expect(await ping).toBe('PONG');
    expect(retired).toBe(0);
  });

  it('a burst for one subject does not open the breaker: calls past the in-flight cap wait, unsent, and are refused as queue timeouts', async () => {
    const faults = await startProxiedRedis();
    const client = await limiterClient(faults.url, 1_000);
    // A store that answers every call in about 40 ms, two at a time: a burst queues in the gateway.
    faults.setMode(delayBy(20));
    const clock = new ManualClock(MID_MONTH);
    const metrics = createMetrics({ collectProcessMetrics: false });
    const breaker = new CircuitBreaker({ failureThreshold: 3, openMs: 1_000, clock });
    const guard = new GuardedLimiter({
      limiter: new RedisLimiter({ client, keyPrefix: 'qg', commandTimeoutMs: 1_000, maxInFlight: 2, nowForTesting: () => MID_MONTH }),
      storeName: 'redis',
      breaker,
      denyCache: new LocalDenyCache(100, clock),
      metrics,
      clock,
      classifyError: classifyRedisError,
      storeRetryAfterSeconds: 1,
    });
    const burst = await Promise.all(
      Array.from({ length: 300 }, () => guard.decide({ subject: 'bursting', policies, cost: 1 }, 'closed')),
    );
    const decided = burst.filter((outcome) => outcome.kind === 'decided').length;
    const refused = burst.filter((outcome) => outcome.kind === 'fail-closed').length;
    expect(decided + refused).toBe(300);
    expect(decided).toBeGreaterThanOrEqual(2);
    expect(refused).toBeGreaterThan(0);
    const errors = (await metrics.registry.getSingleMetric('quotagate_store_errors_total')!.get()).values;
    expect(errors.map((v) => [v.labels.kind, v.value])).toEqual([['queue_timeout', refused]]);
    expect(breaker.state).toBe('closed');
    // Another subject is decided by the store right after the burst.
    const other: LimitOutcome = await guard.decide({ subject: 'bystander', policies, cost: 1 }, 'closed');
    expect(other).toMatchObject({ kind: 'decided', decision: { allowed: true } });
    expect(await redisCli(redis!.port, 'HGET', counterKey('qg', 'bursting', 'w:hour'), 'n')).toBe(String(decided));
  }, 20_000);
});
