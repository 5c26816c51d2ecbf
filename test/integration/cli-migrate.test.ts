import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runMigrate } from '../../src/cli/migrate.js';
import { listAppliedMigrations, loadMigrations } from '../../src/db/migrations.js';
import { PgliteDatabase } from '../../src/db/pglite-database.js';
import { connectTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { within } from '../support/within.js';

const run = promisify(execFile);
const SHIPPED = loadMigrations();
const scratch = mkdtempSync(join(tmpdir(), 'quotagate-cli-migrate-'));
const databases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(databases.map((database) => database.drop()));
  rmSync(scratch, { recursive: true, force: true });
});

/** A valid gateway.yaml with the given `postgres:` section, written to the scratch directory. */
function configFile(name: string, postgres: string): string {
  const path = join(scratch, name);
  writeFileSync(
    path,
    `postgres:\n${postgres}\nupstreams:\n  demo:\n    url: http://127.0.0.1:3000\nroutes:\n  - name: api\n    path_prefix: /api\n    upstream: demo\nplans:\n  free: {}\n`,
  );
  return path;
}

async function migrateCli(argv: readonly string[], env: Record<string, string> = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await within(
    runMigrate(argv, { env, stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line), readStdin: async () => '' }),
    20_000,
    'quotagate migrate',
  );
  return { code, stdout, stderr };
}

const appliedLines = SHIPPED.map((m) => `applied ${m.fileName}`);
const upToDate = (target: string, now: number) =>
  `${target}: up to date (${SHIPPED.length} migration${SHIPPED.length === 1 ? '' : 's'}, ${now} applied now)`;

describe('quotagate migrate', () => {
  it('migrates a PostgreSQL server, printing what it applied, then finds nothing to do; the password is never printed', async () => {
    const database = await createTestDatabase();
    databases.push(database);
    const url = new URL(database.url);
    url.password = 'not-printed';
    const config = configFile('server.yaml', `  url: \${DATABASE_URL}`);
    const env = { DATABASE_URL: url.toString() };
    const target = `postgres 127.0.0.1:5432/${database.name}`;
    expect(await migrateCli(['--config', config], env)).toEqual({ code: 0, stdout: [...appliedLines, upToDate(target, SHIPPED.length)], stderr: [] });
    expect(await migrateCli(['--config', config], env)).toEqual({ code: 0, stdout: [upToDate(target, 0)], stderr: [] });
    const db = connectTestDatabase(database.url);
    try {
      expect((await listAppliedMigrations(db)).map((m) => m.version)).toEqual(SHIPPED.map((m) => m.version));
    } finally {
      await db.close();
    }
  });

  it('migrates the embedded database in data_dir, taking the file from $QUOTAGATE_CONFIG', async () => {
    const dataDir = join(scratch, 'data');
    const config = configFile('embedded.yaml', `  data_dir: ${dataDir}`);
    expect(await migrateCli([], { QUOTAGATE_CONFIG: config })).toEqual({
      code: 0,
      stdout: [...appliedLines, upToDate(`embedded ${dataDir}`, SHIPPED.length)],
      stderr: [],
    });
    const db = await PgliteDatabase.open({ dataDir });
    try {
      expect((await listAppliedMigrations(db)).map((m) => m.version)).toEqual(SHIPPED.map((m) => m.version));
    } finally {
      await db.close();
    }
  });

  it('exits 1 with the reason when the server cannot be reached', async () => {
    const config = configFile('unreachable.yaml', '  url: postgres://postgres@127.0.0.1:1/none\n  connect_timeout_ms: 1000');
    const result = await migrateCli(['--config', config]);
    expect(result.code).toBe(1);
    expect(result.stdout).toEqual([]);
    expect(result.stderr).toEqual([expect.stringMatching(/^migrate: postgres 127\.0\.0\.1:1\/none: .*ECONNREFUSED/)]);
  });

  it('exits 1 with every config problem', async () => {
    const config = configFile('bad.yaml', '  replica_url: postgres://replica/db');
    expect(await migrateCli(['--config', config])).toEqual({
      code: 1,
      stdout: [],
      stderr: [`${config}: postgres.replica_url: needs postgres.url (the embedded engine has no replica)`],
    });
  });

  it('exits 2 with the usage on other arguments', async () => {
    for (const argv of [['--config'], ['extra'], ['--config', 'a.yaml', 'b']]) {
      expect(await migrateCli(argv)).toMatchObject({ code: 2, stderr: [expect.stringMatching(/^usage: quotagate migrate/)] });
    }
  });

  it('runs as `quotagate migrate` from the command line', async () => {
    const dataDir = join(scratch, 'cli-data');
    const config = configFile('cli.yaml', `  data_dir: ${dataDir}`);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/bin.ts', 'migrate', '--config', config], {
      cwd: join(import.meta.dirname, '../..'),
      timeout: 20_000,
    });
    expect(stdout.trim().split('\n')).toEqual([...appliedLines, upToDate(`embedded ${dataDir}`, SHIPPED.length)]);
  });
});
