import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import { coveredByCredits, type Policy, quotaPolicy, windowPolicy } from '../../src/core/policy.js';
import { insertCreditGrant } from '../../src/db/credit-grants.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { IN_MEMORY, PgliteDatabase } from '../../src/db/pglite-database.js';
import { createSubject } from '../../src/db/subjects.js';
import { readUsageSince } from '../../src/db/usage.js';
import type { DirtyUsageSource } from '../../src/core/usage-ledger.js';
import type { Limiter } from '../../src/limiter/limiter.js';
import { MemoryLimiter } from '../../src/limiter/memory-limiter.js';
import { RedisLimiter } from '../../src/limiter/redis-limiter.js';
import { closeRedisClient, type RedisClient } from '../../src/redis/client.js';
import { creditBalanceKey, idempotencyRecordKey } from '../../src/redis/keys.js';
import { DatabaseUsageLedger } from '../../src/usage/database-ledger.js';
import { LedgerFlusher } from '../../src/usage/ledger-flusher.js';
import { delayBy, PASS, startFaultProxy } from '../support/fault-proxy.js';
import { redisCli, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { connectTestRedis } from '../support/redis-test-data.js';
import { eventually } from '../support/within.js';

/**
 * Credits and the usage ledger: what was spent of each grant is recorded
 * (`g:<id>`, lifetime) with the month's spend (`c:<metric>:month`), and a
 * store that lost everything (FLUSHALL, a restart of the memory store)
 * restores the balances from the grants and the ledger: no credit is
 * created or forgotten.
 */

const MID_MONTH = Date.UTC(2026, 5, 15, 10, 30, 0);
const MONTH_START = Date.UTC(2026, 5, 1);
const policies: Policy[] = [windowPolicy('hour', 1_000), coveredByCredits(quotaPolicy('search', 'month', 2), 'search')];

async function openLedger(subject: string) {
  const db = await PgliteDatabase.open({ dataDir: IN_MEMORY });
  await migrate(db, loadMigrations());
  // Two grants: 3 units expiring in a day (spent first), 4 never expiring.
  const grantIds = await db.transaction(async (tx) => {
    await createSubject(tx, { id: subject, plan: 'paid' });
    const soon = await insertCreditGrant(tx, { subjectId: subject, metric: 'search', amount: 3, grantedAt: new Date(MID_MONTH - 1000), expiresAt: new Date(MID_MONTH + 86_400_000) });
    const never = await insertCreditGrant(tx, { subjectId: subject, metric: 'search', amount: 4, grantedAt: new Date(MID_MONTH - 1000) });
    return [soon.id, never.id] as const;
  });
  return { db, ledger: new DatabaseUsageLedger(db), grantIds };
}

async function ledgerTotals(db: PgliteDatabase, subject: string): Promise<Record<string, number>> {
  const rows = await readUsageSince(db, subject, new Date(MONTH_START));
  return Object.fromEntries(rows.map((row) => [`${row.counterId}@${row.periodStart.getTime()}`, row.count]));
}

async function admittedOf(limiter: Limiter, subject: string, count: number): Promise<number> {
  let admitted = 0;
  for (let i = 0; i < count; i++) if ((await limiter.consume({ subject, policies, cost: 1 })).allowed) admitted++;
  return admitted;
}

/**
 * A refund after a flush gives the credits back in the ledger too: 2
 * admitted by the quota, 2 by credits from the expiring grant, the last one
 * refunded after the flush that copied it.
 */
async function refundAfterFlush(subject: string, limiterOn: (ledger: DatabaseUsageLedger, clock: ManualClock) => Limiter & DirtyUsageSource): Promise<void> {
  const { db, ledger, grantIds } = await openLedger(subject);
  const clock = new ManualClock(MID_MONTH);
  const limiter = limiterOn(ledger, clock);
  const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
  expect(await admittedOf(limiter, subject, 3)).toBe(3);
  const paid = await limiter.consume({ subject, policies, cost: 1 });
  if (!paid.allowed || paid.receipt?.credits === undefined) throw new Error('expected a credit-paid admission');
  await flusher.flush();
  expect((await ledgerTotals(db, subject))[`c:search:month@${MONTH_START}`]).toBe(2);
  // Refunded after the flush: the grant and the month's spend go down in the ledger too.
  await limiter.refund(paid.receipt);
  expect(await limiter.creditBalance(subject, 'search')).toBe(6);
  await flusher.flush();
  expect(await ledgerTotals(db, subject)).toMatchObject({
    [`g:${grantIds[0]}@0`]: 1,
    [`c:search:month@${MONTH_START}`]: 1,
    [`w:hour@${Date.UTC(2026, 5, 15, 10)}`]: 3,
  });
  await db.close();
}

describe('credits and the ledger on a throwaway redis-server', () => {
  let server: RedisServer;
  let client: RedisClient;
  beforeAll(async () => {
    server = await startRedisServer();
    client = await connectTestRedis(server.url, { command_timeout_ms: 2_000 });
  });
  afterAll(async () => {
    await closeRedisClient(client);
    await server.stop();
  });

  it('records each grant\'s spent units and the month\'s spend, and restores the balance after FLUSHALL', async () => {
    const subject = 'prepaid-customer';
    const { db, ledger, grantIds } = await openLedger(subject);
    const clock = new ManualClock(MID_MONTH);
    const limiter = new RedisLimiter({ client, keyPrefix: 'qg', ledger, nowForTesting: () => clock.now() });
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    // The hydration read both grants: 2 by the quota, then 4 by credits (3 of the expiring grant, 1 of the other).
    expect(await admittedOf(limiter, subject, 6)).toBe(6);
    expect(await limiter.creditBalance(subject, 'search')).toBe(3);
    await flusher.flush();
    expect(await ledgerTotals(db, subject)).toEqual({
      [`g:${grantIds[0]}@0`]: 3,
      [`g:${grantIds[1]}@0`]: 1,
      [`c:search:month@${MONTH_START}`]: 4,
      [`q:search:month@${MONTH_START}`]: 2,
      [`w:hour@${Date.UTC(2026, 5, 15, 10)}`]: 6,
    });
    await client.flushall();
    // Restored: the quota stays spent, the balance is 3, and exactly 3 more are admitted.
    expect(await admittedOf(limiter, subject, 5)).toBe(3);
    expect(await limiter.creditBalance(subject, 'search')).toBe(0);
    await flusher.flush();
    expect((await ledgerTotals(db, subject))[`g:${grantIds[1]}@0`]).toBe(4);
    expect((await ledgerTotals(db, subject))[`c:search:month@${MONTH_START}`]).toBe(7);
    await client.flushall();
    expect(await admittedOf(limiter, subject, 2)).toBe(0);
    await db.close();
  });

  it('gives the credits of a refunded request back in the ledger, after a flush', () =>
    refundAfterFlush('refunded-prepaid', (ledger, clock) => new RedisLimiter({ client, keyPrefix: 'qg3', ledger, nowForTesting: () => clock.now() })));

  it('gives back the credits a call whose reply was lost spent, to the grants they came from, in the balance and the ledger', async () => {
    const subject = 'lost-prepaid';
    const { db, ledger, grantIds } = await openLedger(subject);
    const clock = new ManualClock(MID_MONTH);
    // Through a fault proxy, with a 100 ms deadline: a call delayed 80 ms each way runs on Redis, and its reply is lost.
    const faults = await startFaultProxy(server.port);
    const impatient = await connectTestRedis(faults.url, { command_timeout_ms: 100 });
    const outcomes: string[] = [];
    const limiter = new RedisLimiter({ client: impatient, keyPrefix: 'qg4', ledger, commandTimeoutMs: 100, nowForTesting: () => clock.now(), onLostCharge: (outcome) => outcomes.push(outcome) });
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const loseReplyOf = async (call: () => Promise<unknown>) => {
      faults.setMode(delayBy(80));
      await expect(call()).rejects.toThrow(/timed out/);
      expect(limiter.lostChargesPending).toBe(1);
      const acceptedBefore = faults.accepted;
      faults.setMode(PASS);
      await eventually(() => faults.accepted > acceptedBefore && impatient.status === 'ready', 5_000, 'a new connection');
    };
    try {
      // 2 by the quota, then 1 by credits from the expiring grant.
      expect(await admittedOf(limiter, subject, 3)).toBe(3);
      await flusher.flush();
      // A credit-paid call, then an idempotent one, each run and lost: each spent a unit of the expiring grant.
      await loseReplyOf(() => limiter.consume({ subject, policies, cost: 1 }));
      expect(await redisCli(server.port, 'HGET', creditBalanceKey('qg4', subject, 'search'), `u:${grantIds[0]}`)).toBe('2');
      await flusher.flush();
      expect(outcomes).toEqual(['refunded']);
      await loseReplyOf(() => limiter.consumeIdempotent({ subject, policies, cost: 1 }, { key: 'order-1', fingerprint: 'f1' }));
      expect(await redisCli(server.port, 'HGET', creditBalanceKey('qg4', subject, 'search'), `u:${grantIds[0]}`)).toBe('2');
      await flusher.flush();
      expect(outcomes).toEqual(['refunded', 'refunded']);
      // Both undone: 1 credit spent, the idempotency key released, and the ledger says the same.
      expect(await limiter.creditBalance(subject, 'search')).toBe(6);
      expect(await redisCli(server.port, 'EXISTS', idempotencyRecordKey('qg4', subject, 'order-1'))).toBe('0');
      expect(await ledgerTotals(db, subject)).toEqual({
        [`g:${grantIds[0]}@0`]: 1,
        [`c:search:month@${MONTH_START}`]: 1,
        [`q:search:month@${MONTH_START}`]: 2,
        [`w:hour@${Date.UTC(2026, 5, 15, 10)}`]: 3,
      });
    } finally {
      await limiter.close();
      await closeRedisClient(impatient);
      await faults.close();
      await db.close();
    }
  });

  it('adds a grant to a subject already hydrated, counted once by a later hydration', async () => {
    const subject = 'topped-up';
    const { db, ledger } = await openLedger(subject);
    const clock = new ManualClock(MID_MONTH);
    const limiter = new RedisLimiter({ client, keyPrefix: 'qg2', ledger, nowForTesting: () => clock.now() });
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    expect(await admittedOf(limiter, subject, 9)).toBe(9);
    expect(await admittedOf(limiter, subject, 1)).toBe(0);
    const extra = await db.transaction((tx) => insertCreditGrant(tx, { subjectId: subject, metric: 'search', amount: 2, grantedAt: new Date(MID_MONTH) }));
    await limiter.addCredits(subject, [{ id: extra.id, metric: 'search', amount: 2, expiresAtMs: null, used: 0 }]);
    expect(await admittedOf(limiter, subject, 1)).toBe(1);
    await flusher.flush();
    await client.flushall();
    expect(await admittedOf(limiter, subject, 3)).toBe(1);
    await db.close();
  });
});

describe('credits and the ledger on the memory store', () => {
  it('gives the credits of a refunded request back in the ledger, after a flush', () =>
    refundAfterFlush('memory-refunded', (ledger, clock) => new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger })));

  it('restores the balance into a new instance on the same ledger', async () => {
    const subject = 'memory-prepaid';
    const { db, ledger } = await openLedger(subject);
    const clock = new ManualClock(MID_MONTH);
    const first = new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger });
    const flusher = new LedgerFlusher({ source: first, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    expect(await admittedOf(first, subject, 6)).toBe(6);
    await flusher.stop();
    await first.close();
    const restarted = new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger });
    expect(await admittedOf(restarted, subject, 5)).toBe(3);
    expect(await restarted.creditBalance(subject, 'search')).toBe(0);
    await restarted.close();
    await db.close();
  });
});
