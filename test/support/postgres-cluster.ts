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

/** initdb + start; the caller destroys it in afterAll. */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'quotagate-pg-'));
  if (userInfo().uid === 0) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout.trim()), 0);
  const dataDir = join(dir, 'data');
  await pg('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
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
  await cluster.start();
  return cluster;
}
