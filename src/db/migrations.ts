import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Database, Queryable, Transaction } from './database.js';

/**
 * Schema migrations: ordered SQL files `NNN_name.sql` in `migrations/`,
 * applied in order, each in its own transaction together with its row in
 * `schema_migrations`. Every transaction first takes one PostgreSQL advisory
 * lock, so instances starting at once apply each migration exactly once (the
 * others wait, then find it recorded). On PGlite, one process, the lock is
 * harmless.
 *
 * A migration is never edited once applied: the checksum of its file is
 * recorded, and a file whose checksum differs is refused. A migration runs in
 * a transaction, so it cannot use statements that refuse one
 * (`CREATE INDEX CONCURRENTLY`).
 */

/** One file of migrations/. */
export interface Migration {
  readonly version: number;
  /** The file name without its version and extension: `initial`. */
  readonly name: string;
  readonly fileName: string;
  readonly sql: string;
  /** Hex SHA-256 of the file, with line endings made `\n`. */
  readonly checksum: string;
}

/** A row of schema_migrations. */
export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  readonly appliedAt: Date;
}

export interface MigrationReport {
  /** The migrations this call applied, in order. */
  readonly applied: readonly Migration[];
  /** Migrations found already applied (by this call's end, every known one is). */
  readonly alreadyApplied: number;
  /**
   * Applied migrations with no file here: a newer release migrated this
   * database. Not an error, so an older instance can still start during a
   * rolling deploy; worth a warning.
   */
  readonly unknown: readonly AppliedMigration[];
}

export interface MigrateOptions {
  /** Longest wait for the migration lock, or for any lock a migration needs, in ms. Default 60 s. */
  readonly lockTimeoutMs?: number;
}

/** A migration file changed after it was applied, or the files do not form a valid sequence. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/** The one advisory lock of migrations: "qgmigr" in ASCII. */
const MIGRATION_LOCK_ID = 0x71676d696772;
const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
const FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;
const SELECT_APPLIED = 'SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version';
const INSERT_APPLIED = 'INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)';

/**
 * The directory holding the migration files: `migrations/` at the repository
 * (or image) root, two levels above this module under src/ (tsx), three
 * under dist/src/ (compiled; the Dockerfile copies migrations/ beside dist/).
 */
export function migrationsDirectory(moduleDir: string = import.meta.dirname): string {
  const candidates = [resolve(moduleDir, '../../migrations'), resolve(moduleDir, '../../../migrations')];
  const found = candidates.find((dir) => existsSync(resolve(dir, '001_initial.sql')));
  if (found === undefined) throw new Error(`migrations/001_initial.sql not found; looked in ${candidates.join(', ')}`);
  return found;
}

/** Reads every `NNN_name.sql` of `dir`, ordered by version; versions must be unique. */
export function loadMigrations(dir: string = migrationsDirectory()): Migration[] {
  const migrations: Migration[] = [];
  for (const fileName of readdirSync(dir).filter((file) => file.endsWith('.sql')).sort()) {
    const match = FILE_PATTERN.exec(fileName);
    if (match === null) throw new MigrationError(`${join(dir, fileName)}: expected a name like 001_initial.sql`);
    const sql = readFileSync(join(dir, fileName), 'utf8').replace(/\r\n/g, '\n');
    migrations.push({
      version: Number(match[1]),
      name: match[2]!,
      fileName,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) {
      throw new MigrationError(`${migrations[i - 1]!.fileName} and ${migrations[i]!.fileName} share version ${migrations[i]!.version}`);
    }
  }
  return migrations;
}

/**
 * Applies the migrations that `db` lacks, in order, one transaction each,
 * under the advisory lock. Rejects with a MigrationError, applying nothing,
 * when an applied migration's file has changed.
 */
export async function migrate(db: Database, migrations: readonly Migration[], options: MigrateOptions = {}): Promise<MigrationReport> {
  const lockTimeoutMs = Math.trunc(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
  const applied: Migration[] = [];
  for (;;) {
    const step = await db.transaction(async (tx) => {
      await lockMigrations(tx, lockTimeoutMs);
      const recorded = await listAppliedMigrations(tx);
      checkChecksums(recorded, migrations);
      const done = new Set(recorded.map((row) => row.version));
      const next = migrations.find((migration) => !done.has(migration.version));
      if (next !== undefined) {
        await tx.execScript(next.sql);
        await tx.query(INSERT_APPLIED, [next.version, next.name, next.checksum]);
      }
      return { next, recorded };
    });
    if (step.next !== undefined) {
      applied.push(step.next);
      continue;
    }
    const known = new Set(migrations.map((migration) => migration.version));
    return {
      applied,
      alreadyApplied: migrations.length - applied.length,
      unknown: step.recorded.filter((row) => !known.has(row.version)),
    };
  }
}

/** The rows of schema_migrations, by version; none when the table does not exist yet. */
export async function listAppliedMigrations(q: Queryable): Promise<AppliedMigration[]> {
  const rows = await q.query<{ version: number; name: string; checksum: string; applied_at: Date }>(SELECT_APPLIED);
  return rows.map((row) => ({ version: row.version, name: row.name, checksum: row.checksum, appliedAt: row.applied_at }));
}

/**
 * Waits (up to lockTimeoutMs) for the migration lock, held until the
 * transaction ends, and makes sure the migrations table exists. A migration
 * may run longer than the configured statement timeout.
 */
async function lockMigrations(tx: Transaction, lockTimeoutMs: number): Promise<void> {
  // SET takes no parameters; both values are integers this module computed.
  await tx.query('SET LOCAL statement_timeout = 0');
  await tx.query(`SET LOCAL lock_timeout = ${lockTimeoutMs}`);
  await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`);
  await tx.query(CREATE_MIGRATIONS_TABLE);
}

function checkChecksums(recorded: readonly AppliedMigration[], migrations: readonly Migration[]): void {
  const byVersion = new Map(migrations.map((migration) => [migration.version, migration]));
  for (const row of recorded) {
    const file = byVersion.get(row.version);
    if (file !== undefined && file.checksum !== row.checksum) {
      throw new MigrationError(
        `migration ${file.fileName} was changed after it was applied (checksum ${row.checksum.slice(0, 12)}… ` +
          `applied on ${row.appliedAt.toISOString()}, ${file.checksum.slice(0, 12)}… now); ` +
          'restore the file and add the change as a new migration',
      );
    }
  }
}
