import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { within } from './within.js';
import { isProcessAlive } from '../../src/db/process-liveness.js';

const run = promisify(execFile);

/** A throwaway redis-server that this test process started; see startRedisServer. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Shuts the server down (SIGTERM, no save) and waits for it to exit. */
  stop(): Promise<void>;
  /** Kills the server abruptly (SIGKILL), as a crash would, and waits for it to exit. */
  kill(): Promise<void>;
}

export interface StartRedisServerOptions {
  /** Port to listen on (e.g. to restart a stopped server); a free one when omitted. */
  readonly port?: number;
  /** Extra redis-server arguments, e.g. `['--cluster-enabled', 'yes']`. */
  readonly args?: readonly string[];
  /** Also keep port + 10000 (the cluster bus) free when picking a port. */
  readonly clusterBus?: boolean;
  /**
   * Run `redis-sentinel` instead, with these lines (`sentinel monitor …`) in
   * its config file, which it rewrites as it learns the topology.
   */
  readonly sentinelConfig?: readonly string[];
}

/** Directories of servers started by test processes; their owner's pid is in `owner.pid`. */
const DIR_PREFIX = 'quotagate-redis-';
const STARTUP_TIMEOUT_MS = 5_000;
const EXIT_TIMEOUT_MS = 5_000;

/**
 * Starts a redis-server on 127.0.0.1 with no persistence, in a fresh temp
 * directory, and resolves once it answers PING. Servers left behind by a test
 * process that died are stopped first (see reapOrphanedServers).
 */
export async function startRedisServer(options: StartRedisServerOptions = {}): Promise<RedisServer> {
  reapOrphanedServers();
  for (let attempt = 0; ; attempt++) {
    const port = options.port ?? (await freePort(options.clusterBus ?? false));
    try {
      return await launch(port, options.args ?? [], options.sentinelConfig);
    } catch (error) {
      // Someone took a port we picked between checking and binding: pick again.
      if (options.port !== undefined || attempt >= 4) throw error;
    }
  }
}

async function launch(port: number, extraArgs: readonly string[], sentinelConfig: readonly string[] | undefined): Promise<RedisServer> {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), DIR_PREFIX)));
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  const [binary, configFile] =
    sentinelConfig === undefined ? ['redis-server', []] : ['redis-sentinel', [join(dir, 'sentinel.conf')]];
  if (sentinelConfig !== undefined) writeFileSync(join(dir, 'sentinel.conf'), `${sentinelConfig.join('\n')}\n`);
  const child = spawn(
    binary,
    [...configFile, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
      '--pidfile', join(dir, 'redis.pid'), '--daemonize', 'no', '--loglevel', 'warning', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let hasExited = false;
  void exited.then(() => (hasExited = true));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const finish = async (signal: NodeJS.Signals) => {
    if (!hasExited) {
      child.kill(signal);
      await within(exited, EXIT_TIMEOUT_MS, `redis-server on port ${port} to exit`).catch(async () => {
        child.kill('SIGKILL');
        await within(exited, EXIT_TIMEOUT_MS, `redis-server on port ${port} to die`);
      });
    }
    process.off('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitForPing(port, child, () => hasExited, () => output);
  } catch (error) {
    await finish('SIGKILL');
    throw error;
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => finish('SIGTERM'),
    kill: () => finish('SIGKILL'),
  };
}

async function waitForPing(port: number, child: ChildProcess, hasExited: () => boolean, output: () => string) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (hasExited()) throw new Error(`redis-server on port ${port} exited (${child.exitCode}): ${output()}`);
    if (await redisCli(port, 'PING').then((reply) => reply === 'PONG', () => false)) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING: ${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs one redis-cli command against 127.0.0.1:`port` (bounded to 5 s) and returns its trimmed output. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5_000 });
  return stdout.trim();
}

/** A port (and, for a cluster node, port + 10000) on 127.0.0.1 that nothing listens on. */
async function freePort(clusterBus: boolean): Promise<number> {
  for (;;) {
    // Below 55536 so the bus port exists; away from the usual ephemeral range.
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await canBind(port)) && (!clusterBus || (await canBind(port + 10_000)))) return port;
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Stops redis-servers that a test process started and left behind when it
 * crashed: a server's directory names its owner's pid, and a server is killed
 * only if its owner is gone and the process under its pidfile still runs in
 * that very directory (so a reused pid is never hit).
 */
export function reapOrphanedServers(): void {
  for (const name of readdirSync(tmpdir()).filter((entry) => entry.startsWith(DIR_PREFIX))) {
    const dir = realpathSync(join(tmpdir(), name));
    const owner = Number(readOrEmpty(join(dir, 'owner.pid')));
    if (!Number.isInteger(owner) || owner <= 0 || isProcessAlive(owner)) continue;
    const serverPid = Number(readOrEmpty(join(dir, 'redis.pid')));
    if (Number.isInteger(serverPid) && serverPid > 0 && cwdOf(serverPid) === dir) {
      try {
        process.kill(serverPid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}


function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}
