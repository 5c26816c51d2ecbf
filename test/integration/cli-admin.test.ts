import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCredits, runSubjects, runUsage } from '../../src/cli/admin-commands.js';
import type { CommandIo } from '../../src/cli/io.js';
import { runKeys } from '../../src/cli/keys.js';
import { isWellFormedApiKey } from '../../src/core/api-key.js';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway } from '../support/test-gateway.js';
import { within } from '../support/within.js';

const scratch = mkdtempSync(join(tmpdir(), 'quotagate-cli-admin-'));
let upstream: RecordingUpstream;
const databases: TestDatabase[] = [];

beforeAll(async () => {
  upstream = await startRecordingUpstream();
});
afterAll(async () => {
  await upstream?.close();
  await Promise.all(databases.map((database) => database.drop()));
  rmSync(scratch, { recursive: true, force: true });
});

/** A gateway.yaml with the given `postgres:` section, in the scratch directory. */
function configFile(name: string, postgres: string): string {
  const path = join(scratch, name);
  writeFileSync(
    path,
    `listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
postgres:
${postgres}
upstreams:
  app:
    url: ${upstream.origin}
routes:
  - { name: api, path_prefix: /, upstream: app }
plans:
  free: { limits: { hour: 100 }, max_keys: 2 }
  pro: { limits: { hour: 1000 } }
`,
  );
  return path;
}

type Command = (argv: readonly string[], io: CommandIo) => Promise<number>;

async function cli(command: Command, argv: readonly string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CommandIo = { env: { USER: 'tester' }, stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line), readStdin: async () => '' };
  const code = await within(command(argv, io), 30_000, `quotagate ${argv.join(' ')}`);
  return { code, stdout, stderr };
}

function keyOf(stdout: readonly string[]): string {
  return stdout.find((line) => line.startsWith('key:'))!.slice('key:'.length).trim();
}

async function stop(gateway: GatewayProcess): Promise<void> {
  gateway.child.kill('SIGTERM');
  expect(await within(gateway.exited, 20_000, 'the gateway to exit')).toBe(0);
}

describe('quotagate keys / subjects / usage on the embedded database', () => {
  it('creates a key that the gateway started on that data_dir accepts, across a restart; refuses to open the dir while the gateway runs', async () => {
    const config = configFile('embedded.yaml', `  data_dir: ${join(scratch, 'data')}`);
    const created = await cli(runKeys, ['create', '--subject', 'acme', '--plan', 'free', '--name', 'laptop', '--config', config]);
    expect(created.stderr).toEqual([]);
    expect(created.code).toBe(0);
    expect(created.stdout[0]).toBe('created subject acme on plan free');
    const key = keyOf(created.stdout);
    expect(isWellFormedApiKey(key, 'qg')).toBe(true);

    const listed = await cli(runKeys, ['list', '--subject', 'acme', '--config', config]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toHaveLength(2);
    expect(listed.stdout[1]).toMatch(new RegExp(`^k_\\S+\\t${key.slice(0, 7)}\\tlaptop\\t`));
    expect(listed.stdout.join('\n')).not.toContain(key);

    let gateway = await startGatewayProcess(`${readConfig(config)}`);
    try {
      expect((await fetch(`${gateway.proxyUrl}/x`, { headers: { 'x-api-key': key } })).status).toBe(200);
      const busy = await cli(runKeys, ['list', '--subject', 'acme', '--config', config]);
      expect(busy.code).toBe(1);
      expect(busy.stderr.join('\n')).toContain('is in use by process');
      expect(busy.stderr.at(-1)).toBe(
        'keys list: the embedded database is in use (a running gateway?); stop it first, or use a PostgreSQL server (postgres.url)',
      );
    } finally {
      await stop(gateway);
    }
    gateway = await startGatewayProcess(readConfig(config));
    try {
      expect((await fetch(`${gateway.proxyUrl}/x`, { headers: { 'x-api-key': key } })).status).toBe(200);
    } finally {
      await stop(gateway);
    }
    expect(gateway.output()).not.toContain(key);

    const usage = await cli(runUsage, ['acme', '--config', config]);
    expect(usage.code).toBe(0);
    expect(usage.stdout[0]).toBe('acme: plan free');
    expect(usage.stdout[2]).toMatch(/^hour\t2\t100\t98\t/);

    expect((await cli(runSubjects, ['set-plan', 'acme', 'pro', '--config', config])).stdout).toEqual(['acme: plan pro']);
    const keyId = listed.stdout[1]!.split('\t')[0]!;
    const revoked = await cli(runKeys, ['revoke', keyId, '--config', config]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout[0]).toMatch(new RegExp(`^revoked ${keyId} \\(${key.slice(0, 7)}\\) of acme at `));
  }, 120_000);
});

function readConfig(path: string): string {
  // startGatewayProcess writes its own copy; the data_dir is absolute, so both point at the same files.
  return readFileSync(path, 'utf8');
}

describe('quotagate keys / subjects / usage on a PostgreSQL server', () => {
  let config: string;

  beforeAll(async () => {
    const database = await createTestDatabase();
    databases.push(database);
    config = configFile('server.yaml', `  url: ${database.url}`);
  });

  it('creates, lists and revokes keys, within the plan\'s max_keys', async () => {
    const first = await cli(runKeys, ['create', '--subject', 'corp', '--plan', 'free', '--config', config]);
    expect(first.code).toBe(0);
    expect((await cli(runKeys, ['create', '--subject', 'corp', '--config', config])).code).toBe(0);
    const third = await cli(runKeys, ['create', '--subject', 'corp', '--config', config]);
    expect(third.code).toBe(1);
    expect(third.stderr).toEqual(['keys create: Plan "free" allows 2 live keys; the subject holds 2. Revoke one first.']);
    const list = await cli(runKeys, ['list', '--subject', 'corp', '--config', config]);
    expect(list.stdout).toHaveLength(3);
    const keyId = list.stdout[1]!.split('\t')[0]!;
    expect((await cli(runKeys, ['revoke', keyId, '--config', config])).code).toBe(0);
    expect((await cli(runKeys, ['create', '--subject', 'corp', '--config', config])).code).toBe(0);
  });

  it('explains what is wrong: no such subject, an unknown plan, bad arguments', async () => {
    expect(await cli(runKeys, ['create', '--subject', 'ghost', '--config', config])).toMatchObject({
      code: 1,
      stderr: ['keys create: There is no subject "ghost"; pass --plan <plan> to create it.'],
    });
    expect(await cli(runSubjects, ['set-plan', 'corp', 'gold', '--config', config])).toMatchObject({
      code: 1,
      stderr: ['subjects set-plan: plan: unknown plan "gold" (defined: free, pro)'],
    });
    expect((await cli(runUsage, ['ghost', '--config', config])).stderr).toEqual(['usage: There is no subject "ghost".']);
    expect((await cli(runKeys, ['revoke', 'k_nope', '--config', config])).stderr).toEqual(['keys revoke: There is no API key "k_nope".']);
    expect((await cli(runKeys, ['create', '--config', config])).code).toBe(2);
    expect((await cli(runSubjects, ['set-plan', 'corp'])).code).toBe(2);
    expect((await cli(runUsage, [])).code).toBe(2);
  });

  it('reaches a running gateway on the same PostgreSQL and Redis: a key revoked by the CLI is refused within one second', async () => {
    const keyPrefix = `qgcli${process.pid % 100000}`;
    const shared = readConfig(config).replace('plans:', `store:\n  type: redis\n  redis: { url: "redis://127.0.0.1:6379", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }\nplans:`);
    const sharedConfig = join(scratch, 'shared.yaml');
    writeFileSync(sharedConfig, shared);
    const created = await cli(runKeys, ['create', '--subject', 'shared', '--plan', 'pro', '--config', sharedConfig]);
    const key = keyOf(created.stdout);
    const gw = await startTestGateway(shared, { database: true });
    try {
      expect((await fetch(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': key } })).status).toBe(200);
      const keyId = (await cli(runKeys, ['list', '--subject', 'shared', '--config', sharedConfig])).stdout[1]!.split('\t')[0]!;
      const revoked = await cli(runKeys, ['revoke', keyId, '--config', sharedConfig]);
      expect(revoked.stderr).toEqual([]);
      const start = Date.now();
      let status = 200;
      while (status === 200 && Date.now() - start < 1_000) {
        status = (await fetch(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': key } })).status;
        if (status === 200) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(status).toBe(401);
    } finally {
      await gw.gateway.shutdown();
    }
  });

  it('grants credits that a running gateway on the same Redis spends at once, and refuses bad grants', async () => {
    const keyPrefix = `qgcredits${process.pid % 100000}`;
    const paid = readConfig(config)
      .replace('plans:', `store:\n  type: redis\n  redis: { url: "redis://127.0.0.1:6379", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }\nplans:\n  paid:\n    quotas: { search: { month: 1 } }\n    credits: { covers: [search.month] }`)
      .replace('  - { name: api, path_prefix: /, upstream: app }', '  - { name: search, path_prefix: /search, upstream: app, quota: search }\n  - { name: api, path_prefix: /, upstream: app }');
    const paidConfig = join(scratch, 'credits.yaml');
    writeFileSync(paidConfig, paid);
    const key = keyOf((await cli(runKeys, ['create', '--subject', 'buyer', '--plan', 'paid', '--config', paidConfig])).stdout);
    const gw = await startTestGateway(paid, { database: true });
    const search = async () => {
      const response = await fetch(`${gw.proxyUrl}/search`, { headers: { 'x-api-key': key } });
      await response.arrayBuffer();
      return response.status;
    };
    try {
      // The quota's one unit, then no room and no credits.
      expect([await search(), await search()]).toEqual([200, 429]);
      const granted = await cli(runCredits, ['grant', 'buyer', '2', '--metric', 'search', '--reason', 'goodwill', '--config', paidConfig]);
      expect(granted.stderr).toEqual([]);
      expect(granted.stdout).toHaveLength(1);
      expect(granted.stdout[0]).toMatch(/^granted 2 search credits to buyer \(grant \d+, expires never\)$/);
      // The running gateway spends the grant at once (it was pushed to Redis), exactly two units of it.
      expect([await search(), await search(), await search()]).toEqual([200, 200, 429]);
    } finally {
      await gw.gateway.shutdown();
    }
    const refused = async (argv: string[]) => {
      const run = await cli(runCredits, [...argv, '--config', paidConfig]);
      return [run.code, run.stderr[0]];
    };
    expect(await refused(['grant', 'buyer', '5'])).toEqual([2, expect.stringContaining('--metric is required')]);
    expect(await refused(['grant', 'buyer', '0', '--metric', 'search'])).toEqual([2, 'credits grant: units must be a whole number from 1 to 10^12 (got "0")']);
    expect(await refused(['grant', 'buyer', '5', '--metric', 'search', '--expires', 'tomorrow'])).toEqual([2, 'credits grant: --expires must be an ISO-8601 date or time (got "tomorrow")']);
    expect(await refused(['grant', 'buyer', '5', '--metric', 'search', '--expires', '2020-01-01'])).toEqual([1, 'credits grant: --expires 2020-01-01T00:00:00.000Z is in the past']);
    expect(await refused(['grant', 'ghost', '5', '--metric', 'search'])).toEqual([1, 'credits grant: There is no subject "ghost".']);
    expect((await refused(['grant', 'buyer', '5', '--metric', 'pages']))[0]).toBe(1);
  });

  it('sets a plan and prints the usage rows of the current periods', async () => {
    expect((await cli(runSubjects, ['set-plan', 'corp', 'pro', '--config', config])).stdout).toEqual(['corp: plan pro']);
    const usage = await cli(runUsage, ['corp', '--config', config]);
    expect(usage.stdout[0]).toBe('corp: plan pro');
    expect(usage.stdout[1]).toBe('policy\tused\tlimit\tremaining\tperiod start\tresets at');
    expect(usage.stdout[2]).toMatch(/^hour\t0\t1000\t1000\t/);
  });
});
