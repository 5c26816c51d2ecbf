import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { CommandTraceContext } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodOf } from '../../src/core/calendar.js';
import { windowPolicy, quotaPolicy, withThresholds } from '../../src/core/policy.js';
import { RedisLimiter } from '../../src/limiter/redis-limiter.js';
import {
  closeRedisClient,
  type RedisClient,
  waitUntilReady,
} from '../../src/redis/client.js';
import { counterKey } from '../../src/redis/keys.js';
import { limiterContract } from '../contract/limiter.contract.js';
import { quotaKindsContract } from '../contract/limiter-quota-kinds.contract.js';
import { eventsContract } from '../contract/limiter-events.contract.js';
import { readEventStream } from '../support/event-streams.js';
import { startRedisServer, redisCli, type RedisServer } from '../support/redis-server.js';
import { commandCalls, connectTestRedis, deleteKeysWithPrefix, keysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { within } from '../support/within.js';

const MID_MONTH = Date.UTC(2026, 5, 15, 10, 30, 0);

const connect = connectTestRedis;

describe('RedisLimiter on 127.0.0.1:6379', () => {
  const keyPrefix = testKeyPrefix('contract');
  let client: RedisClient;
  beforeAll(async () => {
    client = await connect('redis://127.0.0.1:6379');
  });
  afterAll(async () => {
    await deleteKeysWithPrefix(client, keyPrefix);
    await closeRedisClient(client);
  });

  limiterContract('RedisLimiter', async (clock) => new RedisLimiter({ client, keyPrefix, nowForTesting: () => clock.now() }));
  quotaKindsContract('RedisLimiter', async (clock) => new RedisLimiter({ client, keyPrefix, nowForTesting: () => clock.now() }));
  eventsContract('RedisLimiter', async (clock) => ({
    limiter: new RedisLimiter({ client, keyPrefix, nowForTesting: () => clock.now(), events: { streamMaxLength: 10_000 } }),
    eventsOf: (subject) => readEventStream(client, keyPrefix, subject),
  }));

  it('keeps every key of a subject under its hash tag, expiring shortly after its period ends', async () => {
    const subject = `tagged-${Math.random().toString(36).slice(2)}`;
    const limiter = new RedisLimiter({ client, keyPrefix, nowForTesting: () => MID_MONTH });
    const policies = [windowPolicy('hour', 10), windowPolicy('day', 10), quotaPolicy('search', 'month', 10)];
    const admitted = await limiter.consumeIdempotent({ subject, policies, cost: 1 }, { key: 'order-7', fingerprint: 'f' });
    if (admitted.kind !== 'admitted') throw new Error('expected an admission');

    const keys = (await keysWithPrefix(client, keyPrefix)).filter((key) => key.includes(subject)).sort();
    const named = (key: string) => key.replace(/:idem2:[0-9a-f]{64}$/, ':idem2:<sha256>').replace(/:charges:\d+$/, ':charges:<minute>');
    expect(keys.map(named)).toEqual([
      `${keyPrefix}:v1:{${subject}}:charges:<minute>`,
      `${keyPrefix}:v1:{${subject}}:idem2:<sha256>`,
      `${keyPrefix}:v1:{${subject}}:q:search:month`,
      `${keyPrefix}:v1:{${subject}}:w:day`,
      `${keyPrefix}:v1:{${subject}}:w:hour`,
    ]);
    const graceMs = 60_000;
    const expectedTtlMs: Record<string, number> = {
      'w:hour': 30 * 60_000 + graceMs,
      'w:day': 13.5 * 3_600_000 + graceMs,
      'q:search:month': (15 * 24 + 13.5) * 3_600_000 + graceMs,
      // In flight: idempotency.in_flight_ttl_ms.
      idem: 120_000,
      // The minute's records live the minute plus two minutes from its first one.
      charge: 180_000,
    };
    for (const key of keys) {
      const suffix = key.includes(':idem2:') ? 'idem' : key.includes(':charges:') ? 'charge' : key.slice(key.indexOf('}:') + 2);
      const ttlMs = await client.pttl(key);
      // Set from the injected time, then counting down on the real clock since.
      expect(ttlMs, key).toBeLessThanOrEqual(expectedTtlMs[suffix]!);
      expect(ttlMs, key).toBeGreaterThan(expectedTtlMs[suffix]! - 10_000);
    }
    expect(await client.hgetall(keys.find((key) => key.endsWith(':w:hour'))!)).toEqual({
      p: String(Date.UTC(2026, 5, 15, 10) / 1000),
      n: '1',
    });
    // Completed, the record is kept for idempotency.ttl_ms.
    const record = keys.find((key) => key.includes(':idem2:'))!;
    expect(await client.hgetall(record)).toEqual({ f: 'f', a: admitted.ticket.attempt });
    await limiter.completeIdempotent(admitted.ticket, { status: 200, headers: [], body: Buffer.from('done') });
    expect(await client.pttl(record)).toBeGreaterThan(24 * 3_600_000 - 10_000);
    expect(await client.hgetall(record)).toEqual({ f: 'f', a: admitted.ticket.attempt, s: '200', h: '[]', b: 'done' });
  });

  it('sets a counter\'s expiry when its period begins and keeps it while the period runs; a new period resets it', async () => {
    const subject = `expiry-${Math.random().toString(36).slice(2)}`;
    let now = MID_MONTH;
    const limiter = new RedisLimiter({ client, keyPrefix, nowForTesting: () => now });
    const policies = [windowPolicy('hour', 10)];
    const key = counterKey(keyPrefix, subject, 'w:hour');
    expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(true);
    const firstTtlMs = await client.pttl(key);
    // 10:30 → the hour ends at 11:00, plus the 60 s grace.
    expect(firstTtlMs).toBeGreaterThan(31 * 60_000 - 10_000);
    now = MID_MONTH + 20 * 60_000; // 10:50, same hour: incremented, expiry untouched (not re-set to 11 min).
    expect((await limiter.consume({ subject, policies, cost: 2 })).allowed).toBe(true);
    expect(await client.hgetall(key)).toEqual({ p: String(Date.UTC(2026, 5, 15, 10) / 1000), n: '3' });
    const keptTtlMs = await client.pttl(key);
    expect(keptTtlMs).toBeLessThanOrEqual(firstTtlMs);
    expect(keptTtlMs).toBeGreaterThan(20 * 60_000);
    now = MID_MONTH + 40 * 60_000; // 11:10: a new hour overwrites the counter and its expiry (50 min + grace).
    expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(true);
    expect(await client.hgetall(key)).toEqual({ p: String(Date.UTC(2026, 5, 15, 11) / 1000), n: '1' });
    const newTtlMs = await client.pttl(key);
    expect(newTtlMs).toBeLessThanOrEqual(51 * 60_000);
    expect(newTtlMs).toBeGreaterThan(51 * 60_000 - 10_000);
  });

  it('takes the time from Redis TIME when no test time is injected', async () => {
    const subject = `redis-time-${Math.random().toString(36).slice(2)}`;
    const limiter = new RedisLimiter({ client, keyPrefix });
    const [before] = await client.time();
    const decision = await limiter.consume({ subject, policies: [windowPolicy('hour', 5)], cost: 1 });
    const [after] = await client.time();
    if (!decision.allowed || decision.receipt === undefined) throw new Error('expected a charge');
    const startMs = decision.receipt.charges[0]!.periodStartMs;
    expect([periodOf('hour', Number(before) * 1000).startMs, periodOf('hour', Number(after) * 1000).startMs]).toContain(
      startMs,
    );
    const ttlMs = await client.pttl(counterKey(keyPrefix, subject, 'w:hour'));
    expect(ttlMs).toBeLessThanOrEqual(startMs + 3_600_000 + 60_000 - Number(before) * 1000);
    expect(ttlMs).toBeGreaterThan(60_000);
  });

  it('keeps a subject with braces in one tag, distinct from look-alike subjects', async () => {
    const limiter = new RedisLimiter({ client, keyPrefix, nowForTesting: () => MID_MONTH });
    const run = Math.random().toString(36).slice(2);
    const policies = [windowPolicy('hour', 1)];
    expect((await limiter.consume({ subject: `}{${run}`, policies, cost: 1 })).allowed).toBe(true);
    expect((await limiter.consume({ subject: `%7D%7B${run}`, policies, cost: 1 })).allowed).toBe(true);
    expect((await limiter.consume({ subject: `}{${run}`, policies, cost: 1 })).allowed).toBe(false);
  });

  it('does not create a counter when refunding one that has expired', async () => {
    const limiter = new RedisLimiter({ client, keyPrefix, nowForTesting: () => MID_MONTH });
    const subject = `refund-gone-${Math.random().toString(36).slice(2)}`;
    const charged = await limiter.consume({ subject, policies: [windowPolicy('minute', 5)], cost: 2 });
    if (!charged.allowed || charged.receipt === undefined) throw new Error('expected a charge');
    await client.unlink(counterKey(keyPrefix, subject, 'w:minute'));
    await limiter.refund(charged.receipt);
    expect(await client.exists(counterKey(keyPrefix, subject, 'w:minute'))).toBe(0);
  });
});

describe('RedisLimiter on a dedicated redis-server', () => {
  let server: RedisServer;
  let client: RedisClient;
  let limiter: RedisLimiter;
  const policies = [windowPolicy('minute', 40), windowPolicy('hour', 100), quotaPolicy('search', 'month', 1_000)];
  beforeAll(async () => {
    server = await startRedisServer();
    client = await connect(server.url);
    limiter = new RedisLimiter({ client, keyPrefix: 'qg', nowForTesting: () => MID_MONTH });
  });
  afterAll(async () => {
    await limiter?.close();
    if (client !== undefined) await closeRedisClient(client);
    await server?.stop();
  });

  it('sends exactly one command (EVALSHA) per consume, with or without an Idempotency-Key, whatever the answer', async () => {
    // The first call on a connection is an EVAL that loads the script.
    await limiter.consume({ subject: 'warm-up', policies, cost: 1 });
    const counted = { subject: 'counted', policies: [windowPolicy('minute', 20)], cost: 1 };
    const done = await limiter.consumeIdempotent(counted, { key: 'done', fingerprint: 'f' });
    if (done.kind !== 'admitted') throw new Error('expected an admission');
    await limiter.completeIdempotent(done.ticket, { status: 200, headers: [], body: Buffer.from('ok') });
    const sent: string[] = [];
    const onStart = (message: unknown) => {
      const context = message as CommandTraceContext;
      if (context.serverPort === server.port) sent.push(context.command);
    };
    const before = commandCalls(await redisCli(server.port, 'INFO', 'commandstats'));
    subscribe('tracing:ioredis:command:start', onStart);
    const outcomes: string[] = [];
    try {
      for (let i = 0; i < 50; i++) {
        if (i % 2 === 0) {
          const decision = await limiter.consume(counted);
          outcomes.push(decision.allowed ? 'allowed' : 'denied');
        } else {
          // Keys: `done` (replay, or reused under another fingerprint), fresh ones, and repeats of them in flight.
          const key = i % 5 === 1 ? 'done' : `r-${i % 9}`;
          const decision = await limiter.consumeIdempotent(counted, { key, fingerprint: i % 10 === 3 ? 'other' : 'f' });
          outcomes.push(decision.kind);
        }
      }
    } finally {
      unsubscribe('tracing:ioredis:command:start', onStart);
    }
    const after = commandCalls(await redisCli(server.port, 'INFO', 'commandstats'));
    expect(new Set(outcomes)).toEqual(new Set(['allowed', 'denied', 'admitted', 'replay', 'in-flight', 'reused']));
    expect(sent).toEqual(Array.from({ length: 50 }, () => 'evalsha'));
    expect((after.evalsha ?? 0) - (before.evalsha ?? 0)).toBe(50);
    expect((after.eval ?? 0) - (before.eval ?? 0)).toBe(0);
  });

  it('with events on, a call that reaches no threshold makes the same commands inside the script as one without events', async () => {
    const watched = [windowPolicy('hour', 1_000), withThresholds(quotaPolicy('search', 'month', 1_000), [80, 95, 100])];
    const eventing = new RedisLimiter({ client, keyPrefix: 'qg', nowForTesting: () => MID_MONTH, events: { streamMaxLength: 1_000 } });
    const commandsOf = async (run: () => Promise<unknown>) => {
      const before = commandCalls(await redisCli(server.port, 'INFO', 'commandstats'));
      await run();
      const after = commandCalls(await redisCli(server.port, 'INFO', 'commandstats'));
      const names = new Set([...Object.keys(before), ...Object.keys(after)]);
      names.delete('info');
      return Object.fromEntries([...names].map((name) => [name, (after[name] ?? 0) - (before[name] ?? 0)]).filter(([, calls]) => calls !== 0));
    };
    // Warm both subjects up (their counters exist) and the script cache.
    await limiter.consume({ subject: 'steady-plain', policies: watched, cost: 1 });
    await eventing.consume({ subject: 'steady-events', policies: watched, cost: 1, plan: 'pro' });
    const ten = (run: () => Promise<unknown>) => async () => {
      for (let i = 0; i < 10; i++) await run();
    };
    const plain = await commandsOf(ten(() => limiter.consume({ subject: 'steady-plain', policies: watched, cost: 1 })));
    const withEvents = await commandsOf(ten(() => eventing.consume({ subject: 'steady-events', policies: watched, cost: 1, plan: 'pro' })));
    expect(withEvents).toEqual(plain);
    expect(withEvents.xadd).toBeUndefined();
    // The crossing itself: one XADD per threshold and one HSET of what was emitted.
    const crossing = await commandsOf(() => eventing.consume({ subject: 'steady-events', policies: watched, cost: 789, plan: 'pro' }));
    expect(crossing.xadd).toBe(1);
    expect(crossing.hset).toBe((plain.hset ?? 0) / 10 + 1);
    await eventing.close();
  });

  it('recovers from a flushed script cache (NOSCRIPT) without a failed call', async () => {
    const subject = 'noscript';
    const errorsBefore = await redisCli(server.port, 'INFO', 'errorstats');
    expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(true);
    expect(await redisCli(server.port, 'SCRIPT', 'FLUSH')).toBe('OK');
    const decision = await limiter.consume({ subject, policies, cost: 1 });
    expect(decision.policies.map((p) => p.remaining)).toEqual([38, 98, 998]);
    const noscript = (info: string) => Number(/errorstat_NOSCRIPT:count=(\d+)/.exec(info)?.[1] ?? 0);
    expect(noscript(await redisCli(server.port, 'INFO', 'errorstats')) - noscript(errorsBefore)).toBe(1);
    expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(true);
  });

  it('rejects a call Redis does not answer within command_timeout_ms, retires the connection, and undoes what the call charged', async () => {
    const impatient = await connect(server.url, { command_timeout_ms: 50 });
    const limiter50 = new RedisLimiter({ client: impatient, keyPrefix: 'qg', ownsClient: true, nowForTesting: () => MID_MONTH });
    const subject = `paused-${Math.random().toString(36).slice(2)}`;
    try {
      await limiter50.consume({ subject, policies, cost: 1 }); // load the script on this connection
      // Redis holds every client's commands for 500 ms, as a stalled server would.
      expect(await redisCli(server.port, 'CLIENT', 'PAUSE', '500', 'ALL')).toBe('OK');
      const stalled = limiter50.consume({ subject, policies, cost: 1 });
      await expect(within(stalled, 400, 'the command timeout')).rejects.toThrow(/timed out/i);
      expect(limiter50.lostChargesPending).toBe(1);
      await redisCli(server.port, 'PING'); // held until the pause is over
      await within(waitUntilReady(impatient, 3_000), 4_000, 'a new connection');
      expect((await limiter50.consume({ subject, policies, cost: 1 })).allowed).toBe(true);
      // Whether or not the stalled call ran, it is undone: two admitted, two counted.
      await limiter50.dirtySubjects(false);
      expect(limiter50.lostChargesPending).toBe(0);
      expect((await limiter50.peek({ subject, policies })).map((state) => state.remaining)).toEqual([38, 98, 998]);
    } finally {
      await limiter50.close();
    }
  });

  it('rejects promptly while Redis is down and resumes by itself when it returns', async () => {
    const port = server.port;
    await server.kill();
    await expect(within(limiter.consume({ subject: 'outage', policies, cost: 1 }), 3_000, 'a consume')).rejects.toThrow();
    server = await startRedisServer({ port });
    await within(waitUntilReady(client, 5_000), 6_000, 'the client to reconnect');
    expect((await limiter.consume({ subject: 'outage', policies, cost: 1 })).allowed).toBe(true);
  });
});
