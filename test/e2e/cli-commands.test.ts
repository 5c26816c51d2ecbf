/**
 * Every command the README and docs/ show, run as a user types it in a
 * checkout (`npm run -s quotagate -- …`, a process of its own), with its
 * output and exit status asserted.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { REPOSITORY_ROOT, runQuotagate, startCommand, tsxNodeArgs } from '../support/command-process.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { within } from '../support/within.js';

/** The README's demo key and the hash gateway.yaml holds for it. */
const DEMO_KEY = 'qg_gyHv9AT3WonldYsJ8ffUI9_0p4rsE';
const DEMO_KEY_HASH = '00975063a56d962832bdba45488145875b2236883a4c0009d85c03f9704d0b00';

// Each command is a process of its own (npm, then tsx): seconds apiece on a busy machine.
vi.setConfig({ testTimeout: 60_000 });

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The value after `label:` on its line of `stdout`. */
function field(stdout: string, label: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith(`${label}:`));
  expect(line, `a "${label}:" line in ${stdout}`).toBeDefined();
  return line!.slice(label.length + 1).trim();
}

const scratch = mkdtempSync(join(tmpdir(), 'quotagate-cli-commands-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('quotagate keys generate / keys hash (README "Putting your service behind it", step 2)', () => {
  it('keys generate prints a key and its SHA-256, and keys hash <key> without --prefix prints the same hash (it printed the usage, exit 2)', async () => {
    const generated = await runQuotagate(['keys', 'generate']);
    expect(generated.stderr).toBe('');
    expect(generated.code).toBe(0);
    const key = field(generated.stdout, 'key');
    const hash = field(generated.stdout, 'hash');
    expect(key).toMatch(/^qg_[0-9A-Za-z]{22}_[0-9A-Za-z]{6}$/);
    expect(hash).toBe(sha256(key));

    const hashed = await runQuotagate(['keys', 'hash', key]);
    expect(hashed).toEqual({ code: 0, stdout: `${hash}\n`, stderr: '' });
  });

  it('keys hash of the README demo key prints the hash gateway.yaml holds', async () => {
    expect(readFileSync(join(REPOSITORY_ROOT, 'gateway.yaml'), 'utf8')).toContain(`hash: ${DEMO_KEY_HASH}`);
    expect(await runQuotagate(['keys', 'hash', DEMO_KEY])).toEqual({ code: 0, stdout: `${DEMO_KEY_HASH}\n`, stderr: '' });
  });

  it('keys hash - reads the key from stdin', async () => {
    expect(await runQuotagate(['keys', 'hash', '-'], { stdin: `${DEMO_KEY}\n` })).toEqual({ code: 0, stdout: `${DEMO_KEY_HASH}\n`, stderr: '' });
  });

  it('keys generate --prefix and keys hash --prefix work with another prefix, in either order', async () => {
    const generated = await runQuotagate(['keys', 'generate', '--prefix', 'acme']);
    expect(generated.code).toBe(0);
    const key = field(generated.stdout, 'key');
    expect(key).toMatch(/^acme_/);
    const expected = { code: 0, stdout: `${sha256(key)}\n`, stderr: '' };
    expect(await runQuotagate(['keys', 'hash', key, '--prefix', 'acme'])).toEqual(expected);
    expect(await runQuotagate(['keys', 'hash', '--prefix', 'acme', key])).toEqual(expected);
  });

  it('keys hash of a mistyped key exits 1 naming the format; keys hash with no key prints the usage and exits 2', async () => {
    const mistyped = await runQuotagate(['keys', 'hash', `${DEMO_KEY.slice(0, -1)}x`]);
    expect(mistyped.code).toBe(1);
    expect(mistyped.stdout).toBe('');
    expect(mistyped.stderr).toBe('keys hash: not a well-formed "qg" key (format qg_<22 base62>_<6 base62 checksum>)\n');

    const bare = await runQuotagate(['keys', 'hash']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('quotagate keys hash <key>');
  });
});

describe('quotagate check-config (README step 3, docs/configuration.md, the example configs)', () => {
  it('check-config gateway.yaml says ok with its counts, and so does check-config with no file', async () => {
    const line = 'gateway.yaml: ok (2 routes, 6 plans, 2 keys)\n';
    expect(await runQuotagate(['check-config', 'gateway.yaml'])).toEqual({ code: 0, stdout: line, stderr: '' });
    expect(await runQuotagate(['check-config'], { env: { QUOTAGATE_CONFIG: undefined } })).toEqual({ code: 0, stdout: line, stderr: '' });
  });

  it.each([
    ['config/gateway.example.yaml', '3 routes, 5 plans, 1 key'],
    ['config/gateway.redis.yaml', '3 routes, 4 plans, 1 key'],
    ['config/gateway.cluster.yaml', '1 route, 3 plans, 1 key'],
    ['config/gateway.compose.yaml', '2 routes, 6 plans, 1 key'],
  ])('check-config %s says ok', async (file, counts) => {
    expect(await runQuotagate(['check-config', file])).toEqual({ code: 0, stdout: `${file}: ok (${counts})\n`, stderr: '' });
  });

  it('check-config of a bad file exits 1 with the file, the path and the problem (the README example)', async () => {
    const bad = join(scratch, 'bad.yaml');
    writeFileSync(bad, readFileSync(join(REPOSITORY_ROOT, 'gateway.yaml'), 'utf8').replace('pro:\n    limits: { hour: 600,', 'pro:\n    limits: { hour: 0,'));
    const result = await runQuotagate(['check-config', bad]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`${bad}: plans.pro.limits.hour: must be at least 1\n`);
  });
});

describe('the database commands (README "Command line") on a PostgreSQL server', () => {
  let database: TestDatabase;
  let config: string;
  beforeAll(async () => {
    database = await createTestDatabase();
    config = join(scratch, 'server.yaml');
    writeFileSync(
      config,
      `${readFileSync(join(REPOSITORY_ROOT, 'gateway.yaml'), 'utf8')}\npostgres:\n  url: "${database.url}"\n`,
    );
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('migrate, keys create, keys list, subjects set-plan, usage and keys revoke, each with --config', async () => {
    const migrated = await runQuotagate(['migrate', '--config', config]);
    expect(migrated.stderr).toBe('');
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toMatch(/^applied 001_initial\.sql\napplied 002_usage_version\.sql\napplied 003_quota_events\.sql\napplied 004_denials\.sql\n.*: up to date \(4 migrations, 4 applied now\)\n$/);

    const created = await runQuotagate(['keys', 'create', '--subject', 'acme', '--plan', 'pro', '--name', 'laptop', '--config', config]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout.split('\n')[0]).toBe('created subject acme on plan pro');
    const key = field(created.stdout, 'key');
    const keyId = field(created.stdout, 'id');
    expect(key).toMatch(/^qg_/);

    const listed = await runQuotagate(['keys', 'list', '--subject', 'acme', '--config', config]);
    expect(listed.code).toBe(0);
    const rows = listed.stdout.trimEnd().split('\n');
    expect(rows[0]).toBe('id\tprefix\tname\tcreated\texpires\trevoked');
    expect(rows).toHaveLength(2);
    expect(rows[1]!.split('\t').slice(0, 3)).toEqual([keyId, field(created.stdout, 'prefix'), 'laptop']);
    expect(listed.stdout).not.toContain(key);

    expect(await runQuotagate(['subjects', 'set-plan', 'acme', 'business', '--config', config])).toEqual({
      code: 0,
      stdout: 'acme: plan business\n',
      stderr: '',
    });

    const usage = await runQuotagate(['usage', 'acme', '--config', config]);
    expect(usage.code).toBe(0);
    const usageRows = usage.stdout.trimEnd().split('\n');
    expect(usageRows.slice(0, 2)).toEqual(['acme: plan business', 'policy\tused\tlimit\tremaining\tperiod start\tresets at']);
    expect(usageRows.slice(2).map((row) => row.split('\t').slice(0, 4))).toEqual([
      ['hour', '0', '3000', '3000'],
      ['day', '0', '50000', '50000'],
      ['month', '0', '1000000', '1000000'],
    ]);

    const revoked = await runQuotagate(['keys', 'revoke', keyId, '--config', config]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(new RegExp(`^revoked ${keyId} \\(qg_\\w+\\) of acme at \\d{4}-`));
  }, 90_000);

  it('keys list of an unknown subject exits 1 saying so', async () => {
    const result = await runQuotagate(['keys', 'list', '--subject', 'nobody', '--config', config]);
    expect(result).toEqual({ code: 1, stdout: '', stderr: 'keys list: There is no subject "nobody".\n' });
  });
});

describe('quotagate serve --config gateway.yaml (README step 3), on the embedded database', () => {
  it('serves the shipped config, answers the demo key with the demo plan, and exits 0 on SIGTERM', async () => {
    // A working directory of its own keeps the embedded ./data apart from a checkout's.
    const cwd = mkdtempSync(join(scratch, 'serve-'));
    const gateway = await startCommand(
      process.execPath,
      tsxNodeArgs('src/bin.ts', 'serve', '--config', join(REPOSITORY_ROOT, 'gateway.yaml')),
      'quotagate listening',
      { cwd, env: { QUOTAGATE_HOST: '127.0.0.1', QUOTAGATE_PORT: '0', QUOTAGATE_ADMIN_PORT: '0', UPSTREAM_URL: 'http://127.0.0.1:9' } },
    );
    try {
      const line = gateway.output().split('\n').find((l) => l.includes('quotagate listening'))!;
      const { proxy, admin } = JSON.parse(line) as { proxy: string; admin: string };
      expect((await fetch(`${admin}/healthz`)).status).toBe(200);
      const unauthenticated = await fetch(`${proxy}/api/hello`);
      expect(unauthenticated.status).toBe(401);
      expect(((await unauthenticated.json()) as { code: string }).code).toBe('missing_credentials');
      // Nothing listens on the upstream's port 9: the demo key is accepted, charged and the forward fails.
      const withKey = await fetch(`${proxy}/api/hello`, { headers: { 'x-api-key': DEMO_KEY } });
      expect(withKey.status).toBe(502);
      expect(withKey.headers.get('ratelimit-policy')).toContain('"minute";q=5;w=60');
    } finally {
      gateway.child.kill('SIGTERM');
    }
    expect(await within(gateway.exited, 20_000, 'the gateway to exit')).toBe(0);
    expect(gateway.output()).toContain('"msg":"stopped"');
  }, 90_000);
});

describe('quotagate with no or an unknown command', () => {
  it('help prints the commands and exits 0; an unknown command prints them and exits 2', async () => {
    const help = await runQuotagate(['help']);
    expect(help.code).toBe(0);
    expect(help.stderr).toContain('usage: quotagate <command>');
    const unknown = await runQuotagate(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('usage: quotagate <command>');
  });
});
