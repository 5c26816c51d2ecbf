import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { listAppliedMigrations, loadMigrations, type Migration, migrate, MigrationError } from '../../src/db/migrations.js';
import { createSubject, getSubject } from '../../src/db/subjects.js';
import { within } from '../support/within.js';
import { apiKeysContract } from './db-api-keys.contract.js';
import { auditLogContract } from './db-audit-log.contract.js';
import { T0 } from './db-fixtures.js';
import { ledgerContract } from './db-ledger.contract.js';
import { quotaEventsContract } from './db-quota-events.contract.js';
import { subjectsContract } from './db-subjects.contract.js';
import { viewsContract } from './db-views.contract.js';

/** Opens an empty database (no tables); the suite migrates it and closes it. */
export type EmptyDatabaseFactory = () => Promise<Database>;

/** Migrations 001… as shipped, plus extra ones written to a temp directory. */
function migrationsWith(extra: Record<string, string>): Migration[] {
  const dir = mkdtempSync(join(tmpdir(), 'quotagate-migrations-'));
  for (const migration of loadMigrations()) writeFileSync(join(dir, migration.fileName), migration.sql);
  for (const [file, sql] of Object.entries(extra)) writeFileSync(join(dir, file), sql);
  return loadMigrations(dir);
}

/**
 * The repository and migration contract. Every engine runs this suite and
 * must pass it identically: the same SQL, the same values back. The
 * repositories' parts live in db-*.contract.ts; each runs on the migrated
 * database, emptied before every test.
 */
export function databaseContract(name: string, openEmpty: EmptyDatabaseFactory): void {
  describe(`Database contract: ${name}`, () => {
    let db: Database;
    const shipped = loadMigrations();

    beforeAll(async () => {
      db = await openEmpty();
    });
    afterAll(async () => {
      await db?.close();
    });

    describe('migrations', () => {
      it('applies every migration to an empty database and records version, name and checksum', async () => {
        const report = await migrate(db, shipped);
        expect(report.applied.map((m) => m.fileName)).toEqual(shipped.map((m) => m.fileName));
        expect(report.alreadyApplied).toBe(0);
        const recorded = await listAppliedMigrations(db);
        expect(recorded.map(({ version, name, checksum }) => ({ version, name, checksum }))).toEqual(
          shipped.map(({ version, name, checksum }) => ({ version, name, checksum })),
        );
        expect(recorded[0]!.appliedAt).toBeInstanceOf(Date);
      });

      it('applies nothing when the database is up to date', async () => {
        const report = await migrate(db, shipped);
        expect(report).toEqual({ applied: [], alreadyApplied: shipped.length, unknown: [] });
      });

      it('applies a new migration once when two migrate calls race', async () => {
        const withExtra = migrationsWith({ '900_contract_extra.sql': 'CREATE TABLE contract_extra (id integer PRIMARY KEY);\n' });
        const reports = await within(Promise.all([migrate(db, withExtra), migrate(db, withExtra)]), 15_000, 'two migrate calls');
        expect(reports.map((r) => r.applied.map((m) => m.version)).sort()).toEqual([[], [900]]);
        expect((await listAppliedMigrations(db)).map((m) => m.version)).toEqual([...shipped.map((m) => m.version), 900]);
      });

      it('refuses to migrate when an applied migration changed, and applies nothing', async () => {
        const changed = migrationsWith({
          '900_contract_extra.sql': 'CREATE TABLE contract_extra (id bigint PRIMARY KEY);\n',
          '901_contract_more.sql': 'CREATE TABLE contract_more (id integer);\n',
        });
        await expect(migrate(db, changed)).rejects.toThrow(MigrationError);
        await expect(migrate(db, changed)).rejects.toThrow(/^migration 900_contract_extra\.sql was changed after it was applied \(checksum [0-9a-f]{12}… applied on /);
        expect((await listAppliedMigrations(db)).map((m) => m.version)).not.toContain(901);
        await expect(db.query('SELECT 1 FROM contract_more')).rejects.toThrow();
      });

      it('reports applied migrations that have no file, without failing', async () => {
        const report = await migrate(db, shipped);
        expect(report.applied).toEqual([]);
        expect(report.unknown.map((m) => ({ version: m.version, name: m.name }))).toEqual([{ version: 900, name: 'contract_extra' }]);
      });
    });

    describe('queries', () => {
      it('passes and returns values alike: jsonb, text[], timestamptz, int8, null', async () => {
        const rows = await db.query(
          'SELECT $1::jsonb AS doc, $2::text[] AS list, $3::timestamptz AS at, $4::bigint AS big, $5::text AS nothing, count(*) AS n FROM (VALUES (1), (2)) v (x)',
          [{ a: 1, nested: { b: [true, null] } }, ['x', 'y z', ''], T0, 2 ** 40, null],
        );
        expect(rows).toEqual([{ doc: { a: 1, nested: { b: [true, null] } }, list: ['x', 'y z', ''], at: T0, big: 2 ** 40, nothing: null, n: 2 }]);
        expect(Object.getPrototypeOf(rows)).toBe(Array.prototype);
      });

      it('counts every statement, inside transactions too', async () => {
        const before = db.queryCount;
        await db.query('SELECT 1');
        await db.transaction(async (tx) => {
          await tx.query('SELECT 1');
          await tx.query('SELECT 2');
        });
        expect(db.queryCount - before).toBe(3);
      });

      it('commits a transaction that resolves and rolls back one that rejects, rejecting with its error', async () => {
        await db.transaction((tx) => createSubject(tx, { id: 'kept', plan: 'free' }));
        const failure = new Error('changed my mind');
        await expect(
          db.transaction(async (tx) => {
            await createSubject(tx, { id: 'dropped', plan: 'free' });
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(await getSubject(db, 'kept')).toBeDefined();
        expect(await getSubject(db, 'dropped')).toBeUndefined();
      });

      it('refuses the Database itself inside one of its transactions rather than hanging', async () => {
        const attempt = db.transaction(async () => {
          await db.query('SELECT 1');
        });
        await expect(within(attempt, 5_000, 'a query inside a transaction')).rejects.toThrow(/inside its own transaction/);
        const nested = db.transaction(() => db.transaction(async () => undefined));
        await expect(within(nested, 5_000, 'a nested transaction')).rejects.toThrow(/inside its own transaction/);
      });
    });

    describe('repositories', () => {
      beforeEach(async () => {
        await db.query('TRUNCATE subjects, api_keys, usage, credit_grants, audit_log, denials, quota_events, webhook_deliveries RESTART IDENTITY CASCADE');
      });

      subjectsContract(() => db);
      apiKeysContract(() => db);
      ledgerContract(() => db);
      auditLogContract(() => db);
      quotaEventsContract(() => db);
      viewsContract(() => db);
    });
  });
}
