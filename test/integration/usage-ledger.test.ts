import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import { quotaPolicy, windowPolicy } from '../../src/core/policy.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { IN_MEMORY, PgliteDatabase } from '../../src/db/pglite-database.js';
import { readUsageSince, upsertUsage } from '../../src/db/usage.js';
import { MemoryLimiter } from '../../src/limiter/memory-limiter.js';
import { RedisLimiter } from '../../src/limiter/redis-limiter.js';
import { closeRedisClient, type RedisClient } from '../../src/redis/client.js';
import { counterKey, usageMarkerKey } from '../../src/redis/keys.js';
import { DatabaseUsageLedger } from '../../src/usage/database-ledger.js';
import { LedgerFlusher } from '../../src/usage/ledger-flusher.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';

const MID_MONTH = Date.UTC(2026, 5, 15, 10, 30, 0);
const HOUR_START = new Date(Date.UTC(2026, 5, 15, 10));
const DAY_START = new Date(Date.UTC(2026, 5, 15));
const MONTH_START = new Date(Date.UTC(2026, 5, 1));
const policies = [windowPolicy('hour', 1_000), windowPolicy('day', 5_000), quotaPolicy('search', 'month', 60)];

const connect = (url: string) => connectTestRedis(url, { command_timeout_ms: 2_000 });

async function openLedger() {
  const db = await PgliteDatabase.open({ dataDir: IN_MEMORY });
  await migrate(db, loadMigrations());
  return { db, ledger: new DatabaseUsageLedger(db) };
}

/** The ledger of `subject` as `counterId → count` for the periods of MID_MONTH. */
async function ledgerOf(db: PgliteDatabase, subject: string): Promise<Record<string, number>> {
  const rows = await readUsageSince(db, subject, MONTH_START);
  const current = new Set([HOUR_START.getTime(), DAY_START.getTime(), MONTH_START.getTime()]);
  return Object.fromEntries(rows.filter((r) => current.has(r.periodStart.getTime())).map((r) => [r.counterId, r.count]));
}

describe('usage ledger on Redis (127.0.0.1:6379) and PGlite', () => {
  const keyPrefix = testKeyPrefix('ledger');
  let client: RedisClient;
  beforeAll(async () => {
    client = await connect('redis://127.0.0.1:6379');
  });
  afterAll(async () => {
    await deleteKeysWithPrefix(client, keyPrefix);
    await closeRedisClient(client);
  });

  it('after a load run and a flush, the ledger equals what Redis admitted, per subject and window', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const limiter = new RedisLimiter({ client, keyPrefix, ledger, nowForTesting: () => clock.now() });
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const subjects = ['alice', 'bob', 'carol'].map((name) => `${name}-${Math.random().toString(36).slice(2)}`);
    const admitted = new Map(subjects.map((s) => [s, 0]));
    const decisions = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const subject = subjects[i % 3]!;
        const decision = await limiter.consume({ subject, policies, cost: 1 + (i % 2) });
        if (decision.allowed) admitted.set(subject, admitted.get(subject)! + 1 + (i % 2));
        // Flush while the load runs, too: a flush mid-run must not lose or double anything.
        if (i === 150) await flusher.flush();
        return decision;
      }),
    );
    expect(decisions.filter((d) => !d.allowed).length).toBeGreaterThan(0);
    await flusher.flush();
    for (const subject of subjects) {
      const used = admitted.get(subject)!;
      expect(used).toBeLessThanOrEqual(60);
      expect(used).toBeGreaterThanOrEqual(59);
      expect(await ledgerOf(db, subject)).toEqual({ 'w:hour': used, 'w:day': used, 'q:search:month': used });
      expect(await client.exists(usageMarkerKey(keyPrefix, subject))).toBe(0);
    }
    // A duplicated or retried flush changes nothing.
    const before = await db.query('SELECT * FROM usage ORDER BY subject_id, counter_id');
    await upsertUsage(db, [{ subjectId: subjects[0]!, counterId: 'w:hour', periodStart: HOUR_START, count: 1 }]);
    expect((await flusher.flush({ includeLeftovers: true })).entries).toBe(0);
    expect(await db.query('SELECT * FROM usage ORDER BY subject_id, counter_id')).toEqual(before);
    await db.close();
  });

  it('keeps the mark when a charge comes in between the read and the clear', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const limiter = new RedisLimiter({ client, keyPrefix, ledger, nowForTesting: () => clock.now() });
    const subject = `racer-${Math.random().toString(36).slice(2)}`;
    await limiter.consume({ subject, policies, cost: 2 });
    const read = await limiter.readDirty(subject);
    expect(read?.entries).toHaveLength(3);
    await limiter.consume({ subject, policies, cost: 3 });
    expect(await limiter.clearDirty(read!)).toBe(false);
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    await flusher.flush();
    expect(await ledgerOf(db, subject)).toEqual({ 'w:hour': 5, 'w:day': 5, 'q:search:month': 5 });
    await db.close();
  });

  it('records a settled charge: one lowered before a flush, one raised after it (the marker listed again)', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const limiter = new RedisLimiter({ client, keyPrefix, ledger, nowForTesting: () => clock.now() });
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const subject = `settler-${Math.random().toString(36).slice(2)}`;
    const charged = await limiter.consume({ subject, policies, cost: 4 });
    if (!charged.allowed || charged.receipt === undefined) throw new Error('expected a charge');
    await limiter.adjust(charged.receipt, -3);
    await flusher.flush();
    expect(await ledgerOf(db, subject)).toEqual({ 'w:hour': 1, 'w:day': 1, 'q:search:month': 1 });
    expect(await client.exists(usageMarkerKey(keyPrefix, subject))).toBe(0);
    // Flushed and cleared: the raise writes the marker again, with a lifetime, where the flusher looks (no sweep).
    await limiter.adjust(charged.receipt, 6);
    expect(await client.pttl(usageMarkerKey(keyPrefix, subject))).toBeGreaterThan(0);
    await flusher.flush();
    expect(await ledgerOf(db, subject)).toEqual({ 'w:hour': 7, 'w:day': 7, 'q:search:month': 7 });
    await db.close();
  });

  it('flushes a leftover mark of an instance that died, found by a sweep', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const dead = new RedisLimiter({ client, keyPrefix, ledger, nowForTesting: () => clock.now() });
    const subject = `orphan-{${Math.random().toString(36).slice(2)}}%`;
    await dead.consume({ subject, policies, cost: 4 });
    // A new instance never charged the subject; only the sweep finds it.
    const survivor = new RedisLimiter({ client, keyPrefix, ledger, nowForTesting: () => clock.now() });
    const flusher = new LedgerFlusher({ source: survivor, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    await flusher.flush();
    expect(await ledgerOf(db, subject)).toEqual({ 'w:hour': 4, 'w:day': 4, 'q:search:month': 4 });
    await db.close();
  });
});

describe('rehydration after Redis comes back empty (throwaway redis-server)', () => {
  let server: RedisServer;
  let client: RedisClient;
  beforeAll(async () => {
    server = await startRedisServer();
    client = await connect(server.url);
  });
  afterAll(async () => {
    await closeRedisClient(client);
    await server.stop();
  });

  it('FLUSHALL and more traffic never admit past the month limit counted in the ledger', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const limiter = new RedisLimiter({ client, keyPrefix: 'qg', ledger, nowForTesting: () => clock.now() });
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const subject = 'month-customer';
    let admitted = 0;
    for (let i = 0; i < 40; i++) if ((await limiter.consume({ subject, policies, cost: 1 })).allowed) admitted++;
    await flusher.flush();
    await client.flushall();
    const afterFlush = await Promise.all(Array.from({ length: 50 }, () => limiter.consume({ subject, policies, cost: 1 })));
    admitted += afterFlush.filter((d) => d.allowed).length;
    expect(admitted).toBe(60);
    const first = afterFlush.find((d) => d.allowed);
    expect(first?.policies.map((p) => p.remaining)).toEqual([1_000 - 41, 5_000 - 41, 60 - 41]);
    await flusher.flush();
    expect(await ledgerOf(db, subject)).toEqual({ 'w:hour': 60, 'w:day': 60, 'q:search:month': 60 });
    // The next hour starts afresh; the month stays spent.
    clock.set(Date.UTC(2026, 5, 15, 11, 0, 5));
    await client.flushall();
    const nextHour = await limiter.consume({ subject, policies: [windowPolicy('hour', 1_000)], cost: 1 });
    expect(nextHour.policies[0]!.remaining).toBe(999);
    expect((await limiter.consume({ subject, policies, cost: 1 })).allowed).toBe(false);
    await db.close();
  });
});

describe('usage ledger on the memory store', () => {
  it('records a settled charge: one lowered before a flush, one raised after it', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const limiter = new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger });
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const charged = await limiter.consume({ subject: 's', policies, cost: 4 });
    if (!charged.allowed || charged.receipt === undefined) throw new Error('expected a charge');
    await limiter.adjust(charged.receipt, -3);
    await flusher.flush();
    expect(await ledgerOf(db, 's')).toEqual({ 'w:hour': 1, 'w:day': 1, 'q:search:month': 1 });
    expect(await limiter.dirtySubjects()).toEqual([]);
    await limiter.adjust(charged.receipt, 6);
    await flusher.flush();
    expect(await ledgerOf(db, 's')).toEqual({ 'w:hour': 7, 'w:day': 7, 'q:search:month': 7 });
    await limiter.close();
    await db.close();
  });

  it('flushes what was charged and restores it into a new instance on the same ledger', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const first = new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger });
    const flusher = new LedgerFlusher({ source: first, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const decisions = await Promise.all(Array.from({ length: 80 }, () => first.consume({ subject: 'm', policies, cost: 1 })));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(60);
    expect((await flusher.stop()).entries).toBe(3);
    expect(await first.dirtySubjects()).toEqual([]);
    await first.close();
    expect(await ledgerOf(db, 'm')).toEqual({ 'w:hour': 60, 'w:day': 60, 'q:search:month': 60 });

    const restarted = new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger });
    const denied = await restarted.consume({ subject: 'm', policies, cost: 1 });
    expect(denied).toMatchObject({ allowed: false, violated: ['search.month'] });
    const hourOnly = await restarted.consume({ subject: 'm', policies: [windowPolicy('hour', 1_000)], cost: 1 });
    expect(hourOnly.policies[0]!.remaining).toBe(1_000 - 61);
    await restarted.close();
    await db.close();
  });
});

describe('usage ledger: lifetime counts and overage (throwaway redis-server, and the memory store)', () => {
  const LIFETIME_START = new Date(0);
  const billed = [quotaPolicy('search', 'month', 5, 10), quotaPolicy('repos', 'lifetime', 6)];
  let server: RedisServer;
  let client: RedisClient;
  beforeAll(async () => {
    server = await startRedisServer();
    client = await connect(server.url);
  });
  afterAll(async () => {
    await closeRedisClient(client);
    await server.stop();
  });

  /** The subject's ledger rows as `counterId@periodStart → count`. */
  async function rowsOf(db: PgliteDatabase, subject: string): Promise<Record<string, number>> {
    const rows = await readUsageSince(db, subject, MONTH_START);
    return Object.fromEntries(rows.map((r) => [`${r.counterId}@${r.periodStart.toISOString()}`, r.count]));
  }

  it('Redis: records overage apart from included usage, and restores the lifetime count after FLUSHALL and a new month', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const limiter = new RedisLimiter({ client, keyPrefix: 'qg', ledger, nowForTesting: () => clock.now() });
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const subject = `billed-${Math.random().toString(36).slice(2)}`;
    for (let i = 0; i < 3; i++) expect((await limiter.consume({ subject, policies: billed, cost: 2 })).allowed).toBe(true);
    await flusher.flush();
    expect(await rowsOf(db, subject)).toMatchObject({
      [`q:search:month@${MONTH_START.toISOString()}`]: 6,
      [`o:search:month@${MONTH_START.toISOString()}`]: 1,
      [`q:repos:lifetime@${LIFETIME_START.toISOString()}`]: 6,
    });
    // Redis loses everything, and a month passes: the month starts afresh, the lifetime count does not.
    await client.flushall();
    clock.set(Date.UTC(2026, 6, 3, 9, 0, 0));
    const next = await limiter.consume({ subject, policies: billed, cost: 1 });
    expect(next.allowed).toBe(false);
    if (!next.allowed) expect(next.violated).toEqual(['repos.lifetime']);
    expect(next.policies.map((p) => p.remaining)).toEqual([5, 0]);
    // The restored lifetime counter never expires.
    expect(await client.pttl(counterKey('qg', subject, 'q:repos:lifetime'))).toBe(-1);
    await db.close();
  });

  it('memory: a restarted instance restores the lifetime count from the ledger', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const first = new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger });
    const flusher = new LedgerFlusher({ source: first, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    for (let i = 0; i < 3; i++) expect((await first.consume({ subject: 'mem', policies: billed, cost: 2 })).allowed).toBe(true);
    await flusher.stop();
    await first.close();
    expect(await rowsOf(db, 'mem')).toMatchObject({
      [`q:search:month@${MONTH_START.toISOString()}`]: 6,
      [`o:search:month@${MONTH_START.toISOString()}`]: 1,
      [`q:repos:lifetime@${LIFETIME_START.toISOString()}`]: 6,
    });
    clock.set(Date.UTC(2026, 8, 1, 0, 0, 1));
    const restarted = new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger });
    const denied = await restarted.consume({ subject: 'mem', policies: billed, cost: 1 });
    expect(denied).toMatchObject({ allowed: false, violated: ['repos.lifetime'] });
    await restarted.close();
    await db.close();
  });
});
