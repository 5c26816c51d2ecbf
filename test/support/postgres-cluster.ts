import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { unusedPort } from './ports.js';

const run = promisify(execFile);
const BIN = process.env.QUOTAGATE_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const TIMEOUT_MS = 30_000;

/**
 * A throwaway PostgreSQL 15 cluster of this test alone (initdb in a temp
 * directory, trust auth, user postgres, 127.0.0.1 on a free port), so a test
 * can stop and start a server without touching the shared one.
 */
export interface PostgresCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** Starts the server (again) and waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops it (fast shutdown: connections are cut) and waits until it is down. */
  stop(): Promise<void>;
  /** Stops it if running and removes its files. */
  destroy(): Promise<void>;
}

/** PostgreSQL refuses to run as root: then run its tools as the `postgres` user. */
function command(tool: string, args: readonly string[]): [string, string[]] {
  const path = join(BIN, tool);
  return userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, [...args]];
}

async function pg(tool: string, args: readonly string[]): Promise<void> {
  const [file, argv] = command(tool, args);
  await run(file, argv, { timeout: TIMEOUT_MS });
}

/** A fresh temp directory the server's user owns (the `postgres` user when running as root). */
async function serverDirectory(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'quotagate-pg-'));
  if (userInfo().uid === 0) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout.trim()), 0);
  return dir;
}

/** start/stop/destroy of the cluster in `dir`/data, on a free port, not started yet. */
async function clusterIn(dir: string): Promise<PostgresCluster> {
  const dataDir = join(dir, 'data');
  const port = await unusedPort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  let running = false;
  const cluster: PostgresCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async start() {
      await pg('pg_ctl', ['-D', dataDir, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
      running = true;
    },
    async stop() {
      await pg('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
      running = false;
    },
    async destroy() {
      if (running) await cluster.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** initdb + start; the caller destroys it in afterAll. */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const dir = await serverDirectory();
  await pg('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const cluster = await clusterIn(dir);
  await cluster.start();
  return cluster;
}

/**
 * A streaming replica (hot standby) of `primary`, a cluster of
 * startPostgresCluster: `pg_basebackup -R -X stream` into a temp directory,
 * then started on a free port; resolves once it accepts read-only
 * connections. initdb's trust pg_hba.conf allows replication connections
 * from 127.0.0.1, and PostgreSQL 15's defaults (wal_level replica,
 * max_wal_senders 10) allow streaming, so the primary needs nothing more.
 * The caller destroys it in afterAll, before the primary.
 */
export async function startPostgresReplica(primary: PostgresCluster): Promise<PostgresCluster> {
  const dir = await serverDirectory();
  try {
    await pg('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', join(dir, 'data'), '-R', '-X', 'stream', '--no-sync']);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: string }).stderr?.trim() ?? '';
    throw new Error(`pg_basebackup from 127.0.0.1:${primary.port} failed (does its pg_hba.conf allow replication from 127.0.0.1?): ${stderr}`, {
      cause: error,
    });
  }
  const replica = await clusterIn(dir);
  await replica.start();
  return replica;
}
