import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabases } from '../../src/db/connect.js';
import type { Database } from '../../src/db/database.js';
import { isDatabaseUnavailable } from '../../src/db/errors.js';
import { listAppliedMigrations, loadMigrations, migrate } from '../../src/db/migrations.js';
import { PostgresDatabase } from '../../src/db/postgres-database.js';
import { databaseContract } from '../contract/database.contract.js';
import { connectTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { unusedPort } from '../support/ports.js';
import { within } from '../support/within.js';

const dropped: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(dropped.map((database) => database.drop()));
});

async function freshDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase();
  dropped.push(database);
  return database;
}

databaseContract('PostgreSQL 15', async () => connectTestDatabase((await freshDatabase()).url));

describe('migrations on a PostgreSQL server', () => {
  it('leaves exactly one applied set when two instances migrate one fresh database at once', async () => {
    const { url } = await freshDatabase();
    const instances = [connectTestDatabase(url), connectTestDatabase(url)];
    try {
      const reports = await within(
        Promise.all(instances.map((db) => migrate(db, loadMigrations()))),
        15_000,
        'two instances migrating',
      );
      const shipped = loadMigrations().map((m) => m.version);
      // Each migration is its own transaction under the lock, so the two may
      // share the work; each migration is applied by exactly one of them.
      expect(reports.flatMap((r) => r.applied.map((m) => m.version)).sort((a, b) => a - b)).toEqual(shipped);
      expect((await listAppliedMigrations(instances[0]!)).map((m) => m.version)).toEqual(shipped);
      const [{ tables }] = (await instances[0]!.query<{ tables: number }>(
        "SELECT count(*) AS tables FROM pg_tables WHERE schemaname = 'public'",
      )) as [{ tables: number }];
      // subjects, api_keys, usage, credit_grants, audit_log, schema_migrations (001, 002), quota_events and webhook_deliveries (003), denials (004).
      expect(tables).toBe(9);
    } finally {
      await Promise.all(instances.map((db) => db.close()));
    }
  });

  it('makes the second instance wait for the lock rather than fail, up to the lock timeout', async () => {
    const { url } = await freshDatabase();
    const holder = connectTestDatabase(url);
    const waiter = connectTestDatabase(url);
    try {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const lockTaken = new Promise<void>((resolve) => (locked = resolve));
      const holding = holder.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(${0x71676d696772})`);
        locked();
        await held;
      });
      await within(lockTaken, 5_000, 'the lock');
      await expect(within(migrate(waiter, loadMigrations(), { lockTimeoutMs: 200 }), 5_000, 'a timed-out migrate')).rejects.toThrow(
        /lock timeout/,
      );
      const waiting = migrate(waiter, loadMigrations(), { lockTimeoutMs: 10_000 });
      release();
      await within(holding, 5_000, 'the holder to commit');
      expect((await within(waiting, 10_000, 'the waiting migrate')).applied).toHaveLength(loadMigrations().length);
    } finally {
      await Promise.all([holder.close(), waiter.close()]);
    }
  });
});

describe('PostgresDatabase', () => {
  let url: string;
  beforeAll(async () => {
    url = (await freshDatabase()).url;
  });

  it('cancels a statement that runs past statement_timeout_ms, as an unavailability', async () => {
    const db = connectTestDatabase(url, { statementTimeoutMs: 100 });
    try {
      const error = await within(db.query('SELECT pg_sleep(5)'), 5_000, 'a cancelled statement').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: '57014' });
      expect(isDatabaseUnavailable(error)).toBe(true);
      expect(await db.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
  });

  it('lets a migration run past statement_timeout_ms', async () => {
    const db = connectTestDatabase((await freshDatabase()).url, { statementTimeoutMs: 100 });
    try {
      const slow = { version: 1, name: 'slow', fileName: '001_slow.sql', sql: 'SELECT pg_sleep(0.3);', checksum: 'x' };
      expect((await within(migrate(db, [slow]), 5_000, 'a slow migration')).applied).toHaveLength(1);
    } finally {
      await db.close();
    }
  });

  it('rejects promptly, as an unavailability, when the server cannot be reached', async () => {
    const db = new PostgresDatabase({
      url: `postgres://postgres@127.0.0.1:${await unusedPort()}/test`,
      maxConnections: 1,
      statementTimeoutMs: 1_000,
      connectTimeoutMs: 1_000,
    });
    try {
      const error = await within(db.query('SELECT 1'), 5_000, 'a refused connection').catch((e: unknown) => e);
      expect(isDatabaseUnavailable(error)).toBe(true);
    } finally {
      await db.close();
    }
  });

  it('opens the primary, and the replica for key lookups only when one is configured', async () => {
    const config = { url, data_dir: './unused', max_connections: 2, statement_timeout_ms: 1_000, connect_timeout_ms: 1_000, replica_max_lag_ms: 1_000 };
    const single = await openDatabases(config);
    const replicated = await openDatabases({ ...config, replica_url: url });
    try {
      expect(single.keyLookups).toBe(single.primary);
      expect(single.replicaChecks).toBeUndefined();
      expect(replicated.keyLookups).not.toBe(replicated.primary);
      expect(replicated.replicaChecks).toBeDefined();
      expect(replicated.replicaChecks).not.toBe(replicated.keyLookups);
      const lookups: Database = replicated.keyLookups;
      await lookups.query('SELECT 1');
      expect([replicated.primary.queryCount, lookups.queryCount]).toEqual([0, 1]);
    } finally {
      await Promise.all([single.close(), replicated.close()]);
    }
  });
});
