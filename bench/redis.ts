import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findFreePort, type ChildProcesses, type ChildServer } from './children.js';

/**
 * The Redis the Redis-backed rows use. By default the bench starts its own
 * redis-server (no persistence, a throwaway directory, pinned with the load
 * generator when pinning is in effect), so the shared Redis of the machine is
 * neither loaded nor read, and `INFO commandstats` counts only the bench's
 * commands. With `REDIS_URL` set, that Redis is used instead.
 */

export interface BenchRedis {
  readonly url: string;
  /** Whether the bench started this server (and so whether its command counts are the bench's alone). */
  readonly own: boolean;
  /** Calls per command since the server started (`INFO commandstats`). */
  commandCalls(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

/**
 * Parses the reply of `INFO commandstats` into calls per command (lower case,
 * as Redis names them: `evalsha`, `get`, …).
 */
export function parseCommandStats(info: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const line of info.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (match !== null) calls.set(match[1]!, Number(match[2]));
  }
  return calls;
}

/**
 * Calls per command between two `parseCommandStats` snapshots, leaving out
 * INFO (the bench's own probe) and commands not called in between.
 */
export function commandsBetween(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [command, count] of after) {
    const calls = count - (before.get(command) ?? 0);
    if (command !== 'info' && calls > 0) delta.set(command, calls);
  }
  return delta;
}

/** The commands that run a script; every other command in a mix either came from a client or ran inside a script. */
const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);

/**
 * Client round trips per request from a command mix: the script calls
 * (EVAL, EVALSHA, FCALL and their read-only forms). Redis's commandstats also
 * count the commands a script runs, so the rest of the mix is what the
 * scripts did (or, for a client that also sends plain commands, those too:
 * read the mix).
 */
export function scriptCalls(mix: ReadonlyMap<string, number> | readonly (readonly [string, number])[]): number {
  let total = 0;
  for (const [command, count] of mix) if (SCRIPT_COMMANDS.has(command)) total += count;
  return total;
}

/** Starts the bench's redis-server, or connects to `externalUrl` when given. */
export async function startBenchRedis(children: ChildProcesses, externalUrl: string | undefined, cpus: string | undefined): Promise<BenchRedis> {
  let server: ChildServer | undefined;
  let directory: string | undefined;
  let url: string;
  if (externalUrl !== undefined) {
    url = externalUrl;
  } else {
    const port = await findFreePort();
    url = `redis://127.0.0.1:${port}`;
    directory = mkdtempSync(join(tmpdir(), 'quotagate-bench-redis-'));
    server = await children.start({
      name: 'bench redis',
      executable: 'redis-server',
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', directory],
      ...(cpus === undefined ? {} : { cpus }),
      ready: () => ping(url),
    });
  }
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  client.on('error', () => {}); // a failing probe rejects its own call
  await client.connect();
  return {
    url,
    own: server !== undefined,
    commandCalls: async () => parseCommandStats(await client.info('commandstats')),
    stop: async () => {
      client.disconnect();
      await server?.stop();
      if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function ping(url: string): Promise<void> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
  } finally {
    probe.disconnect();
  }
}
