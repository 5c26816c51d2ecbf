import type { PostgresConfig } from '../config/schema.js';
import type { Database } from './database.js';
import { EmbeddedDatabase } from './embedded-database.js';
import { PostgresDatabase } from './postgres-database.js';

/** The databases of one gateway: the primary, and where key lookups go. */
export interface DatabaseConnections {
  /** Every write, and every read but key lookups. */
  readonly primary: Database;
  /** findApiKeyByHash: the replica when `replica_url` is set, else the primary itself. */
  readonly keyLookups: Database;
  /**
   * With `replica_url`: one more connection to the replica, for the lag
   * checks (ReplicaMonitor), so they never wait behind lookups nor count as
   * them in `keyLookups.queryCount`. Undefined without a replica.
   */
  readonly replicaChecks: Database | undefined;
  /** Closes them all (once each). */
  close(): Promise<void>;
}

/**
 * Opens the configured engine: a server pool per URL (connections open on
 * first use, so this does not wait for the server), or the embedded engine in
 * `data_dir` (PGlite, in a child process, opened here; it refuses a
 * directory another process holds).
 * Migrations are not run here; see migrate().
 */
export async function openDatabases(config: PostgresConfig, applicationName = 'quotagate'): Promise<DatabaseConnections> {
  if (config.url === undefined) {
    // In a process of its own: the engine's memory and work stay out of the gateway's (see EmbeddedDatabase).
    const db = await EmbeddedDatabase.open({ dataDir: config.data_dir });
    return { primary: db, keyLookups: db, replicaChecks: undefined, close: () => db.close() };
  }
  const server = (url: string, maxConnections = config.max_connections) =>
    new PostgresDatabase({
      url,
      maxConnections,
      statementTimeoutMs: config.statement_timeout_ms,
      connectTimeoutMs: config.connect_timeout_ms,
      applicationName,
    });
  const primary = server(config.url);
  const replica = config.replica_url === undefined ? undefined : server(config.replica_url);
  const replicaChecks = config.replica_url === undefined ? undefined : server(config.replica_url, 1);
  return {
    primary,
    keyLookups: replica ?? primary,
    replicaChecks,
    close: async () => {
      await Promise.all([primary.close(), replica?.close(), replicaChecks?.close()]);
    },
  };
}

/**
 * Where the configured data lives, for people and logs, without credentials:
 * `postgres 10.0.0.7:5432/quotagate` or `embedded ./data`.
 */
export function describeDatabase(config: PostgresConfig): string {
  if (config.url === undefined) return `embedded ${config.data_dir}`;
  if (!URL.canParse(config.url)) return 'postgres (unparsable URL)';
  const url = new URL(config.url);
  return `postgres ${url.host || 'localhost'}${url.pathname}`;
}
