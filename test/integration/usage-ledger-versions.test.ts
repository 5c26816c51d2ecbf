import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminContext } from '../../src/admin/admin-context.js';
import { policiesOfSubject } from '../../src/admin/plan-checks.js';
import { resetUsageAudited } from '../../src/admin/usage.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { Admission } from '../../src/core/decision.js';
import type { Policy } from '../../src/core/policy.js';
import type { DirtyUsageSource } from '../../src/core/usage-ledger.js';
import type { UsageStore } from '../../src/core/usage-store.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { IN_MEMORY, PgliteDatabase } from '../../src/db/pglite-database.js';
import { createSubject } from '../../src/db/subjects.js';
import { readUsageSince } from '../../src/db/usage.js';
import type { Limiter } from '../../src/limiter/limiter.js';
import { MemoryLimiter } from '../../src/limiter/memory-limiter.js';
import { RedisLimiter } from '../../src/limiter/redis-limiter.js';
import { closeRedisClient, type RedisClient } from '../../src/redis/client.js';
import { hydrationMarkerKey, usageMarkerKey } from '../../src/redis/keys.js';
import { DatabaseUsageLedger } from '../../src/usage/database-ledger.js';
import { LedgerFlusher } from '../../src/usage/ledger-flusher.js';
import { ManualClock } from '../support/manual-clock.js';
import { redisCli, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { commandCalls, connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';

/**
 * Versioned ledger writes (DirtyUsage.version): the ledger follows the store
 * down as well as up — a refund after a flush, an admin reset with unflushed
 * charges — and a stale flush never raises it back; a store that lost its
 * counters is restored to the lowered counts.
 */

const MID_MONTH = Date.UTC(2026, 5, 15, 10, 30, 0);
const MONTH_START = new Date(Date.UTC(2026, 5, 1));
const PERIOD_STARTS = new Set([Date.UTC(2026, 5, 15, 10), Date.UTC(2026, 5, 15), MONTH_START.getTime()]);
const plans: GatewayConfig['plans'] = {
  pro: { limits: { hour: 1_000, day: 5_000 }, quotas: { search: { month: 60 } }, quota_status: 429, public: true, mode: 'enforce', thresholds: [80, 95, 100], limit_by: 'subject' },
};
const policies: readonly Policy[] = policiesOfSubject(plans, 'pro', null)!;

const connect = (url: string) => connectTestRedis(url, { command_timeout_ms: 2_000 });

type Store = Limiter & DirtyUsageSource;

async function openLedger() {
  const db = await PgliteDatabase.open({ dataDir: IN_MEMORY });
  await migrate(db, loadMigrations());
  return { db, ledger: new DatabaseUsageLedger(db) };
}

/** The ledger of `subject` as `counterId → count` for the periods of MID_MONTH. */
async function ledgerOf(db: PgliteDatabase, subject: string): Promise<Record<string, number>> {
  const rows = await readUsageSince(db, subject, MONTH_START);
  return Object.fromEntries(rows.filter((r) => PERIOD_STARTS.has(r.periodStart.getTime())).map((r) => [r.counterId, r.count]));
}

/** What the store holds for `subject`, as `counterId → used`. */
async function storeOf(store: Limiter, subject: string): Promise<Record<string, number>> {
  const states = await store.peek({ subject, policies });
  return Object.fromEntries(states.map((state, i) => [policies[i]!.counterId, state.limit - state.remaining]));
}

const counts = (n: number) => ({ 'w:hour': n, 'w:day': n, 'q:search:month': n });

async function admit(store: Store, subject: string, cost: number): Promise<Admission> {
  const decision = await store.consume({ subject, policies, cost });
  if (!decision.allowed) throw new Error(`denied: ${JSON.stringify(decision)}`);
  return decision;
}

/** The same scenarios against each store; `make` gives a store on the ledger and the clock. */
function versionedLedgerScenarios(make: (ledger: DatabaseUsageLedger, clock: ManualClock) => Store) {
  const fresh = (label: string) => `${label}-${Math.random().toString(36).slice(2)}`;

  it('a refund after a flush lowers the ledger (charge 3 + 2, flush, refund the 2, flush: 3)', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const store = make(ledger, clock);
    const flusher = new LedgerFlusher({ source: store, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const subject = fresh('refunded');
    await admit(store, subject, 3);
    const admission = await admit(store, subject, 2);
    await flusher.flush();
    expect(await ledgerOf(db, subject)).toEqual(counts(5));
    await store.refund(admission.receipt!);
    await flusher.flush({ includeLeftovers: true });
    expect(await ledgerOf(db, subject)).toEqual(counts(3));
    expect(await storeOf(store, subject)).toEqual(counts(3));
    await store.close();
    await db.close();
  });

  it('a stale flush (read before the refund, written after) does not raise the ledger back, nor clear the mark', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const store = make(ledger, clock);
    const subject = fresh('stale');
    await admit(store, subject, 3);
    const admission = await admit(store, subject, 2);
    const stale = await store.readDirty(subject);
    expect(stale?.entries.map((entry) => entry.count)).toEqual([5, 5, 5]);
    await store.refund(admission.receipt!);
    const fresher = await store.readDirty(subject);
    expect(fresher!.version).toBeGreaterThan(stale!.version);
    await ledger.writeUsage([fresher!]);
    expect(await ledgerOf(db, subject)).toEqual(counts(3));
    await ledger.writeUsage([stale!]);
    expect(await ledgerOf(db, subject)).toEqual(counts(3));
    expect(await store.clearDirty(stale!)).toBe(false);
    expect(await store.clearDirty(fresher!)).toBe(true);
    await store.close();
    await db.close();
  });

  it('an admin reset with unflushed charges reaches the ledger, and a charge after it is counted', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const store = make(ledger, clock);
    const flusher = new LedgerFlusher({ source: store, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const subject = fresh('reset');
    await db.transaction((tx) => createSubject(tx, { id: subject, plan: 'pro' }));
    await admit(store, subject, 4);
    await flusher.flush();
    await admit(store, subject, 3);
    // A flush that read the marker before the reset and writes after it.
    const stale = await store.readDirty(subject);
    expect(stale?.entries.map((entry) => entry.count)).toEqual([7, 7, 7]);
    const usage: UsageStore = {
      peek: (id, list) => store.peek({ subject: id, policies: list }),
      reset: (id, list) => store.reset(id, list),
      forget: () => {},
      addCredits: (id, grants) => store.addCredits(id, grants),
      creditBalance: (id, metric) => store.creditBalance(id, metric),
    };
    const ctx: AdminContext = { db, plans, keyPrefix: 'qg', clock, actor: 'test', subjectChanged: async () => {}, usage };
    await resetUsageAudited(ctx, subject);
    expect(await ledgerOf(db, subject)).toEqual(counts(0));
    await ledger.writeUsage([stale!]);
    expect(await ledgerOf(db, subject)).toEqual(counts(0));
    await flusher.flush({ includeLeftovers: true });
    expect(await ledgerOf(db, subject)).toEqual(counts(0));
    expect(await storeOf(store, subject)).toEqual(counts(0));
    await admit(store, subject, 2);
    await flusher.flush();
    expect(await ledgerOf(db, subject)).toEqual(counts(2));
    expect(await storeOf(store, subject)).toEqual(counts(2));
    await store.close();
    await db.close();
  });
}

describe('versioned usage ledger on Redis (127.0.0.1:6379) and PGlite', () => {
  const keyPrefix = testKeyPrefix('versions');
  let client: RedisClient;
  beforeAll(async () => {
    client = await connect('redis://127.0.0.1:6379');
  });
  afterAll(async () => {
    await deleteKeysWithPrefix(client, keyPrefix);
    await closeRedisClient(client);
  });

  versionedLedgerScenarios((ledger, clock) => new RedisLimiter({ client, keyPrefix, ledger, nowForTesting: () => clock.now() }));

  it('a refund after the flusher cleared the marker re-creates it and lists it in the usage index', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const limiter = new RedisLimiter({ client, keyPrefix, ledger, nowForTesting: () => clock.now() });
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const subject = `indexed-${Math.random().toString(36).slice(2)}`;
    const admission = await admit(limiter, subject, 5);
    await flusher.flush();
    expect(await client.exists(usageMarkerKey(keyPrefix, subject))).toBe(0);
    await limiter.refund(admission.receipt!);
    expect(await client.pttl(usageMarkerKey(keyPrefix, subject))).toBeGreaterThan(0);
    // Another instance, which never charged the subject, finds it through the index (no sweep).
    const other = new RedisLimiter({ client, keyPrefix, ledger, nowForTesting: () => clock.now() });
    expect(await other.dirtySubjects(false)).toContain(subject);
    await db.close();
  });
});

describe('versioned usage ledger after Redis comes back empty (throwaway redis-server)', () => {
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

  it('a charge on the steady path runs INCR (the hydration check and version), no EXISTS, and one HSET on the usage marker', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const limiter = new RedisLimiter({ client, keyPrefix: 'qg', ledger, nowForTesting: () => clock.now() });
    const subject = 'steady';
    await admit(limiter, subject, 1);
    await admit(limiter, subject, 1);
    const before = commandCalls(await redisCli(server.port, 'INFO', 'commandstats'));
    for (let i = 0; i < 10; i++) await admit(limiter, subject, 1);
    const after = commandCalls(await redisCli(server.port, 'INFO', 'commandstats'));
    const delta = (command: string) => (after[command] ?? 0) - (before[command] ?? 0);
    // Per charge: INCR, 3 HMGET + 3 HINCRBY (the counters), HSET marker, HSET charge record; nothing else.
    expect({ incr: delta('incr'), exists: delta('exists'), hmget: delta('hmget'), hincrby: delta('hincrby'), hset: delta('hset') }).toEqual({
      incr: 10,
      exists: 0,
      hmget: 30,
      hincrby: 30,
      hset: 20,
    });
    expect(delta('pexpire') + delta('sadd')).toBe(0);
    const marker = await client.hgetall(usageMarkerKey('qg', subject));
    expect(Number(marker._v)).toBe(Number(await client.get(hydrationMarkerKey('qg', subject))));
    await db.close();
  });

  it('FLUSHALL after a refund was flushed: hydration restores the lowered count (3, not 5), and the next charges replace the rows', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const limiter = new RedisLimiter({ client, keyPrefix: 'qg', ledger, nowForTesting: () => clock.now() });
    const flusher = new LedgerFlusher({ source: limiter, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    const subject = 'refunded-then-lost';
    await admit(limiter, subject, 3);
    const admission = await admit(limiter, subject, 2);
    await flusher.flush();
    await limiter.refund(admission.receipt!);
    await flusher.flush();
    expect(await ledgerOf(db, subject)).toEqual(counts(3));
    const before = Math.max(...(await readUsageSince(db, subject, MONTH_START)).map((row) => row.version));
    await client.flushall();
    const after = await admit(limiter, subject, 1);
    expect(after.policies.map((p) => p.limit - p.remaining)).toEqual([4, 4, 4]);
    await flusher.flush();
    expect(await ledgerOf(db, subject)).toEqual(counts(4));
    // Versions went on above the ledger's: the rows were replaced, not kept.
    const rows = await readUsageSince(db, subject, MONTH_START);
    expect(rows.every((row) => row.version > before)).toBe(true);
    // A refund after that, then another loss: restored to 3 again.
    await limiter.refund(after.receipt!);
    await flusher.flush();
    await client.flushall();
    expect(await storeOf(limiter, subject)).toEqual(counts(0));
    const third = await admit(limiter, subject, 1);
    expect(third.policies.map((p) => p.limit - p.remaining)).toEqual([4, 4, 4]);
    await db.close();
  });
});

describe('versioned usage ledger on the memory store', () => {
  versionedLedgerScenarios((ledger, clock) => new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger }));

  it('a restarted instance restores the lowered count and takes versions above the ledger', async () => {
    const { db, ledger } = await openLedger();
    const clock = new ManualClock(MID_MONTH);
    const first = new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger });
    const flusher = new LedgerFlusher({ source: first, sink: ledger, clock, intervalMs: 60_000, leftoverSweepIntervalMs: 60_000 });
    await admit(first, 'm', 3);
    const admission = await admit(first, 'm', 2);
    await flusher.flush();
    await first.refund(admission.receipt!);
    await flusher.stop();
    await first.close();
    expect(await ledgerOf(db, 'm')).toEqual(counts(3));

    const restarted = new MemoryLimiter({ clock, sweepIntervalMs: 0, ledger });
    const next = await admit(restarted, 'm', 1);
    expect(next.policies.map((p) => p.limit - p.remaining)).toEqual([4, 4, 4]);
    await restarted.refund(next.receipt!);
    const dirty = await restarted.readDirty('m');
    const highest = Math.max(...(await readUsageSince(db, 'm', MONTH_START)).map((row) => row.version));
    expect(dirty!.version).toBeGreaterThan(highest);
    await ledger.writeUsage([dirty!]);
    expect(await ledgerOf(db, 'm')).toEqual(counts(3));
    await restarted.close();
    await db.close();
  });
});
