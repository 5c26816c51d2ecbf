import { type AdminContext } from '../admin/admin-context.js';
import { createKeyAudited, listSubjectKeys, revokeKeyAudited } from '../admin/keys.js';
import { setPlanAudited } from '../admin/subjects.js';
import { grantCreditsAudited, ledgerUsage } from '../admin/usage.js';
import { publishInvalidation } from '../auth/redis-cache-invalidator.js';
import type { GatewayConfig } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import { describeDatabase, openDatabases } from '../db/connect.js';
import type { Database } from '../db/database.js';
import { loadMigrations, migrate } from '../db/migrations.js';
import { closeRedisClient, createRedisClient, waitUntilReady } from '../redis/client.js';
import { registerScripts, runAddCreditsScript } from '../redis/scripts.js';
import type { CreditGrant } from '../db/credit-grants.js';
import type { CommandIo } from './io.js';
import { loadConfigForCommand } from './load-config.js';
import { verifyUsageAgainstStore } from './usage-verify.js';

/**
 * The admin commands of the CLI, on the configured database (the embedded
 * engine's data directory, or a server): the admin service's operations, as
 * the admin API calls them, each audited in its transaction with the actor `cli:<user>`. The embedded
 * engine allows one process at a time, so on it these run while the gateway
 * is stopped (the message says so otherwise). Against a server they run
 * beside the gateway: with the Redis store they publish the change to every
 * gateway at once (pub/sub), else gateway key caches pick it up within
 * `auth.api_keys.cache.ttl_ms`.
 */

export const KEYS_ADMIN_USAGE = `  quotagate keys create --subject S [--plan P] [--name N]   create a key (and the subject on plan P if missing); prints the key once
  quotagate keys list --subject S                          the subject's keys: id, prefix, name, dates
  quotagate keys revoke <keyId>                            revoke a key
  (each takes --config gateway.yaml; default $QUOTAGATE_CONFIG, else gateway.yaml)`;

const SUBJECTS_USAGE = `usage:
  quotagate subjects set-plan <subject> <plan> [--config gateway.yaml]`;

const USAGE_USAGE = `usage:
  quotagate usage <subject> [--config gateway.yaml]   the subject's counts of the current periods, from the usage ledger
  quotagate usage verify [--subject S] [--config gateway.yaml]
      flush, then compare the ledger with the Redis store for every subject with rows in current periods
      (or S only): one line per drift, a summary; exits 0 when equal, 1 on a drift`;

/** `argv` split into flags (`--name value`) and positional arguments; undefined on a flag without a value. */
function parseArgs(argv: readonly string[], flags: readonly string[]): { flags: Map<string, string>; positional: string[] } | undefined {
  const found = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith('--')) {
      const name = arg.slice(2);
      const value = argv[i + 1];
      if (!flags.includes(name) || value === undefined || found.has(name)) return undefined;
      found.set(name, value);
      i++;
    } else {
      positional.push(arg);
    }
  }
  return { flags: found, positional };
}

/** Loads the config, opens and migrates its database, runs `work` on the admin service's context for it (and the config), closes; the exit code. */
async function withDatabase(
  command: string,
  configFile: string,
  io: CommandIo,
  work: (ctx: AdminContext, config: GatewayConfig) => Promise<number>,
): Promise<number> {
  const config = await loadConfigForCommand(configFile, io);
  if (config === undefined) return 1;
  const target = describeDatabase(config.postgres);
  let databases;
  try {
    databases = await openDatabases(config.postgres, `quotagate-${command.replace(' ', '-')}`);
    await migrate(databases.primary, loadMigrations());
  } catch (error) {
    await databases?.close();
    const inUse = / is in use by process /.test(messageOf(error));
    io.stderr(`${command}: ${target}: ${messageOf(error)}`);
    if (inUse) io.stderr(`${command}: the embedded database is in use (a running gateway?); stop it first, or use a PostgreSQL server (postgres.url)`);
    return 1;
  }
  try {
    return await work(contextOf(command, databases.primary, config, io), config);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    io.stderr(`${command}: ${error.detail}`);
    return 1;
  } finally {
    await databases.close();
  }
}

/**
 * Tells running gateways that a subject's keys changed, when they share a
 * Redis store (pub/sub); otherwise their caches expire within
 * `auth.api_keys.cache.ttl_ms`. A failure is a warning: the write stands.
 */
async function notifyGateways(command: string, config: GatewayConfig, subjectId: string, io: CommandIo): Promise<void> {
  const redis = config.store.type === 'redis' ? config.store.redis : undefined;
  if (redis === undefined) return;
  const client = createRedisClient(redis);
  client.on('error', () => {});
  try {
    await waitUntilReady(client, redis.connect_timeout_ms);
    await publishInvalidation(client, redis.key_prefix, { type: 'subject', id: subjectId });
  } catch (error) {
    io.stderr(`${command}: warning: could not notify running gateways (${messageOf(error)}); their key caches expire within auth.api_keys.cache.ttl_ms`);
  } finally {
    await closeRedisClient(client).catch(() => {});
  }
}

/** The admin service's context for `command`: actor `cli:<user>`, running gateways told through Redis (notifyGateways); no limit store. */
function contextOf(command: string, db: Database, config: GatewayConfig, io: CommandIo): AdminContext {
  return {
    db,
    plans: config.plans,
    keyPrefix: config.auth.api_keys.prefix,
    clock: systemClock,
    actor: `cli:${io.env.USER || io.env.USERNAME || 'unknown'}`,
    subjectChanged: (subjectId) => notifyGateways(command, config, subjectId, io),
  };
}

function configFileOf(flags: Map<string, string>, io: CommandIo): string {
  return flags.get('config') ?? (io.env.QUOTAGATE_CONFIG || 'gateway.yaml');
}

/** `quotagate keys create | list | revoke`; resolves to the exit code (2 on a usage error). */
export async function runKeysAdmin(command: string, argv: readonly string[], io: CommandIo): Promise<number> {
  const args = parseArgs(argv, ['subject', 'plan', 'name', 'config']);
  if (args === undefined) return usageError(io, `usage:\n${KEYS_ADMIN_USAGE}`);
  const { flags, positional } = args;
  const configFile = configFileOf(flags, io);
  const subject = flags.get('subject');
  if (command === 'create' && subject !== undefined && positional.length === 0) {
    return withDatabase('keys create', configFile, io, async (ctx) => {
      const plan = flags.get('plan');
      const issued = await createKeyAudited(ctx, subject, { name: flags.get('name') }, plan).catch((error: unknown) => {
        if (plan === undefined && error instanceof GatewayError && error.code === 'subject_not_found') {
          throw new GatewayError('subject_not_found', `There is no subject "${subject}"; pass --plan <plan> to create it.`);
        }
        throw error;
      });
      if (issued.subjectCreated) io.stdout(`created subject ${subject} on plan ${plan}`);
      io.stdout(`key:    ${issued.plainKey}`);
      io.stdout(`id:     ${issued.key.id}`);
      io.stdout(`prefix: ${issued.key.displayPrefix}`);
      io.stdout('');
      io.stdout('The key is shown this once; only its SHA-256 is stored.');
      return 0;
    });
  }
  if (command === 'list' && subject !== undefined && positional.length === 0 && !flags.has('plan') && !flags.has('name')) {
    return withDatabase('keys list', configFile, io, async (ctx) => {
      const keys = await listSubjectKeys(ctx, subject);
      io.stdout(['id', 'prefix', 'name', 'created', 'expires', 'revoked'].join('\t'));
      for (const key of keys) {
        io.stdout(
          [key.id, key.displayPrefix, key.name ?? '-', iso(key.createdAt), iso(key.expiresAt), iso(key.revokedAt)].join('\t'),
        );
      }
      return 0;
    });
  }
  if (command === 'revoke' && positional.length === 1 && flags.size === (flags.has('config') ? 1 : 0)) {
    return withDatabase('keys revoke', configFile, io, async (ctx) => {
      const key = await revokeKeyAudited(ctx, positional[0]!);
      io.stdout(`revoked ${key.id} (${key.displayPrefix}) of ${key.subjectId} at ${iso(key.revokedAt)}`);
      return 0;
    });
  }
  return usageError(io, `usage:\n${KEYS_ADMIN_USAGE}`);
}

/** `quotagate subjects set-plan <subject> <plan>`. */
export async function runSubjects(argv: readonly string[], io: CommandIo): Promise<number> {
  const args = parseArgs(argv, ['config']);
  if (args === undefined || args.positional.length !== 3 || args.positional[0] !== 'set-plan') return usageError(io, SUBJECTS_USAGE);
  const [, subject, plan] = args.positional as [string, string, string];
  return withDatabase('subjects set-plan', configFileOf(args.flags, io), io, async (ctx) => {
    const updated = await setPlanAudited(ctx, subject, plan);
    io.stdout(`${updated.id}: plan ${updated.plan}`);
    return 0;
  });
}

/**
 * `quotagate usage <subject>`: every window and quota of the subject's plan
 * with the ledger's count for the current period (what the flusher last
 * copied from the store: at most one flush interval behind).
 */
export async function runUsage(argv: readonly string[], io: CommandIo): Promise<number> {
  if (argv[0] === 'verify') return runUsageVerify(argv.slice(1), io);
  const args = parseArgs(argv, ['config']);
  if (args === undefined || args.positional.length !== 1) return usageError(io, USAGE_USAGE);
  const subjectId = args.positional[0]!;
  return withDatabase('usage', configFileOf(args.flags, io), io, async (ctx) => {
    const { subject, usage } = await ledgerUsage(ctx, subjectId, systemClock.now());
    io.stdout(`${subjectId}: plan ${subject.plan}${subject.suspendedAt === null ? '' : ' (suspended)'}`);
    io.stdout(['policy', 'used', 'limit', 'remaining', 'period start', 'resets at'].join('\t'));
    for (const { policy, period, used } of usage) {
      io.stdout(
        [policy.name, used, policy.limit, Math.max(0, policy.limit - used), iso(new Date(period.startMs)), iso(new Date(period.endMs))].join('\t'),
      );
    }
    return 0;
  });
}

/**
 * `quotagate usage verify [--subject S]`: flushes what the Redis store has
 * not copied to the ledger yet, then compares (src/usage/usage-verify.ts);
 * exits 0 when the ledger equals the store, 1 on a drift (or an error).
 */
async function runUsageVerify(argv: readonly string[], io: CommandIo): Promise<number> {
  const args = parseArgs(argv, ['subject', 'config']);
  if (args === undefined || args.positional.length !== 0) return usageError(io, USAGE_USAGE);
  const subject = args.flags.get('subject');
  return withDatabase('usage verify', configFileOf(args.flags, io), io, (ctx, config) =>
    verifyUsageAgainstStore(ctx.db, config, subject, io),
  );
}

const CREDITS_USAGE = `usage:
  quotagate credits grant <subject> <units> --metric M [--expires ISO-8601] [--reason R] [--config gateway.yaml]
      grant <units> prepaid credits of metric M (one some plan meters) to an existing subject, spendable until
      --expires (default: never); audited; with the Redis store pushed to the shared balance at once`;

/**
 * `quotagate credits grant <subject> <units> --metric M [--expires T] [--reason R]`:
 * the admin service's grant (audited), then, with the Redis store, the
 * grant added to the subject's balance there (lua/add-credits.lua, which
 * counts a grant once however often it is written), so every gateway
 * spends it at once. If Redis does not answer, the grant stands in the
 * database and the gateways read it when they next hydrate the subject.
 */
export async function runCredits(argv: readonly string[], io: CommandIo): Promise<number> {
  const args = parseArgs(argv, ['metric', 'expires', 'reason', 'config']);
  if (args === undefined || args.positional.length !== 3 || args.positional[0] !== 'grant') return usageError(io, CREDITS_USAGE);
  const [, subject, unitsText] = args.positional as [string, string, string];
  const metric = args.flags.get('metric');
  const units = /^[1-9][0-9]{0,11}$/.test(unitsText) ? Number(unitsText) : undefined;
  const expiresText = args.flags.get('expires');
  const expiresAt = expiresText === undefined ? undefined : new Date(expiresText);
  if (metric === undefined) return usageError(io, `credits grant: --metric is required\n${CREDITS_USAGE}`);
  if (units === undefined) return usageError(io, `credits grant: units must be a whole number from 1 to 10^12 (got "${unitsText}")`);
  if (expiresAt !== undefined && (Number.isNaN(expiresAt.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(expiresText!))) {
    return usageError(io, `credits grant: --expires must be an ISO-8601 date or time (got "${expiresText}")`);
  }
  return withDatabase('credits grant', configFileOf(args.flags, io), io, async (ctx, config) => {
    if (expiresAt !== undefined && expiresAt.getTime() <= ctx.clock.now()) {
      throw new GatewayError('validation_failed', `--expires ${expiresAt.toISOString()} is in the past`);
    }
    const grant = await grantCreditsAudited(ctx, subject, { metric, amount: units, expiresAt, reason: args.flags.get('reason') });
    io.stdout(`granted ${grant.amount} ${grant.metric} credits to ${subject} (grant ${grant.id}, expires ${iso(grant.expiresAt) === '-' ? 'never' : iso(grant.expiresAt)})`);
    await pushGrantToStore('credits grant', config, subject, grant, io);
    return 0;
  });
}

/** With the Redis store, adds the committed grant to the subject's balance there; a failure is a warning (the grant stands). */
async function pushGrantToStore(command: string, config: GatewayConfig, subject: string, grant: CreditGrant, io: CommandIo): Promise<void> {
  const redis = config.store.type === 'redis' ? config.store.redis : undefined;
  if (redis === undefined) return;
  const client = createRedisClient(redis);
  client.on('error', () => {});
  registerScripts(client);
  try {
    await waitUntilReady(client, redis.connect_timeout_ms);
    await runAddCreditsScript(client, redis.key_prefix, subject, [
      { id: grant.id, metric: grant.metric, amount: grant.amount, expiresAtMs: grant.expiresAt?.getTime() ?? null, used: 0 },
    ]);
  } catch (error) {
    io.stderr(`${command}: warning: the grant is stored, but the Redis store did not take it (${messageOf(error)}); gateways spend it once they next read the subject from the database`);
  } finally {
    await closeRedisClient(client).catch(() => {});
  }
}

function usageError(io: CommandIo, usage: string): number {
  io.stderr(usage);
  return 2;
}

function iso(date: Date | null): string {
  return date === null ? '-' : date.toISOString();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
