import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';

/**
 * The processes a bench run starts: every server runs as its own node
 * process, launched the same way (TypeScript through tsx, or the compiled
 * JavaScript under dist/), so no row gets a different runtime than another.
 */

/** How servers are launched: `node --import tsx <file>.ts` or `node dist/<file>.js`. */
export type Runtime = 'tsx' | 'dist';

const OUTPUT_TAIL_LINES = 40;
const STOP_GRACE_MS = 3_000;
/** How long a server may take to answer after its start: generous, as quotagate's start (tsx, the embedded database) takes tens of seconds on a loaded machine. */
const READY_TIMEOUT_MS = 120_000;

export interface ChildServer {
  readonly name: string;
  /** The process id (of node or the executable itself, also when started through taskset). */
  readonly pid: number;
  /** The last lines the process wrote to stdout and stderr, oldest first. */
  outputTail(): readonly string[];
  /** How the process ended with its last output, or undefined while it runs (or after stop()). */
  unexpectedExit(): string | undefined;
  /** Sends SIGTERM, then SIGKILL after a grace period; resolves once it exited. */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Shown in progress lines and errors. */
  readonly name: string;
  /** Entry point relative to the repository root, as a `.ts` path (e.g. `src/cli/bin.ts`); run with node. */
  readonly entry?: string;
  /** A program to run instead of a node entry point (e.g. `redis-server`), found on PATH. */
  readonly executable?: string;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** CPUs to run on (`taskset -c <cpus>`, which execs the program: the pid stays the program's). */
  readonly cpus?: string;
  /** A URL that answers (any status) once the server is ready. */
  readonly readyUrl?: string;
  /** Resolves once the server is ready, rejects while it is not; instead of `readyUrl`. */
  readonly ready?: () => Promise<void>;
  readonly readyTimeoutMs?: number;
}

/** Starts child servers and guarantees none outlives the bench run. */
export class ChildProcesses {
  private readonly running = new Set<ChildProcess>();

  constructor(private readonly repoRoot: string, private readonly runtime: Runtime) {}

  /** The arguments to `node` that run `entry` under this runtime; the last one is the file. */
  nodeArgsFor(entry: string): string[] {
    if (this.runtime === 'tsx') return ['--import', 'tsx', entry];
    return [join('dist', entry.replace(/\.ts$/, '.js'))];
  }

  /** Spawns the server and resolves once `readyUrl` answers; rejects (and kills it) otherwise. */
  async start(options: SpawnOptions): Promise<ChildServer> {
    let program: string;
    let programArgs: string[];
    if (options.executable !== undefined) {
      program = options.executable;
      programArgs = [...(options.args ?? [])];
    } else {
      if (options.entry === undefined) throw new Error(`${options.name}: neither an entry nor an executable`);
      const nodeArgs = this.nodeArgsFor(options.entry);
      const entryFile = nodeArgs.at(-1)!;
      if (!existsSync(join(this.repoRoot, entryFile))) {
        throw new Error(`${options.name}: ${entryFile} does not exist${this.runtime === 'dist' ? ' (run `npm run build && npm run build:bench`)' : ''}`);
      }
      program = process.execPath;
      programArgs = [...nodeArgs, ...(options.args ?? [])];
    }
    if (options.cpus !== undefined) {
      programArgs = ['-c', options.cpus, program, ...programArgs];
      program = 'taskset';
    }
    const child = spawn(program, programArgs, {
      cwd: this.repoRoot,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) {
      const failure = await new Promise<Error>((resolve) => child.once('error', resolve));
      throw new Error(`${options.name} did not start: ${failure.message}`);
    }
    const pid = child.pid;
    child.on('error', () => {}); // a failed kill(); the exit handler below reports how it ended
    this.running.add(child);
    const tail: string[] = [];
    const collect = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        tail.push(line);
        if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
      }
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let stopping = false;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        this.running.delete(child);
        resolve();
      });
    });
    const server: ChildServer = {
      name: options.name,
      pid,
      outputTail: () => [...tail],
      unexpectedExit: () => {
        if (stopping || (child.exitCode === null && child.signalCode === null)) return undefined;
        const output = tail.length > 0 ? `\n--- last output of ${options.name} ---\n${tail.join('\n')}` : '';
        return `${options.name} exited with ${child.exitCode ?? child.signalCode}${output}`;
      },
      stop: async () => {
        stopping = true;
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      },
    };
    try {
      const check = options.ready ?? (options.readyUrl === undefined ? undefined : () => fetchOnce(options.readyUrl!).then(() => {}));
      if (check === undefined) throw new Error('neither readyUrl nor ready is set');
      await waitUntilReady(check, options.readyUrl ?? options.name, child, options.readyTimeoutMs ?? READY_TIMEOUT_MS);
    } catch (error) {
      await server.stop();
      const output = tail.length > 0 ? `\n--- last output of ${options.name} ---\n${tail.join('\n')}` : '';
      throw new Error(`${options.name} did not start: ${(error as Error).message}${output}`);
    }
    return server;
  }

  /** Process ids of the children still running. */
  pids(): number[] {
    return [...this.running].flatMap((child) => (child.pid === undefined ? [] : [child.pid]));
  }

  /** Kills every child still running, synchronously (safe inside a process 'exit' handler). */
  killAll(): void {
    for (const child of this.running) child.kill('SIGKILL');
    this.running.clear();
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** One GET with no keep-alive; resolves with the status and the body. */
export function fetchOnce(url: string, headers: Readonly<Record<string, string>> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false, headers, timeout: 2_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

async function waitUntilReady(check: () => Promise<void>, what: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`exited with ${child.exitCode ?? child.signalCode} before answering on ${what}`);
    }
    try {
      await check();
      return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no answer on ${what} within ${timeoutMs} ms (${lastError})`);
}
