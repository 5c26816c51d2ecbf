import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseKeyStore } from '../../src/auth/database-key-store.js';
import { KeyStoreUnavailableError } from '../../src/auth/key-store.js';
import { KeyUsageRecorder } from '../../src/auth/key-usage-recorder.js';
import { ManualClock } from '../support/manual-clock.js';
import { getApiKey, revokeApiKey } from '../../src/db/api-keys.js';
import type { Database } from '../../src/db/database.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { IN_MEMORY, PgliteDatabase } from '../../src/db/pglite-database.js';
import { suspendSubject } from '../../src/db/subjects.js';
import { storeTestKey } from '../support/database-keys.js';
import { connectTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';

/** DatabaseKeyStore and KeyUsageRecorder, the same cases on both engines. */

interface Engine {
  open(): Promise<Database>;
  cleanup(): Promise<void>;
}

const engines: Record<string, () => Engine> = {
  'PGlite (in memory)': () => ({ open: () => PgliteDatabase.open({ dataDir: IN_MEMORY }), cleanup: async () => {} }),
  'PostgreSQL 15': () => {
    let testDb: TestDatabase | undefined;
    return {
      async open() {
        testDb = await createTestDatabase();
        return connectTestDatabase(testDb.url);
      },
      cleanup: async () => testDb?.drop(),
    };
  },
};

const PLANS = new Set(['small', 'free']);

describe.each(Object.keys(engines))('DatabaseKeyStore on %s', (engineName) => {
  const engine = engines[engineName]!();
  let db: Database;
  let store: DatabaseKeyStore;

  beforeAll(async () => {
    db = await engine.open();
    await migrate(db, loadMigrations());
    store = new DatabaseKeyStore({ db, plans: PLANS, fallbackPlan: 'free' });
  }, 60_000);
  afterAll(async () => {
    await db?.close();
    await engine.cleanup();
  });

  it('finds a live key with its subject, plan and overrides, and nothing for an unknown hash', async () => {
    const stored = await storeTestKey(db, { subject: 'acme', plan: 'small', overrides: { limits: { hour: 9 }, junk: 1 } });
    expect(await store.findByHash(stored.hash)).toEqual({
      id: stored.id,
      subject: 'acme',
      plan: 'small',
      stored: true,
      overrides: { limits: { hour: 9 }, quotas: {} },
    });
    expect(await store.findByHash('0'.repeat(64))).toBeUndefined();
  });

  it('returns revoked, expired and suspended keys marked as such', async () => {
    const expiresAt = new Date('2030-01-01T00:00:00Z');
    const revoked = await storeTestKey(db, { subject: 'states' });
    const expiring = await storeTestKey(db, { subject: 'states', expiresAt });
    await db.transaction((tx) => revokeApiKey(tx, revoked.id));
    expect(await store.findByHash(revoked.hash)).toMatchObject({ revoked: true });
    expect(await store.findByHash(expiring.hash)).toMatchObject({ expiresAtMs: expiresAt.getTime() });
    expect((await store.findByHash(expiring.hash))?.suspended).toBeUndefined();
    await db.transaction((tx) => suspendSubject(tx, 'states'));
    expect(await store.findByHash(expiring.hash)).toMatchObject({ suspended: true });
  });

  it('gives a plan gateway.yaml no longer defines the fallback plan, or refuses as unavailable without one', async () => {
    const stored = await storeTestKey(db, { subject: 'legacy', plan: 'gold-2019' });
    const unknown: string[] = [];
    const withFallback = new DatabaseKeyStore({ db, plans: PLANS, fallbackPlan: 'free', onUnknownPlan: (plan) => unknown.push(plan) });
    expect((await withFallback.findByHash(stored.hash))?.plan).toBe('free');
    expect(unknown).toEqual(['gold-2019']);
    const without = new DatabaseKeyStore({ db, plans: PLANS, fallbackPlan: undefined });
    await expect(without.findByHash(stored.hash)).rejects.toBeInstanceOf(KeyStoreUnavailableError);
  });

  it('writes last_used_at of every recorded key in one statement', async () => {
    const one = await storeTestKey(db, { subject: 'users' });
    const two = await storeTestKey(db, { subject: 'users' });
    const clock = new ManualClock(Date.UTC(2026, 5, 15, 12));
    const recorder = new KeyUsageRecorder({ db, clock, flushIntervalMs: 60_000 });
    for (let i = 0; i < 100; i++) recorder.record(i % 2 === 0 ? one.id : two.id);
    const before = db.queryCount;
    await recorder.flush();
    expect(db.queryCount - before).toBe(1);
    await recorder.close();
    expect(db.queryCount - before).toBe(1);
    for (const stored of [one, two]) expect((await getApiKey(db, stored.id))?.lastUsedAt?.getTime()).toBe(clock.now());
  });

  it('writes more ids than a statement takes in several statements, and every key gets its time', async () => {
    const stored = [];
    for (let i = 0; i < 5; i++) stored.push(await storeTestKey(db, { subject: 'users' }));
    const clock = new ManualClock(Date.UTC(2026, 5, 16, 9));
    const recorder = new KeyUsageRecorder({ db, clock, flushIntervalMs: 60_000, maxIdsPerStatement: 2 });
    for (const key of stored) recorder.record(key.id);
    const before = db.queryCount;
    await recorder.close();
    expect(db.queryCount - before).toBe(3);
    for (const key of stored) expect((await getApiKey(db, key.id))?.lastUsedAt?.getTime()).toBe(clock.now());
  });

  it('rejects with KeyStoreUnavailableError once the database is gone', async () => {
    const stored = await storeTestKey(db, { subject: 'last' });
    await db.close();
    await expect(store.findByHash(stored.hash)).rejects.toBeInstanceOf(KeyStoreUnavailableError);
  });
});
