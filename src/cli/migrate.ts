import { describeDatabase, openDatabases } from '../db/connect.js';
import { loadMigrations, migrate } from '../db/migrations.js';
import type { CommandIo } from './io.js';
import { loadConfigForCommand } from './load-config.js';

const USAGE = 'usage: quotagate migrate [--config gateway.yaml]   (default: $QUOTAGATE_CONFIG, else gateway.yaml)';

/**
 * `quotagate migrate [--config file]`: brings the configured database (the
 * `postgres` section: a server, or the embedded engine's data directory) up
 * to date, printing each migration it applies. Safe to run while other
 * instances start: migrations take an advisory lock. Resolves to the exit
 * code: 0 when up to date, 1 when the config or a migration failed, 2 on a
 * usage error.
 */
export async function runMigrate(argv: readonly string[], io: CommandIo): Promise<number> {
  const file = configFileOf(argv, io.env);
  if (file === undefined) {
    io.stderr(USAGE);
    return 2;
  }
  const config = await loadConfigForCommand(file, io);
  if (config === undefined) return 1;
  const target = describeDatabase(config.postgres);
  let databases;
  try {
    databases = await openDatabases(config.postgres, 'quotagate-migrate');
  } catch (error) {
    io.stderr(`migrate: ${target}: ${messageOf(error)}`);
    return 1;
  }
  try {
    const migrations = loadMigrations();
    const report = await migrate(databases.primary, migrations);
    for (const migration of report.applied) io.stdout(`applied ${migration.fileName}`);
    for (const unknown of report.unknown) {
      io.stderr(`warning: migration ${unknown.version} (${unknown.name}) is applied but unknown to this version of quotagate`);
    }
    const total = `${migrations.length} migration${migrations.length === 1 ? '' : 's'}`;
    io.stdout(`${target}: up to date (${total}, ${report.applied.length} applied now)`);
    return 0;
  } catch (error) {
    io.stderr(`migrate: ${target}: ${messageOf(error)}`);
    return 1;
  } finally {
    await databases.close();
  }
}

/** `--config <file>`, else $QUOTAGATE_CONFIG, else gateway.yaml; undefined when argv is not that. */
function configFileOf(argv: readonly string[], env: CommandIo['env']): string | undefined {
  if (argv.length === 0) return env.QUOTAGATE_CONFIG || 'gateway.yaml';
  if (argv.length === 2 && argv[0] === '--config' && argv[1] !== undefined && !argv[1].startsWith('-')) return argv[1];
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
