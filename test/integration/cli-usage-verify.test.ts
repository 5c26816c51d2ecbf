import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runUsage } from '../../src/cli/admin-commands.js';
import type { CommandIo } from '../../src/cli/io.js';
import { periodOf } from '../../src/core/calendar.js';
import { systemClock } from '../../src/core/clock.js';
import { windowPolicy } from '../../src/core/policy.js';
import type { Database } from '../../src/db/database.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { readUsageSince, upsertUsage } from '../../src/db/usage.js';
import { RedisLimiter } from '../../src/limiter/redis-limiter.js';
import { closeRedisClient, type RedisClient } from '../../src/redis/client.js';
import { DatabaseUsageLedger } from '../../src/usage/database-ledger.js';
import { connectTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { within } from '../support/within.js';

/** `quotagate usage verify` on PostgreSQL 15 (127.0.0.1:5432) and Redis (127.0.0.1:6379). */

const scratch = mkdtempSync(join(tmpdir(), 'quotagate-usage-verify-'));
const keyPrefix = testKeyPrefix('verify');
const policies = [windowPolicy('hour', 1_000), windowPolicy('day', 5_000)];
let database: TestDatabase;
let db: Database;
let client: RedisClient;

beforeAll(async () => {
  database = await createTestDatabase();
  db = connectTestDatabase(database.url);
  await migrate(db, loadMigrations());
  client = await connectTestRedis('redis://127.0.0.1:6379', { command_timeout_ms: 2_000 });
});
afterAll(async () => {
  await deleteKeysWithPrefix(client, keyPrefix);
  await closeRedisClient(client);
  await db.close();
  await database.drop();
  rmSync(scratch, { recursive: true, force: true });
});

function configFile(store: string): string {
  const path = join(scratch, `gateway-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    path,
    `listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
postgres:
  url: "${database.url}"
${store}
upstreams:
  app:
    url: http://127.0.0.1:9
routes:
  - { name: api, path_prefix: /, upstream: app }
plans:
  pro: { limits: { hour: 1000, day: 5000 } }
`,
  );
  return path;
}

async function cli(argv: readonly string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CommandIo = { env: { USER: 'tester' }, stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line), readStdin: async () => '' };
  const code = await within(runUsage(argv, io), 30_000, `quotagate usage ${argv.join(' ')}`);
  return { code, stdout, stderr };
}

describe('quotagate usage verify', () => {
  it('flushes first and exits 0 when the ledger equals the store; exits 1 with one line per drift', async () => {
    const config = configFile(`store:\n  type: redis\n  redis: { url: "redis://127.0.0.1:6379", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }`);
    // A gateway's charges, not flushed yet (the limiter is the gateway's; no flusher runs).
    const gateway = new RedisLimiter({ client, keyPrefix, ledger: new DatabaseUsageLedger(db) });
    const subjects = ['alpha', 'beta'].map((name) => `${name}-${Math.random().toString(36).slice(2)}`);
    for (const subject of subjects) expect((await gateway.consume({ subject, policies, cost: 3 })).allowed).toBe(true);
    expect((await gateway.consume({ subject: subjects[1]!, policies, cost: 2 })).allowed).toBe(true);

    const inSync = await cli(['verify', '--config', config]);
    expect(inSync.stderr).toEqual([]);
    expect(inSync.code).toBe(0);
    expect(inSync.stdout).toEqual(['in sync: 4 counters of 2 subjects compared']);
    const flushed = await readUsageSince(db, subjects[1]!, new Date(0));
    expect(flushed.map((row) => [row.counterId, row.count])).toEqual([
      ['w:day', 5],
      ['w:hour', 5],
    ]);

    // Drift: a ledger row written by hand, at a version above the store's.
    const hourStart = periodOf('hour', systemClock.now()).startMs;
    await upsertUsage(db, [{ subjectId: subjects[0]!, counterId: 'w:hour', periodStart: new Date(hourStart), count: 9, version: 1_000_000 }]);
    const drifted = await cli(['verify', '--config', config]);
    expect(drifted.code).toBe(1);
    expect(drifted.stdout).toEqual([
      `${subjects[0]} w:hour ${new Date(hourStart).toISOString()} ledger=9 store=3`,
      '1 drift: 4 counters of 2 subjects compared',
    ]);
    const one = await cli(['verify', '--subject', subjects[1]!, '--config', config]);
    expect(one).toMatchObject({ code: 0, stdout: ['in sync: 2 counters of 1 subject compared'] });
    await gateway.close();
  });

  it('refuses the memory store, and a malformed command line', async () => {
    const config = configFile('store: { type: memory }');
    expect(await cli(['verify', '--config', config])).toMatchObject({
      code: 1,
      stderr: ['usage verify: needs the Redis store (store.type: redis); the memory store lives inside the gateway process'],
    });
    expect((await cli(['verify', 'extra'])).code).toBe(2);
    expect((await cli(['verify', '--subject'])).code).toBe(2);
  });
});
