import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { Database } from '../../src/db/database.js';
import { PostgresDatabase } from '../../src/db/postgres-database.js';
import { within } from './within.js';
import { isProcessAlive } from '../../src/db/process-liveness.js';

/**
 * Throwaway databases on the PostgreSQL server of the test environment
 * (127.0.0.1:5432, trust auth; override with QUOTAGATE_TEST_POSTGRES_URL,
 * a URL of a database to connect to for CREATE DATABASE). Each test file
 * makes its own, so files running in parallel never share tables.
 */
const ADMIN_URL = process.env.QUOTAGATE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NAME_PREFIX = 'qg_test_';
const ADMIN_TIMEOUT_MS = 10_000;

export interface TestDatabase {
  readonly name: string;
  /** URL of the new, empty database. */
  readonly url: string;
  /** Drops the database, cutting any connection still open to it. */
  drop(): Promise<void>;
}

function withAdmin<T>(work: (sql: postgres.Sql) => Promise<T>, what: string): Promise<T> {
  const sql = postgres(ADMIN_URL, { max: 1, connect_timeout: 5, onnotice: () => {} });
  return within(
    work(sql).finally(() => sql.end({ timeout: 1 })),
    ADMIN_TIMEOUT_MS,
    what,
  );
}

/**
 * Creates an empty database named `qg_test_<pid>_<random>`. Databases left by
 * test processes that are gone (a crashed or killed run) are dropped first.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `${NAME_PREFIX}${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdmin(async (sql) => {
    const existing = await sql<{ datname: string }[]>`SELECT datname FROM pg_database WHERE datname LIKE ${`${NAME_PREFIX}%`}`;
    for (const { datname } of existing) {
      const pid = Number(/^qg_test_(\d+)_/.exec(datname)?.[1]);
      if (Number.isInteger(pid) && !isProcessAlive(pid)) await sql.unsafe(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
    await sql.unsafe(`CREATE DATABASE "${name}"`);
  }, `CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).then(() => undefined), `DROP DATABASE ${name}`),
  };
}

/** A PostgresDatabase on `url` with test-sized settings. */
export function connectTestDatabase(url: string, overrides: { statementTimeoutMs?: number; maxConnections?: number } = {}): Database {
  return new PostgresDatabase({
    url,
    maxConnections: overrides.maxConnections ?? 4,
    statementTimeoutMs: overrides.statementTimeoutMs ?? 10_000,
    connectTimeoutMs: 5_000,
    applicationName: 'quotagate-test',
    detectNestedUse: true,
  });
}

